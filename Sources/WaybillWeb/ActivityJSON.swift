import Foundation
import WaybillCore

/// The JSON of quarantine entries, deliveries, journal lines and messages: the same fields and
/// names as the CLI's `--json` output (`waybill quarantine show --json`, `waybill queue list --json`).
enum ActivityJSON {
    struct Entry: Encodable {
        let id: String
        let reason: String
        let detail: String
        let at: String
        let state: String
        let sender: String
        let recipients: [String]
        let subject: String?

        init(_ entry: QuarantineEntry) {
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

    struct Journal: Encodable {
        let sequence: Int64?
        let message: String
        let at: String
        let event: String
        let detail: String
        let actor: String

        init(_ entry: JournalEntry) {
            sequence = entry.sequence
            message = entry.messageID
            at = HumanDate.formatISO(entry.at)
            event = entry.event
            detail = entry.detail
            actor = entry.actor
        }
    }

    struct Delivery: Encodable {
        let id: Int64
        let message: String
        let job: Int
        let kind: String
        let destination: String
        let state: String
        let attempts: Int
        let file_name: String
        let sha256: String
        let target: String
        let created: String
        let next_attempt: String?
        let last_error: String?
        let delivered: String?

        init(_ row: DeliveryRecord) {
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

    struct Job: Encodable {
        let number: Int
        let directive: String
        /// Nil when the directive is gone from the store.
        let title: String?
        let owner: String?
        let accepted: String
    }

    struct Message: Encodable {
        let id: String
        let received: String
        let sender: String
        let recipients: [String]
        /// `received` (not finished), `done` or `quarantined`.
        let state: String
        /// `delivered`, `queued` (deliveries left to the queue) or the quarantine reason.
        let outcome: String?
        let finished: String?
        let jobs: [Job]
        let deliveries: [Delivery]
        /// Only for one message (`GET /api/messages/{id}`).
        let journal: [Journal]?

        enum CodingKeys: String, CodingKey { case id, received, sender, recipients, state, outcome, finished, jobs, deliveries, journal }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(received, forKey: .received)
            try container.encode(sender, forKey: .sender)
            try container.encode(recipients, forKey: .recipients)
            try container.encode(state, forKey: .state)
            try container.encode(outcome, forKey: .outcome)
            try container.encode(finished, forKey: .finished)
            try container.encode(jobs, forKey: .jobs)
            try container.encode(deliveries, forKey: .deliveries)
            if let journal { try container.encode(journal, forKey: .journal) }
        }
    }
}
