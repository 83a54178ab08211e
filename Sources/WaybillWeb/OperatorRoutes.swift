import Foundation
import Hummingbird
import Logging
import NIOCore
import WaybillCore

/// `/health` and `/metrics`: open, for load balancers and Prometheus, and saying nothing about
/// any one directive or user.
struct OperatorRoutes: Sendable {
    let configuration: WebConfiguration

    func add(to router: Router<WebRequestContext>) {
        router.get("health", use: health)
        router.get("metrics", use: metrics)
    }

    /// 200 `{"status":"ok"}` once the store has answered; 503 with the usual error body otherwise.
    @Sendable func health(_ request: Request, context: WebRequestContext) async throws -> Response {
        do {
            try await configuration.store.checkHealth()
        } catch {
            context.logger.error("health check: the store does not answer: \(error)")
            throw APIError(.serviceUnavailable, code: "store-unavailable", "the store does not answer")
        }
        return try JSONResponse.make(["status": "ok"])
    }

    /// Prometheus text exposition format 0.0.4: gauges computed from the store at scrape time,
    /// then the process's counters and histogram (`Metrics`), if it has them.
    @Sendable func metrics(_ request: Request, context: WebRequestContext) async throws -> Response {
        let statistics = try await configuration.store.statistics(at: configuration.clock())
        let text = PrometheusText.render(statistics) + (configuration.metrics?.render() ?? "")
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}

/// The store's counts as Prometheus gauges. Every known label value is written, zeros included,
/// so a series exists before its first event and rates work from the start.
enum PrometheusText {
    static func render(_ statistics: StoreStatistics) -> String {
        var out = ""
        func family(_ name: String, _ help: String, _ samples: [(labels: [(String, String)], value: Int)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) gauge\n"
            for sample in samples {
                let labels =
                    sample.labels.isEmpty
                    ? "" : "{" + sample.labels.map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",") + "}"
                out += "\(name)\(labels) \(sample.value)\n"
            }
        }
        let messageStates = Set(["received", "done", "quarantined"]).union(statistics.messages.keys).sorted()
        family(
            "waybill_messages", "Messages in the ingest ledger, by state (done: routed; quarantined: refused).",
            messageStates.map { ([("state", $0)], statistics.messages[$0] ?? 0) })
        family(
            "waybill_quarantine_held", "Quarantined messages still held, by reason.",
            Set(Metrics.quarantineReasons).union(statistics.quarantineHeld.keys).sorted().map {
                ([("reason", $0)], statistics.quarantineHeld[$0] ?? 0)
            })
        var deliveries: [String: Int] = [:]
        for kind in DeliveryKind.allCases {
            for state in DeliveryState.allCases { deliveries["\(kind.rawValue)\u{0}\(state.rawValue)"] = 0 }
        }
        for count in statistics.deliveries { deliveries["\(count.kind)\u{0}\(count.state)"] = count.count }
        family(
            "waybill_deliveries", "Deliveries by kind and state (delivered, dead: the outcomes).",
            deliveries.sorted { $0.key < $1.key }.map { key, value in
                let parts = key.split(separator: "\u{0}").map(String.init)
                return ([("kind", parts[0]), ("state", parts[1])], value)
            })
        family(
            "waybill_delivery_queue_depth", "Deliveries waiting for an attempt or under way.",
            [([], statistics.queueDepth)])
        let statuses = Set(["active", "revoked", "expired", "idle-expired", "used-up"]).union(statistics.directives.keys)
        family(
            "waybill_directives", "Directives by status.",
            statuses.sorted().map { ([("status", $0)], statistics.directives[$0] ?? 0) })
        family("waybill_users", "Users of the web app and API.", [([], statistics.users)])
        family("waybill_api_tokens_active", "API tokens not revoked.", [([], statistics.activeTokens)])
        return out
    }

    /// Label values escape backslash, double quote and line feed (the exposition format's rules).
    static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
