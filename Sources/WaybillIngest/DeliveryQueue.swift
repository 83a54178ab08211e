import Foundation
public import Logging
import Synchronization
import WaybillCore
import WaybillStore

/// Works the outbox: every queued delivery whose time has come, a few at a time, then sleeps
/// until the next one falls due, a new one is queued (`wake`), or a minute passes (an
/// operator's `queue retry` from another process is seen within that).
///
/// At its start every row still `sending` is queued again: those attempts belonged to a
/// process that died. A folder delivery then finds its file and only records it; a webhook is
/// sent again with the same idempotency key; a mail may be sent twice if the process died
/// between the smarthost's 250 and the record of it (README, "Delivery guarantees").
public final class DeliveryQueue: Sendable {
    public let deliverer: Deliverer
    public let concurrency: Int
    public let pollInterval: Duration
    private let logger: Logger
    private let signal = WakeSignal()
    private let stopping = Atomic<Bool>(false)

    public init(deliverer: Deliverer, concurrency: Int = 4, pollInterval: Duration = .seconds(60), logger: Logger) {
        self.deliverer = deliverer
        self.concurrency = max(1, concurrency)
        self.pollInterval = pollInterval
        self.logger = logger
    }

    /// Something was queued: look now rather than at the next scheduled time.
    public func wake() { signal.signal() }

    /// Stops taking deliveries; attempts under way finish first.
    public func finish() {
        stopping.store(true, ordering: .relaxed)
        signal.signal()
    }

    /// Runs until `finish()` or cancellation.
    public func run() async {
        do {
            let requeued = try await deliverer.store.requeueAbandoned(before: .distantFuture)
            if requeued > 0 { logger.info("deliveries resumed after a restart", metadata: ["count": "\(requeued)"]) }
        } catch {
            logger.error("cannot resume deliveries", metadata: ["error": "\(error)"])
        }
        while !stopping.load(ordering: .relaxed), !Task.isCancelled {
            let attempted = await runDue()
            if attempted > 0 { continue }
            // Nothing due: wait for the next due time, a wake-up, or the poll interval.
            var wait = pollInterval
            if let next = try? await deliverer.store.nextDelivery() {
                let seconds = max(0, next.timeIntervalSince(deliverer.now()))
                wait = min(wait, .milliseconds(Int64(seconds * 1000) + 5))
            }
            await signal.wait(timeout: wait)
        }
    }

    /// One pass: attempts every delivery due now, `concurrency` at a time. Returns how many were
    /// attempted. The tests call this with their own clock.
    @discardableResult
    public func runDue() async -> Int {
        let due: [DeliveryRecord]
        do {
            due = try await deliverer.store.dueDeliveries(at: deliverer.now(), limit: concurrency * 8)
        } catch {
            logger.error("cannot read the delivery queue", metadata: ["error": "\(error)"])
            return 0
        }
        guard !due.isEmpty else { return 0 }
        let deliverer = self.deliverer
        let logger = self.logger
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            for record in due {
                if stopping.load(ordering: .relaxed) { break }
                if running == concurrency {
                    _ = await group.next()
                    running -= 1
                }
                running += 1
                group.addTask {
                    do {
                        try await deliverer.attempt(record.id)
                    } catch {
                        logger.error("delivery attempt not recorded", metadata: ["id": "\(record.id)", "error": "\(error)"])
                    }
                }
            }
        }
        return due.count
    }
}

/// A wake-up that is not lost when it comes before the wait.
final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.pending = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns at a signal (one that came before the call counts) or after `timeout`.
    func wait(timeout: Duration) async {
        if state.withLock({ state in
            defer { state.pending = false }
            return state.pending
        }) {
            return
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await Task.sleep(for: timeout)
                if !Task.isCancelled { self.signal() }
            }
            group.addTask {
                await withCheckedContinuation { continuation in
                    let fire = self.state.withLock { state -> Bool in
                        if state.pending {
                            state.pending = false
                            return true
                        }
                        state.waiter = continuation
                        return false
                    }
                    if fire { continuation.resume() }
                }
            }
            _ = await group.next()
            group.cancelAll()
        }
        state.withLock { $0.pending = false }
    }
}
