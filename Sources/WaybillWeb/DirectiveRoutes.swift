import Foundation
import Hummingbird
import NIOCore
import WaybillCore
import WaybillScan
import WaybillSheets

/// `/api/directives`: list, create, read, edit, revoke, and print routing sheets.
///
/// Who may do what: every signed-in user reads their own directives and shared and public ones
/// (and prints their sheets); only the owner or an admin edits or revokes one; only an admin
/// creates a directive for another owner. A private directive of someone else is a 403.
struct DirectiveRoutes: Sendable {
    let configuration: WebConfiguration

    /// Sheet previews: 150 dpi by default (a Letter page is 1275 × 1650 pixels), at most 300.
    static let defaultDPI = 150
    static let dpiRange = 36...300

    func add(to group: RouterGroup<WebRequestContext>) {
        group.get("directives", use: list)
        group.post("directives", use: create)
        group.get("directives/:id", use: show)
        group.patch("directives/:id", use: edit)
        group.delete("directives/:id", use: revoke)
        group.get("directives/:id/sheet.pdf", use: sheetPDF)
        group.get("directives/:id/sheet.png", use: sheetPNG)
    }

    @Sendable func list(_ request: Request, context: WebRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let now = configuration.clock()
        let visible = try await configuration.store.allDirectives().filter(user.mayRead)
        return try JSONResponse.make(try visible.map { try json($0, now: now) })
    }

    @Sendable func create(_ request: Request, context: WebRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let body = try await decodeBody(request, context: context)
        let directive = try await create(body, by: user)
        var response = try JSONResponse.make(try json(directive, now: configuration.clock()), status: .created)
        response.headers[.location] = "/api/directives/\(directive.id.rawValue)"
        return response
    }

    /// A new directive from the body, owned by `user` unless an admin names another owner.
    func create(_ body: DirectiveBody, by user: User) async throws -> Directive {
        let now = configuration.clock()
        let owner = body.owner ?? user.name
        if owner.lowercased() != user.name.lowercased(), !user.isAdmin {
            throw APIError.forbidden("only an admin creates directives for another owner")
        }
        var draft = DirectiveDraft(title: body.title ?? "", owner: owner, destinations: body.destinations ?? [])
        try body.apply(to: &draft)
        draft.expiresAt = try body.parsedExpiry(now: now).value
        let directive = try draft.validated(id: DirectiveID.random(), now: now, policy: configuration.policy)
        try checkDestinations(directive)
        try await configuration.store.insert(directive)
        return directive
    }

    @Sendable func show(_ request: Request, context: WebRequestContext) async throws -> Response {
        let directive = try await readable(context)
        return try JSONResponse.make(try json(directive, now: configuration.clock()))
    }

    /// Changes the fields the body names; `null` clears `expires`, `idle_expiry` and `max_uses`.
    /// The result is checked as a new directive would be (with the destination policy in force
    /// now); a revoked directive cannot be edited (409).
    @Sendable func edit(_ request: Request, context: WebRequestContext) async throws -> Response {
        let (user, existing) = try await changeable(context)
        let body = try await decodeBody(request, context: context)
        let stored = try await edit(existing, with: body, by: user)
        return try JSONResponse.make(try json(stored, now: configuration.clock()))
    }

    /// The directive with the body's changes, checked as a new one would be, and stored.
    func edit(_ existing: Directive, with body: DirectiveBody, by user: User) async throws -> Directive {
        let now = configuration.clock()
        guard existing.revokedAt == nil else {
            throw WaybillError(.directiveInactive, "directive \(existing.id.display) is revoked and cannot be edited")
        }
        if let owner = body.owner, owner.lowercased() != existing.owner.lowercased(), !user.isAdmin {
            throw APIError.forbidden("only an admin gives a directive to another owner")
        }
        var draft = DirectiveDraft(
            title: existing.title, owner: body.owner ?? existing.owner, destinations: existing.destinations.map(\.uri))
        draft.visibility = existing.visibility
        draft.idleExpiry = existing.idleExpiry
        draft.maxUses = existing.maxUses
        draft.options = existing.options
        try body.apply(to: &draft)
        // An unchanged expiry is not checked against the clock: the rest of an expired directive
        // may still be edited (and a new expiry given).
        let expiry = try body.parsedExpiry(now: now)
        draft.expiresAt = expiry.value
        var updated = try draft.validated(id: existing.id, now: now, policy: configuration.policy)
        if case .keep = expiry { updated.expiresAt = existing.expiresAt }
        updated.createdAt = existing.createdAt
        updated.useCount = existing.useCount
        updated.lastUsedAt = existing.lastUsedAt
        updated.revokedAt = existing.revokedAt
        try checkDestinations(updated)
        return try await configuration.store.update(updated)
    }

    /// Revokes: the directive stays (its history refers to it) and its sheets stop working at once.
    @Sendable func revoke(_ request: Request, context: WebRequestContext) async throws -> Response {
        let (_, existing) = try await changeable(context)
        let now = configuration.clock()
        let revoked = try await configuration.store.revoke(existing.id, at: now)
        return try JSONResponse.make(try json(revoked, now: now))
    }

