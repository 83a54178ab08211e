public import Foundation

/// What happened to one accepted message: the pipeline's own record, behind a protocol like the
/// directives (DESIGN.md, "Data model": message, job, delivery, journal).
public protocol IngestLedger: DeliveryLedger {
    /// Records a message the first time the worker sees it; later calls return the stored record.
    func openMessage(_ message: MessageRecord) async throws -> MessageRecord
    /// `openMessage`, then (if the message is unfinished, or `again`) `beginAttempt`: one transaction.
    func startProcessing(_ message: MessageRecord, again: Bool, journal: [JournalEntry]) async throws -> (MessageRecord, attempts: Int)
    func message(_ id: String) async throws -> MessageRecord?
    /// Records the outcome, with the journal lines that go with it, in one transaction.
    func finishMessage(_ id: String, state: MessageState, outcome: String, at date: Date, journal: [JournalEntry]) async throws
    /// Counts one more start of work on a message and returns the count (journal lines with it).
    func beginAttempt(_ id: String, journal: [JournalEntry]) async throws -> Int
    /// Records who may receive this message's notices (`MessageRecord.notify`).
    func setNotify(_ id: String, address: String?) async throws

    /// Accepts a message's jobs in one transaction, each directive's use count increased once.
    /// Idempotent: if this message's jobs were accepted before, those are returned and nothing
    /// is counted again. Throws `.directiveInactive` (nothing accepted) when a directive is
    /// revoked, expired or out of uses, counting the uses of this very message.
    func acceptJobs(messageID: String, directives: [DirectiveID], at date: Date) async throws -> [JobRecord]
    func jobs(messageID: String) async throws -> [JobRecord]

    /// Holds a message in quarantine and marks it finished, with its journal lines, at once.
    func quarantine(_ entry: QuarantineEntry, journal: [JournalEntry]) async throws
    func quarantineEntry(_ messageID: String) async throws -> QuarantineEntry?
    /// Held entries first, newest first.
    func quarantineEntries() async throws -> [QuarantineEntry]
    func setQuarantineState(_ messageID: String, _ state: QuarantineState, at date: Date) async throws

    func journal(_ entries: [JournalEntry]) async throws
    func journal(messageID: String) async throws -> [JournalEntry]
}

public enum MessageState: String, Sendable, Codable {
    /// Spooled; the worker has not finished with it.
    case received
    /// Every job delivered.
    case done
    case quarantined
}

public struct MessageRecord: Sendable, Hashable, Codable {
    public var id: String
    public var receivedAt: Date
    public var sender: String
    public var recipients: [String]
    public var size: Int
    public var state: MessageState
    public var outcome: String?
    public var finishedAt: Date?
    /// The address a failure notice may go to (the sender, when the pipeline found it may be
    /// told: a configured domain or an authenticated session, and not automatic mail); nil: nobody.
    public var notify: String?

    public init(
        id: String, receivedAt: Date, sender: String, recipients: [String], size: Int, state: MessageState = .received,
        outcome: String? = nil, finishedAt: Date? = nil, notify: String? = nil
    ) {
        self.notify = notify
        self.id = id
        self.receivedAt = receivedAt
        self.sender = sender
        self.recipients = recipients
        self.size = size
        self.state = state
        self.outcome = outcome
        self.finishedAt = finishedAt
    }
}

public struct JobRecord: Sendable, Hashable, Codable {
    public var messageID: String
    /// 1-based, in the order the sheets appear in the scan.
    public var number: Int
    public var directive: DirectiveID
    public var acceptedAt: Date

    public init(messageID: String, number: Int, directive: DirectiveID, acceptedAt: Date) {
        self.messageID = messageID
        self.number = number
        self.directive = directive
        self.acceptedAt = acceptedAt
    }
}

public enum QuarantineState: String, Sendable, Codable, CaseIterable {
    case held
    case released
    case rerouted
    case deleted
}

/// Why a message was not delivered, and where its original is kept.
public struct QuarantineEntry: Sendable, Hashable, Codable {
    public var messageID: String
    /// A stable name: `no-sheet`, `forged`, `unknown-directive`, `revoked`, `expired`,
    /// `used-up`, `malformed-batch`, `unreadable-attachment`, …
    public var reason: String
    public var detail: String
    public var at: Date
    public var state: QuarantineState
    public var sender: String
    public var recipients: [String]
    public var subject: String?

    public init(
        messageID: String, reason: String, detail: String, at: Date, state: QuarantineState = .held, sender: String,
        recipients: [String], subject: String?
    ) {
        self.messageID = messageID
        self.reason = reason
        self.detail = detail
        self.at = at
        self.state = state
        self.sender = sender
        self.recipients = recipients
        self.subject = subject
    }
}

/// An append-only line of history: every step a person may ask about later.
public struct JournalEntry: Sendable, Hashable, Codable {
    public var sequence: Int64?
    public var at: Date
    public var messageID: String
    /// `received`, `decoded`, `accepted`, `delivered`, `quarantined`, `rerouted`, `released`, `deleted`, `done`.
    public var event: String
    public var detail: String
    /// `worker`, or the person or command that acted (`cli:root`).
    public var actor: String

    public init(sequence: Int64? = nil, at: Date, messageID: String, event: String, detail: String, actor: String = "worker") {
        self.sequence = sequence
        self.at = at
        self.messageID = messageID
        self.event = event
        self.detail = detail
        self.actor = actor
    }
}
