import Crypto
public import Foundation
public import Logging
public import WaybillCore
public import WaybillDelivery
import WaybillScan
public import WaybillStore

/// How deliveries are made and retried, and who hears about them: from configuration.
public struct DeliveryOptions: Sendable {
    public var schedule: RetrySchedule
    /// Our name in EHLO and in Message-IDs.
    public var hostname: String
    /// The envelope sender and From of the documents Waybill mails (`waybill@<hostname>`).
    public var mailFrom: String
    /// Send delivery confirmations and failure notices at all.
    public var notices: Bool
    /// Senders in these domains may receive failure notices (so may authenticated senders);
    /// nobody else does: no backscatter to forged senders.
    public var localDomains: [String]
    /// Where people make a new routing sheet, named in notices (the web app), if there is one.
    public var sheetsURL: String?
    /// How long one attempt may hold a delivery before another process may take it over.
    public var hold: Duration
    /// The webhook allow-list as it is now: a queued webhook whose URL an administrator has
    /// since taken off it is not posted (nil: not checked again, as in tests of the pipeline alone).
    public var webhookAllowList: [String]?

    public init(
        schedule: RetrySchedule = RetrySchedule(), hostname: String = "localhost", mailFrom: String? = nil, notices: Bool = true,
        localDomains: [String] = [], sheetsURL: String? = nil, hold: Duration = .seconds(1800), webhookAllowList: [String]? = nil
    ) {
        self.webhookAllowList = webhookAllowList
        self.schedule = schedule
        self.hostname = hostname
        self.mailFrom = mailFrom ?? "waybill@\(hostname)"
        self.notices = notices
        self.localDomains = localDomains.map { $0.lowercased() }
        self.sheetsURL = sheetsURL
        self.hold = hold
    }
}

/// Makes one attempt at one outbox row, through the transport its destination needs, and
/// records how it ended: delivered, retry at a time the schedule picks, or dead (with a failure
/// notice). The pipeline uses it for its folder deliveries at once; the delivery queue for
/// everything else and for every retry.
public struct Deliverer: Sendable {
    public let store: SQLiteDirectiveStore
    public let dataDirectory: DataDirectory
    public let folders: FolderTransport
    public let smtp: SMTPClient?
    public let webhooks: WebhookTransport?
    public let options: DeliveryOptions
    /// The clock the schedule reads: injected by the tests so retries and give-ups run in test time.
    public let now: @Sendable () -> Date
    public let logger: Logger
    /// Counts every attempt by kind and outcome: the pipeline's folder writes and the queue's.
    public let metrics: Metrics

    public init(
        store: SQLiteDirectiveStore, dataDirectory: DataDirectory, folders: FolderTransport, smtp: SMTPClient? = nil,
        webhooks: WebhookTransport? = nil, options: DeliveryOptions = DeliveryOptions(),
        now: @escaping @Sendable () -> Date = { Date() }, logger: Logger = Logger(label: "waybill.delivery"),
        metrics: Metrics = Metrics()
    ) {
        self.metrics = metrics
        self.store = store
        self.dataDirectory = dataDirectory
        self.folders = folders
        self.smtp = smtp
        self.webhooks = webhooks
        self.options = options
        self.now = now
        self.logger = logger
    }

    public var outbox: Outbox { Outbox(dataDirectory: dataDirectory) }

