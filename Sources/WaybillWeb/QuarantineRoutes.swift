import Foundation
import Hummingbird
import NIOCore
import WaybillCore

/// `/api/quarantine`: what `waybill quarantine` does, for admins only. Listing and reading come
/// from the store; reroute, release, delete and page views go through the configured
/// `QuarantineOperations` (the pipeline's desk), journalled as `web:<username>`.
struct QuarantineRoutes: Sendable {
    let configuration: WebConfiguration

    /// Page previews: 150 dpi by default, from 36 to 300 (PDF pages; images come as scanned).
    static let defaultDPI = 150
    static let dpiRange = 36...300

    func add(to group: RouterGroup<WebRequestContext>) {
        group.get("quarantine", use: list)
        group.get("quarantine/:id", use: show)
        group.get("quarantine/:id/pages/:page", use: page)
        group.post("quarantine/:id/reroute", use: reroute)
        group.post("quarantine/:id/release", use: release)
        group.delete("quarantine/:id", use: delete)
    }

    struct Show: Encodable {
        let entry: ActivityJSON.Entry
        let journal: [ActivityJSON.Journal]
    }

    struct Outcome: Encodable {
        let entry: ActivityJSON.Entry
        let jobs: Int
        let files: [String]
        let queued: Int
    }

    struct RerouteBody: Decodable {
        let directive: String
    }

    /// Held entries, newest first; `?all=true`: every entry, held ones first.
    @Sendable func list(_ request: Request, context: WebRequestContext) async throws -> Response {
        _ = try context.requireAdmin("sees the quarantine")
        let all = request.uri.queryParameters.get("all").map { ["true", "1", "yes"].contains($0.lowercased()) } ?? false
        let entries = try await configuration.store.quarantineEntries().filter { all || $0.state == .held }
        return try JSONResponse.make(entries.map(ActivityJSON.Entry.init))
    }

    @Sendable func show(_ request: Request, context: WebRequestContext) async throws -> Response {
        _ = try context.requireAdmin("sees the quarantine")
        let entry = try await entry(context)
        let journal = try await configuration.store.journal(messageID: entry.messageID)
        return try JSONResponse.make(Show(entry: ActivityJSON.Entry(entry), journal: journal.map(ActivityJSON.Journal.init)))
    }

    /// `pages/{n}.png`: page n (1-based) of the message's scans, in message order.
    @Sendable func page(_ request: Request, context: WebRequestContext) async throws -> Response {
        _ = try context.requireAdmin("sees quarantined scans")
        let text = try context.parameters.require("page")
        guard text.hasSuffix(".png"), let number = Int(text.dropLast(4)), number >= 1 else {
            throw APIError(.notFound, code: "page-not-found", "pages are named 1.png, 2.png, …")
        }
        var dpi = Self.defaultDPI
        if let value = request.uri.queryParameters.get("dpi") {
            guard let parsed = Int(value), Self.dpiRange.contains(parsed) else {
                throw APIError.badRequest("dpi must be a whole number from \(Self.dpiRange.lowerBound) to \(Self.dpiRange.upperBound)")
            }
            dpi = parsed
        }
        let entry = try await entry(context)
        let png = try await operations().pagePNG(entry.messageID, page: number - 1, dpi: dpi)
        return Response(
            status: .ok,
            headers: [
                .contentType: "image/png", .contentDisposition: "inline; filename=\"\(entry.messageID)-\(number).png\"",
                .cacheControl: "no-store",
            ],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: png)))
    }

    /// Body `{"directive": "K7QM2-XR9PC"}`: every page, as scanned, to that directive.
    @Sendable func reroute(_ request: Request, context: WebRequestContext) async throws -> Response {
        let user = try context.requireAdmin("reroutes quarantined messages")
        let entry = try await entry(context)
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        let body: RerouteBody
        do {
            body = try JSONDecoder().decode(RerouteBody.self, from: Data(buffer.readableBytesView))
        } catch let error as DecodingError {
            throw APIError(
                .badRequest, code: "invalid-json", "the body must be {\"directive\": \"<id>\"}: \(DirectiveRoutes.describe(error))")
        }
        guard let directive = DirectiveID(body.directive) else {
            throw WaybillError(.invalidDirectiveID, "'\(body.directive)' is not a directive id (10 characters such as K7QM2-XR9PC)")
        }
        let result = try await operations().reroute(entry.messageID, to: directive, actor: Self.actor(user))
        return try await outcome(entry.messageID, result)
    }

    /// Through the routing rules again, after whatever refused it was fixed.
    @Sendable func release(_ request: Request, context: WebRequestContext) async throws -> Response {
        let user = try context.requireAdmin("releases quarantined messages")
        let entry = try await entry(context)
        let result = try await operations().release(entry.messageID, actor: Self.actor(user))
        return try await outcome(entry.messageID, result)
    }

    @Sendable func delete(_ request: Request, context: WebRequestContext) async throws -> Response {
        let user = try context.requireAdmin("deletes quarantined messages")
        let entry = try await entry(context)
        try await operations().delete(entry.messageID, actor: Self.actor(user))
        return try JSONResponse.make(ActivityJSON.Entry(try await self.entry(entry.messageID)))
    }

    // MARK: Helpers

    static func actor(_ user: User) -> String { "web:" + user.name }

    func operations() throws -> any QuarantineOperations {
        guard let quarantine = configuration.quarantine else { throw APIError.notConfigured("the quarantine desk") }
        return quarantine
    }

    func entry(_ context: WebRequestContext) async throws -> QuarantineEntry {
        try await entry(try context.parameters.require("id"))
    }

    func entry(_ id: String) async throws -> QuarantineEntry {
        guard let entry = try await configuration.store.quarantineEntry(id) else {
            throw WaybillError(.unknownMessage, "no quarantined message \(id)")
        }
        return entry
    }

    func outcome(_ id: String, _ result: QuarantineActionResult) async throws -> Response {
        try JSONResponse.make(
            Outcome(entry: ActivityJSON.Entry(try await entry(id)), jobs: result.jobs, files: result.files, queued: result.queued))
    }
}
