import Foundation
import Hummingbird
import WaybillCore

/// `/api/queue`: the outbox, as `waybill queue` shows it, for admins only. Retry and purge go
/// through the configured `DeliveryQueueOperations` (a retry wakes the running delivery queue),
/// journalled as `web:<username>`.
struct QueueRoutes: Sendable {
    let configuration: WebConfiguration

    static let defaultLimit = 100
    static let limitRange = 1...1000

    func add(to group: RouterGroup<WebRequestContext>) {
        group.get("queue", use: list)
        group.get("queue/:id", use: show)
        group.post("queue/:id/retry", use: retry)
        group.post("queue/:id/purge", use: purge)
    }

    struct Show: Encodable {
        let delivery: ActivityJSON.Delivery
        let journal: [ActivityJSON.Journal]
    }

    /// `?state=queued,sending,dead` (the default; `all` for every state), `?limit=N`; oldest first.
    @Sendable func list(_ request: Request, context: WebRequestContext) async throws -> Response {
        _ = try context.requireAdmin("sees the delivery queue")
        var states: Set<DeliveryState> = [.queued, .sending, .dead]
        if let text = request.uri.queryParameters.get("state"), !text.isEmpty {
            states = []
            for name in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) {
                if name == "all" {
                    states.formUnion(DeliveryState.allCases)
                } else if let state = DeliveryState(rawValue: name) {
                    states.insert(state)
                } else {
                    let known = DeliveryState.allCases.map(\.rawValue).joined(separator: ", ")
                    throw APIError.badRequest("unknown delivery state '\(name)' (one of \(known), or all)")
                }
            }
        }
        let limit = try Self.limit(request, default: Self.defaultLimit, range: Self.limitRange)
        let rows = try await configuration.store.deliveries(states: states, limit: limit)
        return try JSONResponse.make(rows.map(ActivityJSON.Delivery.init))
    }

    @Sendable func show(_ request: Request, context: WebRequestContext) async throws -> Response {
        _ = try context.requireAdmin("sees the delivery queue")
        let row = try await row(context)
        let journal = try await configuration.store.journal(messageID: row.messageID)
        return try JSONResponse.make(Show(delivery: ActivityJSON.Delivery(row), journal: journal.map(ActivityJSON.Journal.init)))
    }

    @Sendable func retry(_ request: Request, context: WebRequestContext) async throws -> Response {
        let user = try context.requireAdmin("retries deliveries")
        let row = try await row(context)
        return try JSONResponse.make(ActivityJSON.Delivery(try await operations().retry(row.id, actor: QuarantineRoutes.actor(user))))
    }

    @Sendable func purge(_ request: Request, context: WebRequestContext) async throws -> Response {
        let user = try context.requireAdmin("purges deliveries")
        let row = try await row(context)
        return try JSONResponse.make(ActivityJSON.Delivery(try await operations().purge(row.id, actor: QuarantineRoutes.actor(user))))
    }

    // MARK: Helpers

    func operations() throws -> any DeliveryQueueOperations {
        guard let queue = configuration.queue else { throw APIError.notConfigured("the delivery queue desk") }
        return queue
    }

    func row(_ context: WebRequestContext) async throws -> DeliveryRecord {
        let text = try context.parameters.require("id")
        guard let id = Int64(text), let row = try await configuration.store.delivery(id) else {
            throw WaybillError(.unknownDelivery, "no delivery \(text)")
        }
        return row
    }

    /// `?limit=` within `range`; 400 otherwise.
    static func limit(_ request: Request, default fallback: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text = request.uri.queryParameters.get("limit") else { return fallback }
        guard let value = Int(text), range.contains(value) else {
            throw APIError.badRequest("limit must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }
}
