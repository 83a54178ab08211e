import Foundation
public import Logging
import Synchronization
public import WaybillSMTP

/// Feeds the pipeline from the spool: every message committed before the start (a restart
/// resumes them), then each one the SMTP server commits. A few run at once; a message leaves
/// the spool only once its outcome is recorded (delivered or quarantined), so a crash at any
/// point leaves it to be run again, which the pipeline makes harmless.
public final class SpoolWorker: Sendable {
    public let pipeline: Pipeline
    public let spool: Spool
    public let concurrency: Int
    /// How long a message whose outcome could not be recorded waits before its next try.
    public let retryDelay: Duration
    private let logger: Logger
    private let queue: AsyncStream<String>
    private let continuation: AsyncStream<String>.Continuation
    /// Queued or running: a message the start-up scan and the server both announce runs once.
    private let known = Mutex<Set<String>>([])
    private let stopping = Atomic<Bool>(false)
    /// When the SMTP server last handed over a message (nanoseconds on the continuous clock).
    private let lastArrival = Atomic<Int64>(0)
    /// Intake first: routing waits while messages keep arriving (the scanner's user is waiting
    /// for the 250; nobody waits for routing to the millisecond), until the burst pauses for
    /// `quietPeriod` or a message has waited `maximumDeferral`.
    public let quietPeriod: Duration
    public let maximumDeferral: Duration

    public init(
        pipeline: Pipeline, spool: Spool, concurrency: Int = 2, retryDelay: Duration = .seconds(30),
        quietPeriod: Duration = .milliseconds(200), maximumDeferral: Duration = .seconds(10), logger: Logger
    ) {
        self.quietPeriod = quietPeriod
        self.maximumDeferral = maximumDeferral
        self.pipeline = pipeline
        self.spool = spool
        self.concurrency = max(1, concurrency)
        self.retryDelay = retryDelay
        self.logger = logger
        (queue, continuation) = AsyncStream.makeStream(of: String.self)
    }

    /// Queues a committed message (the SMTP server's `onSpooled`).
    public func enqueue(_ id: String) {
        lastArrival.store(now(), ordering: .relaxed)
        let isNew = known.withLock { $0.insert(id).inserted }
        if isNew { continuation.yield(id) }
    }

    /// Stops taking messages; those running finish, those queued stay in the spool for the next start.
    public func finish() {
        stopping.store(true, ordering: .relaxed)
        continuation.finish()
    }

    /// Runs until `finish()` (or cancellation), then waits for the messages in hand.
    public func run() async {
        let pending = spool.pending()
        if !pending.isEmpty { logger.info("resuming spooled messages", metadata: ["count": "\(pending.count)"]) }
        for id in pending { enqueue(id) }
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            for await id in queue {
                if Task.isCancelled || stopping.load(ordering: .relaxed) { break }
                if running >= concurrency {
                    await group.next()
                    running -= 1
                }
                await waitForQuiet()
                running += 1
                group.addTask { await self.handle(id) }
            }
            await group.waitForAll()
        }
    }

    private let epoch = ContinuousClock.now

    func now() -> Int64 {
        let components = (ContinuousClock.now - epoch).components
        return components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }

    private func waitForQuiet() async {
        let quiet = Int64(quietPeriod.components.seconds) * 1_000_000_000 + quietPeriod.components.attoseconds / 1_000_000_000
        let started = ContinuousClock.now
        while now() - lastArrival.load(ordering: .relaxed) < quiet, ContinuousClock.now - started < maximumDeferral,
            !stopping.load(ordering: .relaxed)
        {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    private func handle(_ id: String) async {
        defer { known.withLock { _ = $0.remove(id) } }
        do {
            let spool = self.spool
            let envelope = try await Pipeline.offPool { try spool.envelope(id, as: SMTPEnvelope.self) }
            let file = spool.messageURL(id)
            let received =
                ((try? FileManager.default.attributesOfItem(atPath: file.path))?[.modificationDate] as? Date) ?? Date()
            let message = IngestMessage(
                id: id, file: file, sender: envelope.sender, recipients: envelope.recipients, receivedAt: received,
                authenticatedUser: envelope.authenticatedUser, clientAddress: envelope.clientAddress)
            _ = try await pipeline.process(message)
            try await Pipeline.offPool { try spool.remove(id) }
        } catch {
            logger.error(
                "message could not be routed; it stays in the spool",
                metadata: ["id": "\(id)", "error": "\(error)", "retry_in": "\(retryDelay)"])
            let delay = retryDelay
            Task {
                try? await Task.sleep(for: delay)
                self.enqueue(id)
            }
        }
    }
}
