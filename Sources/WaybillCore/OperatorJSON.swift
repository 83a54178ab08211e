public import Foundation

/// The JSON shapes of quarantine entries, journal lines and deliveries, one set for the CLI's
/// `--json` and the web API, so a script reads the same keys from either.
public enum OperatorJSON {
    public struct Entry: Encodable, Sendable {
        public let id: String
        public let reason: String
        public let detail: String
        public let at: String
        public let state: String
        public let sender: String
        public let recipients: [String]
        public let subject: String?

        public init(_ entry: QuarantineEntry) {
            id = entry.messageID
            reason = entry.reason
            detail = entry.detail
            at = HumanDate.formatISO(entry.at)
            state = entry.state.rawValue
            sender = entry.sender
            recipients = entry.recipients
            subject = entry.subject
        }
    }

    public struct Journal: Encodable, Sendable {
        public let sequence: Int64?
        public let message: String
        public let at: String
        public let event: String
        public let detail: String
        public let actor: String

        public init(_ entry: JournalEntry) {
            sequence = entry.sequence
            message = entry.messageID
            at = HumanDate.formatISO(entry.at)
            event = entry.event
            detail = entry.detail
            actor = entry.actor
        }
    }

    public struct Delivery: Encodable, Sendable {
        public let id: Int64
        public let message: String
        public let job: Int
        public let kind: String
        public let destination: String
        public let state: String
        public let attempts: Int
        public let file_name: String
        public let sha256: String
        public let target: String
        public let created: String
        public let next_attempt: String?
        public let last_error: String?
        public let delivered: String?

        public init(_ row: DeliveryRecord) {
            id = row.id
            message = row.messageID
            job = row.job
            kind = row.kind.rawValue
            destination = row.destination
            state = row.state.rawValue
            attempts = row.attempts
            file_name = row.fileName
            sha256 = row.sha256
            target = row.target
            created = HumanDate.formatISO(row.createdAt)
            next_attempt = row.state == .queued ? row.nextAttemptAt.map(HumanDate.formatISO) : nil
            last_error = row.lastError
            delivered = row.deliveredAt.map(HumanDate.formatISO)
        }
    }
}
