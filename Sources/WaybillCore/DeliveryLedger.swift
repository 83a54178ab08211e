public import Foundation

/// The outbox (DESIGN.md, "deliveries (outbox)"): one row per job × destination, plus the
/// message itself for a relay and the notices Waybill sends. A row is written, with its document
/// already durable in the data directory, before the message leaves the spool; the delivery
/// queue then works the rows until each is delivered or given up (a dead letter).
public protocol DeliveryLedger: Sendable {
    /// Adds rows in one transaction with their journal lines. Idempotent: a row that exists (same
    /// message, job, kind and destination) is left as it is, so a message run again after a crash
    /// queues nothing twice. New rows are due at `date`. Returns the rows as stored.
    func enqueue(_ deliveries: [NewDelivery], at date: Date, journal: [JournalEntry]) async throws -> [DeliveryRecord]
    /// Takes a queued row for one attempt: `sending`, held until `until`. Nil if another attempt
    /// has it or it is no longer queued: only the taker attempts it.
    func claimDelivery(_ id: Int64, at date: Date, until: Date) async throws -> DeliveryRecord?
    /// Where a folder delivery is about to write (path and hash), recorded before the write so a
    /// restart can tell a finished write from an unfinished one.
    func planTarget(_ id: Int64, target: String) async throws
    func recordAttempt(_ id: Int64, _ result: DeliveryAttemptResult, at date: Date, journal: [JournalEntry]) async throws
    func delivery(_ id: Int64) async throws -> DeliveryRecord?
    func deliveries(messageID: String) async throws -> [DeliveryRecord]
    /// Rows in these states, oldest first (`waybill queue list`).
    func deliveries(states: Set<DeliveryState>, limit: Int) async throws -> [DeliveryRecord]
    /// Queued rows whose next attempt is due, soonest first.
    func dueDeliveries(at date: Date, limit: Int) async throws -> [DeliveryRecord]
    /// When the next queued row falls due (nil: nothing queued).
    func nextDelivery() async throws -> Date?
    /// Back to `queued` every `sending` row whose hold ran out before `date` (all of them at a
    /// start: the attempts of a process that died). Returns how many.
    func requeueAbandoned(before date: Date) async throws -> Int
    /// An operator's retry: queued, due at `date`, its give-up clock started again.
    func retryDelivery(_ id: Int64, at date: Date, journal: [JournalEntry]) async throws -> DeliveryRecord?
    /// An operator's purge of a dead or queued row: it will never be attempted again.
    func purgeDelivery(_ id: Int64, at date: Date, journal: [JournalEntry]) async throws -> DeliveryRecord?
}

public enum DeliveryKind: String, Sendable, Codable, CaseIterable {
    /// A job's document to one of its directive's destinations.
    case document
    /// The message itself, relayed as ordinary mail to its recipient (a `relay` routing rule).
    case relay
    /// A notice Waybill writes: a delivery confirmation or a failure notice.
    case notice
}

public enum DeliveryState: String, Sendable, Codable, CaseIterable {
    /// Waiting for its next attempt.
    case queued
    /// An attempt is under way (held by one process until its hold runs out).
    case sending
    case delivered
    /// Given up: a permanent refusal, or temporary failures for longer than the give-up time.
    case dead
    /// Removed by an operator; never attempted again.
    case purged

    public var isFinal: Bool { self == .delivered || self == .dead || self == .purged }
}

public struct NewDelivery: Sendable, Hashable {
    public var messageID: String
    /// The job's number; 0 for a relay or a notice.
    public var job: Int
    public var kind: DeliveryKind
    /// A destination URI (`mailto:`, `folder:`, `https://`).
    public var destination: String
    /// The file to deliver, kept in the data directory's outbox until the row is final.
    public var document: String
    /// The file name the receiver sees.
    public var fileName: String
    public var sha256: String

    public init(messageID: String, job: Int, kind: DeliveryKind, destination: String, document: String, fileName: String, sha256: String) {
        self.messageID = messageID
        self.job = job
        self.kind = kind
        self.destination = destination
        self.document = document
        self.fileName = fileName
        self.sha256 = sha256
    }
}