    /// Takes the row and attempts it. Nil when it was not queued (delivered, or another attempt
    /// holds it). Throws only when the outcome could not be recorded; the row then stays held
    /// until its hold runs out and is attempted again.
    @discardableResult
    public func attempt(_ id: Int64, actor: String = "worker") async throws -> DeliveryAttemptResult? {
        let start = now()
        guard let record = try await store.claimDelivery(id, at: start, until: start.addingTimeInterval(RetrySchedule.seconds(options.hold)))
        else { return nil }
        let clock = ContinuousClock.now
        let result: DeliveryAttemptResult
        do {
            result = .delivered(target: try await send(record))
        } catch let failure as DeliveryFailure {
            result = schedule(record, failure)
        } catch let error as WaybillError {
            result = schedule(record, DeliveryFailure(.temporary, "\(error.message) [\(error.code)]"))
        } catch {
            result = schedule(record, DeliveryFailure(.temporary, "\(error)"))
        }
        metrics.deliveryAttempt(kind: record.kind, outcome: Self.metricsOutcome(result))
        let what = (record.job > 0 ? "job \(record.job) " : "") + (record.kind == .document ? "" : "\(record.kind.rawValue) ") + "to \(record.destination)"
        let line: JournalEntry
        switch result {
        case .delivered(let target):
            // A folder write whose record a crash interrupted: the file was there with its hash.
            let found = !record.target.isEmpty && target == record.target && record.destination.hasPrefix("folder:")
            line = JournalEntry(
                at: now(), messageID: record.messageID, event: "delivered",
                detail: "\(what): \(target)" + (found ? " (found after a restart)" : ""), actor: actor)
        case .retry(let error, let next):
            line = JournalEntry(
                at: now(), messageID: record.messageID, event: "deferred",
                detail: "\(what): attempt \(record.attempts + 1) failed (\(error)); next attempt \(Self.format(next))", actor: actor)
        case .dead(let error):
            line = JournalEntry(
                at: now(), messageID: record.messageID, event: "dead-letter",
                detail: "\(what): given up after \(record.attempts + 1) attempt(s): \(error)", actor: actor)
        }
        try await store.recordAttempt(record.id, result, at: now(), journal: [line])
        logger.info(
            "delivery attempt",
            metadata: [
                "id": "\(record.id)", "message": "\(record.messageID)", "destination": "\(record.destination)",
                "outcome": "\(Self.name(result))", "ms": "\(Pipeline.milliseconds(ContinuousClock.now - clock))",
            ])
        await after(record, result, actor: actor)
        return result
    }

    /// Retry later, or give up: a permanent failure, or the schedule's give-up time reached.
    func schedule(_ record: DeliveryRecord, _ failure: DeliveryFailure) -> DeliveryAttemptResult {
        guard failure.kind == .temporary else { return .dead(error: failure.message) }
        guard let next = options.schedule.nextAttempt(afterFailures: record.attempts + 1, since: record.retrySince, now: now()) else {
            return .dead(error: "gave up after \(Self.span(now().timeIntervalSince(record.retrySince))) of retries; last error: \(failure.message)")
        }
        return .retry(error: failure.message, next: next)
    }

    /// Through the destination's transport; returns where it went.
    func send(_ record: DeliveryRecord) async throws -> String {
        guard FileManager.default.fileExists(atPath: record.document) else {
            throw DeliveryFailure.permanent("the document \(record.document) is missing from the outbox")
        }
        let destination: Destination
        do { destination = try Destination(uri: record.destination) } catch {
            throw DeliveryFailure.permanent("\(record.destination) is not a destination: \(error.message)")
        }
        switch (record.kind, destination) {
        case (.document, .folder):
            return try await writeFolder(record, destination)
        case (.document, .email(let address)):
            return try await mailDocument(record, to: address)
        case (.document, .webhook(let url)):
            return try await postWebhook(record, to: url)
        case (.relay, .email(let address)), (.notice, .email(let address)):
            return try await mailFile(record, to: address)
        default:
            throw DeliveryFailure.permanent("a \(record.kind.rawValue) cannot go to \(record.destination)")
        }
    }

    // MARK: Folders

    /// Exactly once: the target's path is recorded before the write (`planTarget`), and a later
    /// attempt that finds that file with the document's hash only records it.
    func writeFolder(_ record: DeliveryRecord, _ destination: Destination) async throws -> String {
        if !record.target.isEmpty, (try? await Pipeline.offPool { try Pipeline.sha256(URL(fileURLWithPath: record.target)) }) == record.sha256 {
            return record.target
        }
        let folders = self.folders
        let folder: FolderTransport.Folder
        do {
            folder = try await Pipeline.offPool { try folders.open(destination) }
        } catch let error as WaybillError {
            throw Self.folderFailure(error)
        }
        let document = URL(fileURLWithPath: record.document)
        for _ in 0..<100 {
            let name = try await Pipeline.offPool { folder.freeName(record.fileName) }
            let target = folder.path + "/" + name
            try await store.planTarget(record.id, target: target)
            do {
                if try await Pipeline.offPool({ try folder.write(document, as: name) }) {
                    CrashPoint.reached("after-link")
                    return target
                }
            } catch let error as WaybillError {
                throw Self.folderFailure(error)
            }
        }
        throw DeliveryFailure.temporary("no free file name for \(record.fileName) in \(folder.path)")
    }