    @Sendable func sheetPDF(_ request: Request, context: WebRequestContext) async throws -> Response {
        let directive = try await readable(context)
        let pdf = try await renderSheet(directive)
        return file(pdf, type: "application/pdf", name: "sheet-\(directive.id.rawValue).pdf")
    }

    /// The first page of the sheet's PDF, rasterised by poppler (as the scan decoder reads PDFs).
    @Sendable func sheetPNG(_ request: Request, context: WebRequestContext) async throws -> Response {
        let directive = try await readable(context)
        var dpi = Self.defaultDPI
        if let text = request.uri.queryParameters.get("dpi") {
            guard let value = Int(text), Self.dpiRange.contains(value) else {
                throw APIError.badRequest("dpi must be a whole number from \(Self.dpiRange.lowerBound) to \(Self.dpiRange.upperBound)")
            }
            dpi = value
        }
        let png = try await png(ofFirstPage: try await renderSheet(directive), dpi: dpi)
        return file(png, type: "image/png", name: "sheet-\(directive.id.rawValue).png")
    }

    // MARK: Helpers

    func json(_ directive: Directive, now: Date) throws -> DirectiveJSON {
        DirectiveJSON(directive, token: try configuration.keys.sign(directive.id), now: now)
    }

    func decodeBody(_ request: Request, context: WebRequestContext) async throws -> DirectiveBody {
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        do {
            return try JSONDecoder().decode(DirectiveBody.self, from: Data(buffer.readableBytesView))
        } catch let error as DecodingError {
            throw APIError(.badRequest, code: "invalid-json", "the body is not the JSON object expected: \(Self.describe(error))")
        }
    }

    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .keyNotFound(_, let context),
            .dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? context.debugDescription : "\(path): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    func directive(_ context: WebRequestContext) async throws -> Directive {
        let text = try context.parameters.require("id")
        guard let id = DirectiveID(text) else {
            throw WaybillError(.invalidDirectiveID, "'\(text)' is not a directive id (10 characters such as K7QM2-XR9PC)")
        }
        guard let directive = try await configuration.store.directive(id) else {
            throw WaybillError(.unknownDirective, "no directive \(id.display)")
        }
        return directive
    }

    func readable(_ context: WebRequestContext) async throws -> Directive {
        let user = try context.requireUser()
        let directive = try await directive(context)
        guard user.mayRead(directive) else {
            throw APIError.forbidden("directive \(directive.id.display) is private to its owner")
        }
        return directive
    }

    func changeable(_ context: WebRequestContext) async throws -> (User, Directive) {
        let user = try context.requireUser()
        let directive = try await directive(context)
        guard user.mayChange(directive) else {
            throw APIError.forbidden("only the owner of directive \(directive.id.display) or an admin may change it")
        }
        return (user, directive)
    }

    func checkDestinations(_ directive: Directive) throws {
        for destination in directive.destinations { try configuration.checkDestination(destination) }
    }

    /// As `waybill sheet` does: no sheet for a directive that can no longer be used.
    func renderSheet(_ directive: Directive) async throws -> Data {
        try await renderSheets([directive])
    }

    /// One PDF, a page per directive, in the order given.
    func renderSheets(_ directives: [Directive]) async throws -> Data {
        let now = configuration.clock()
        var contents: [SheetContent] = []
        for directive in directives {
            let status = directive.status(at: now)
            guard status.isActive else {
                throw WaybillError(.directiveInactive, "no sheet: \(status.explanation(for: directive.id))")
            }
            contents.append(
                SheetContent(
                    directive: directive, token: try configuration.keys.sign(directive.id), scanAddress: configuration.scanAddress))
        }
        let template = try configuration.template()
        let pages = contents
        return try await Offload.run { () throws(WaybillError) -> Data in
            try SheetRenderer().renderPDF(pages, template: template)
        }
    }

    /// The first page of a PDF as PNG, rasterised by poppler (as the scan decoder reads PDFs).
    func png(ofFirstPage pdf: Data, dpi: Int) async throws -> Data {
        let resolution = Double(dpi)
        return try await Offload.run { () throws(WaybillError) -> Data in
            let document = try PDFDocument(data: pdf)
            return try PNGWriter.encode(try document.render(page: 0, dpi: resolution))
        }
    }

    func file(_ data: Data, type: String, name: String) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: type, .contentDisposition: "inline; filename=\"\(name)\"", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Runs blocking C work (cairo, librsvg, poppler, libpng) on a Dispatch thread, off the
/// event loops and the cooperative pool.
enum Offload {
    static func run<T: Sendable>(_ work: @escaping @Sendable () throws(WaybillError) -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global(qos: .userInitiated).async {
                continuation.resume(with: Result { () throws(WaybillError) -> T in try work() })
            }
        }
    }
}