public struct DeliveryRecord: Sendable, Hashable, Codable {
    public var id: Int64
    public var messageID: String
    public var job: Int
    public var kind: DeliveryKind
    public var destination: String
    public var state: DeliveryState
    public var document: String
    public var fileName: String
    /// Hex SHA-256 of the document.
    public var sha256: String
    /// Where it went or is going: the file written for a folder, the server's reply for mail,
    /// the status for a webhook. Empty until the first attempt.
    public var target: String
    public var attempts: Int
    public var createdAt: Date
    /// When retries started counting towards the give-up time (creation, or an operator's retry).
    public var retrySince: Date
    public var nextAttemptAt: Date?
    public var lastAttemptAt: Date?
    public var lastError: String?
    public var deliveredAt: Date?

    public init(
        id: Int64, messageID: String, job: Int, kind: DeliveryKind, destination: String, state: DeliveryState, document: String,
        fileName: String, sha256: String, target: String = "", attempts: Int = 0, createdAt: Date, retrySince: Date? = nil,
        nextAttemptAt: Date? = nil, lastAttemptAt: Date? = nil, lastError: String? = nil, deliveredAt: Date? = nil
    ) {
        self.id = id
        self.messageID = messageID
        self.job = job
        self.kind = kind
        self.destination = destination
        self.state = state
        self.document = document
        self.fileName = fileName
        self.sha256 = sha256
        self.target = target
        self.attempts = attempts
        self.createdAt = createdAt
        self.retrySince = retrySince ?? createdAt
        self.nextAttemptAt = nextAttemptAt
        self.lastAttemptAt = lastAttemptAt
        self.lastError = lastError
        self.deliveredAt = deliveredAt
    }
}

/// How one attempt ended.
public enum DeliveryAttemptResult: Sendable, Hashable {
    /// Done; `target` says where (the file written, the server's reply, the HTTP status).
    case delivered(target: String)
    /// Failed for now; the next attempt is due at `next`.
    case retry(error: String, next: Date)
    /// Given up.
    case dead(error: String)
}

/// When to try again: exponential backoff with jitter, in the spirit of RFC 5321 §4.5.4.1.
/// The first retry comes after `firstDelay`, each later one after twice the delay before it up
/// to `maximumDelay`; each delay is scaled by a random factor in 0.8…1.2 so that many
/// deliveries refused at once do not come back at once. After `giveUp` since the first
/// attempt, the delivery is given up.
public struct RetrySchedule: Sendable, Hashable {
    public var firstDelay: Duration
    public var maximumDelay: Duration
    public var giveUp: Duration

    public init(firstDelay: Duration = .seconds(300), maximumDelay: Duration = .seconds(4 * 3600), giveUp: Duration = .seconds(4 * 86400)) {
        self.firstDelay = firstDelay
        self.maximumDelay = max(maximumDelay, firstDelay)
        self.giveUp = giveUp
    }

    /// The delay before retry number `failures` (1 after the first failure), before jitter.
    public func baseDelay(afterFailures failures: Int) -> Duration {
        let first = Self.seconds(firstDelay)
        let doubled = first * pow(2, Double(min(max(failures, 1) - 1, 40)))
        return .milliseconds(Int64(min(doubled, Self.seconds(maximumDelay)) * 1000))
    }

    /// The next attempt's date, or nil when the delivery should be given up instead.
    public func nextAttempt(
        afterFailures failures: Int, since: Date, now: Date, jitter: Double = Double.random(in: 0.8...1.2)
    ) -> Date? {
        let delay = Self.seconds(baseDelay(afterFailures: failures)) * min(max(jitter, 0.5), 1.5)
        // One last attempt at the give-up time itself; a failure then is final.
        let deadline = since.addingTimeInterval(Self.seconds(giveUp))
        guard now < deadline else { return nil }
        return min(now.addingTimeInterval(delay), deadline)
    }

    public static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