    /// A root that is gone or a path that escapes it will not come back by waiting; a disk
    /// that is full or a permission that is wrong may be fixed by the administrator.
    static func folderFailure(_ error: WaybillError) -> DeliveryFailure {
        switch error.code {
        case .unknownFolderRoot, .pathEscape, .invalidDestination: .permanent("\(error.message) [\(error.code)]")
        default: .temporary("\(error.message) [\(error.code)]")
        }
    }

    // MARK: After an attempt

    /// Notices that follow an attempt, and the outbox tidied once a message is finished with.
    /// Failures here are logged, never thrown: the attempt itself is recorded already.
    func after(_ record: DeliveryRecord, _ result: DeliveryAttemptResult, actor: String) async {
        do {
            switch result {
            case .delivered where record.kind == .document:
                try await confirmIfComplete(record, actor: actor)
            case .dead(let error) where record.kind != .notice:
                try await noticeDeadLetter(record, error: error, actor: actor)
            default:
                break
            }
            try await tidy(record.messageID)
        } catch {
            logger.error("after a delivery attempt", metadata: ["id": "\(record.id)", "error": "\(error)"])
        }
    }

    /// Removes a message's outbox files once every row of it is delivered or purged (a dead
    /// letter keeps its document, for `waybill queue retry`).
    func tidy(_ messageID: String) async throws {
        let rows = try await store.deliveries(messageID: messageID)
        guard rows.allSatisfy({ $0.state == .delivered || $0.state == .purged }) else { return }
        let folder = outbox.folder(messageID)
        try? await Pipeline.offPool { try? FileManager.default.removeItem(at: folder) }
    }

    static func metricsOutcome(_ result: DeliveryAttemptResult) -> Metrics.DeliveryOutcome {
        switch result {
        case .delivered: .delivered
        case .retry: .retry
        case .dead: .dead
        }
    }

    static func name(_ result: DeliveryAttemptResult) -> String {
        switch result {
        case .delivered: "delivered"
        case .retry: "deferred"
        case .dead: "dead-letter"
        }
    }

    /// "30 November 2026, 01:43 UTC": for people (notices, mail bodies, the journal).
    static func format(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let time = calendar.dateComponents([.hour, .minute], from: date)
        return HumanDate.format(date) + String(format: ", %02d:%02d UTC", time.hour ?? 0, time.minute ?? 0)
    }

    /// "4 days", "3 hours", "12 minutes", "40 seconds".
    static func span(_ seconds: TimeInterval) -> String {
        let s = Int(seconds.rounded())
        if s >= 2 * 86400 { return "\(s / 86400) days" }
        if s >= 2 * 3600 { return "\(s / 3600) hours" }
        if s >= 120 { return "\(s / 60) minutes" }
        return "\(s) seconds"
    }
}

/// Documents waiting for delivery: `<data>/outbox/<message id>/`, written durably before the
/// message leaves the spool, removed when every delivery of the message is done.
public struct Outbox: Sendable {
    public let url: URL

    public init(dataDirectory: DataDirectory) {
        url = dataDirectory.url.appendingPathComponent("outbox", isDirectory: true)
    }

    public func folder(_ messageID: String) -> URL { url.appendingPathComponent(messageID, isDirectory: true) }

    /// Moves a finished file into the message's outbox folder under `name`, durably (fsync of
    /// the file and of the folder), and returns its path.
    public func keep(_ file: URL, messageID: String, as name: String) throws -> URL {
        let folder = self.folder(messageID)
        try Pipeline.createDirectory(url)
        try Pipeline.createDirectory(folder)
        let target = folder.appendingPathComponent(name)
        try DurableFile.sync(file.path)
        guard rename(file.path, target.path) == 0 else {
            throw WaybillError(.ioError, "cannot keep \(name) in the outbox: \(String(cString: strerror(errno)))")
        }
        chmod(target.path, 0o600)
        DurableFile.syncDirectory(folder.path)
        DurableFile.syncDirectory(url.path)
        return target
    }
}
