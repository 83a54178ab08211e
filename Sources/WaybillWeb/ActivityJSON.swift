import Foundation
import WaybillCore

/// The JSON of quarantine entries, deliveries, journal lines (`OperatorJSON`, shared with the
/// CLI's `--json`) and of messages with their jobs.
enum ActivityJSON {
    typealias Entry = OperatorJSON.Entry
    typealias Journal = OperatorJSON.Journal
    typealias Delivery = OperatorJSON.Delivery

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
