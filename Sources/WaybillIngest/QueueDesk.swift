public import Foundation
public import WaybillCore
public import WaybillStore

/// The operator's side of the outbox, shared by `waybill queue` and the web app: retry or purge
/// one delivery, journalled with the actor. A retry wakes the running delivery queue through
/// `onQueued` (in `serve`, the queue's `wake()`; elsewhere nothing: `serve` picks it up).
public struct QueueDesk: DeliveryQueueOperations {
    public let store: SQLiteDirectiveStore
    public let dataDirectory: DataDirectory
    public let now: @Sendable () -> Date
    public let onQueued: @Sendable () -> Void

    public init(
        store: SQLiteDirectiveStore, dataDirectory: DataDirectory, now: @escaping @Sendable () -> Date = { Date() },
        onQueued: @escaping @Sendable () -> Void = {}
    ) {
        self.store = store
        self.dataDirectory = dataDirectory
        self.now = now
        self.onQueued = onQueued
    }

    /// The pipeline's store and data directory, and its wake-up of the delivery queue.
    public init(pipeline: Pipeline) {
        self.init(store: pipeline.store, dataDirectory: pipeline.dataDirectory, now: pipeline.now, onQueued: pipeline.onQueued)
    }

    public func delivery(_ id: Int64) async throws -> DeliveryRecord {
        guard let row = try await store.delivery(id) else { throw WaybillError(.unknownDelivery, "no delivery \(id)") }
        return row
    }

    public func retry(_ id: Int64, actor: String) async throws -> DeliveryRecord {
        let row = try await delivery(id)
        let line = JournalEntry(
            at: now(), messageID: row.messageID, event: "retry", detail: "delivery \(row.id) to \(row.destination) queued again",
            actor: actor)
        guard let changed = try await store.retryDelivery(id, at: now(), journal: [line]) else { throw refusal(row, "retried") }
        onQueued()
        return changed
    }

    public func purge(_ id: Int64, actor: String) async throws -> DeliveryRecord {
        let row = try await delivery(id)
        let line = JournalEntry(
            at: now(), messageID: row.messageID, event: "purged",
            detail: "delivery \(row.id) to \(row.destination) given up by an operator", actor: actor)
        guard let purged = try await store.purgeDelivery(id, at: now(), journal: [line]) else { throw refusal(row, "purged") }
        // The document goes with the last row that needed it.
        if try await store.deliveries(messageID: row.messageID).allSatisfy({ $0.state == .delivered || $0.state == .purged }) {
            try? FileManager.default.removeItem(at: Outbox(dataDirectory: dataDirectory).folder(row.messageID))
        }
        return purged
    }

    func refusal(_ row: DeliveryRecord, _ verb: String) -> WaybillError {
        WaybillError(.invalidQueueAction, "delivery \(row.id) is \(row.state.rawValue); only queued or dead deliveries can be \(verb)")
    }
}
