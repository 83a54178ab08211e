import Foundation
import Hummingbird
import HTTPTypes
import Logging
import Mustache
import NIOCore
import WaybillCore

/// The web app people use: server-rendered pages over the same operations as the JSON API.
///
/// Sign-in opens a session cookie (`SessionSealer`); every form that changes something carries
/// the session's CSRF token and is refused without it (and when the browser says it comes from
/// another origin). Pages work without JavaScript. A page that needs a signed-in user sends the
/// browser to `/login` and back.
struct PageRoutes: Sendable {
    let configuration: WebConfiguration
    let directives: DirectiveRoutes
    let sealer: SessionSealer

    static let sessionCookie = "waybill_session"
    static let loginCookie = "waybill_login"

    init(configuration: WebConfiguration) {
        self.configuration = configuration
        directives = DirectiveRoutes(configuration: configuration)
        sealer = SessionSealer(secret: configuration.sessionSecret)
    }

    func add(to router: Router<WebRequestContext>) {
        router.get("app.css") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/css; charset=utf-8", .cacheControl: "public, max-age=3600"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: PageTemplates.css)))
        }
        let pages = router.group()
            .add(middleware: PageErrorMiddleware(pages: self))
            .add(middleware: SessionMiddleware(pages: self))
        pages.get("/", use: home)
        pages.get("login", use: loginForm)
        pages.post("login", use: login)
        pages.post("logout", use: logout)
        pages.get("directives", use: directiveList)
        pages.get("directives/new", use: newDirective)
        pages.post("directives", use: createDirective)
        pages.get("directives/:id", use: showDirective)
        pages.post("directives/:id", use: editDirective)
        pages.post("directives/:id/revoke", use: revokeDirective)
        pages.get("directives/:id/sheet.pdf", use: sheetPDF)
        pages.get("directives/:id/sheet.png", use: sheetPNG)
        pages.get("sheets.pdf", use: sheetsPDF)
        pages.get("account", use: account)
        pages.post("account/tokens", use: createToken)
        pages.post("account/tokens/:id/revoke", use: revokeToken)
        pages.post("account/password", use: changePassword)
        pages.get("admin", use: admin)
        pages.get("admin/users", use: users)
        pages.post("admin/users", use: addUser)
        addOperatorPages(to: pages)
    }

    // MARK: Signing in and out

    @Sendable func home(_ request: Request, context: WebRequestContext) async throws -> Response {
        Self.redirect(context.user == nil ? "/login" : "/directives")
    }

    @Sendable func loginForm(_ request: Request, context: WebRequestContext) async throws -> Response {
        if context.user != nil { return Self.redirect(Self.safeNext(request.uri.queryParameters.get("next"))) }
        return loginPage(request, next: Self.safeNext(request.uri.queryParameters.get("next")), username: "", error: nil, status: .ok)
    }

    /// Checks the sign-in form's token (bound to a random pre-session cookie, so a forged form
    /// from another site cannot sign a browser in as the attacker), the throttle, then the password.
    @Sendable func login(_ request: Request, context: WebRequestContext) async throws -> Response {
        let form = try await FormData.read(request, context: context)
        try checkOrigin(request)
        let next = Self.safeNext(form["next"])
        let username = (form["username"] ?? "").trimmingCharacters(in: .whitespaces)
        guard let pre = request.cookies[Self.loginCookie]?.value,
            SessionSealer.constantTimeEqual(sealer.loginToken(for: pre), form["_csrf"] ?? "")
        else {
            return loginPage(
                request, next: next, username: username, error: "The sign-in form had expired; please sign in again.", status: .forbidden)
        }
        let now = configuration.clock()
        if let until = configuration.loginThrottle.wait(account: username, address: context.remoteAddress, now: now) {
            let minutes = max(1, Int((until.timeIntervalSince(now) / 60).rounded(.up)))
            var response = loginPage(
                request, next: next, username: username,
                error: "Too many failed sign-ins. Try again in \(minutes) minute\(minutes == 1 ? "" : "s").",
                status: .tooManyRequests)
            response.headers[.retryAfter] = String(Int(until.timeIntervalSince(now).rounded(.up)))
            return response
        }
        let password = form["password"] ?? ""
        let user = try await configuration.store.user(named: username)
        let valid = try await Offload.run { () throws(WaybillError) -> Bool in
            guard let user, let hash = try? PasswordHash(parsing: user.passwordHash) else {
                // As slow as a real check, so timing does not tell which names exist.
                _ = PasswordHash(iterations: User.passwordIterations, salt: Array(repeating: 0, count: 16), hash: Array(repeating: 0, count: 32))
                    .verify(password)
                return false
            }
            return hash.verify(password)
        }
        guard valid, let user else {
            configuration.loginThrottle.failed(account: username, address: context.remoteAddress, now: now)
            context.logger.notice("failed sign-in for '\(username)' from \(context.remoteAddress ?? "unknown")")
            return loginPage(request, next: next, username: username, error: "The user name or password is wrong.", status: .unauthorized)
        }
        configuration.loginThrottle.succeeded(account: username)
        let session = WebSession(
            user: user.name, issuedAt: now, expiresAt: now.addingTimeInterval(WebSession.lifetime),
            nonce: SessionSealer.randomValue(), passwordStamp: WebSession.stamp(user))
        var response = Self.redirect(next)
        response.setCookie(cookie(Self.sessionCookie, sealer.seal(session), maxAge: Int(WebSession.lifetime), request))
        response.setCookie(cookie(Self.loginCookie, "", maxAge: 0, request))
        return response
    }

    @Sendable func logout(_ request: Request, context: WebRequestContext) async throws -> Response {
        _ = try await postedForm(request, context)
        var response = Self.redirect("/login")
        response.setCookie(cookie(Self.sessionCookie, "", maxAge: 0, request))
        return response
    }

    func loginPage(_ request: Request, next: String, username: String, error: String?, status: HTTPResponse.Status) -> Response {
        let pre = SessionSealer.randomValue()
        var response = render(
            "login", title: "Sign in", context: nil,
            values: ["csrf": sealer.loginToken(for: pre), "next": next, "username": username], error: error, status: status)
        response.setCookie(cookie(Self.loginCookie, pre, maxAge: 3600, request))
        return response
    }

    // MARK: Directives

    @Sendable func directiveList(_ request: Request, context: WebRequestContext) async throws -> Response {
        let user = try requireUser(context)
        let now = configuration.clock()
        let all = try await configuration.store.allDirectives().filter(user.mayRead)
        let mine = all.filter { $0.owner.lowercased() == user.name.lowercased() }.map { row($0, now: now) }
        let others = all.filter { $0.owner.lowercased() != user.name.lowercased() && $0.visibility != .private }
            .map { row($0, now: now) }
        let anyActive = (mine + others).contains { ($0["active"] as? Bool) == true }
        return render(
            "directives", title: "Directives", context: context,
            values: ["mine": mine, "others": others, "anyActive": anyActive, "scanAddress": configuration.scanAddress,
                     "navDirectives": true],
            notice: Self.notice(request))
    }

    @Sendable func newDirective(_ request: Request, context: WebRequestContext) async throws -> Response {
        _ = try requireUser(context)
        return directiveFormPage(context: context, form: ["private": true], error: nil, status: .ok)
    }

    @Sendable func createDirective(_ request: Request, context: WebRequestContext) async throws -> Response {
        let user = try requireUser(context)
        let form = try await postedForm(request, context)
        do {
            let directive = try await directives.create(try Self.directiveBody(form, creating: true), by: user)
            return Self.redirect("/directives/\(directive.id.rawValue)?notice=created")
        } catch let error as WaybillError {
            return directiveFormPage(
                context: context, form: Self.echo(form), error: error.message, status: APIError(error).status)
        }
    }

    func directiveFormPage(context: WebRequestContext, form: [String: Any], error: String?, status: HTTPResponse.Status)
        -> Response
    {
        render(
            "directive-new", title: "New directive", context: context,
            values: ["form": form, "navDirectives": true].merging(policyHints) { $1 }, error: error, status: status)
    }

    @Sendable func showDirective(_ request: Request, context: WebRequestContext) async throws -> Response {
        let user = try requireUser(context)
        let directive = try await directives.readable(context)
        return directivePage(directive, user: user, context: context, form: nil, error: nil, notice: Self.notice(request))
    }

    func directivePage(
        _ directive: Directive, user: User, context: WebRequestContext, form: [String: Any]?, error: String?,
        notice: String?, status: HTTPResponse.Status = .ok
    ) -> Response {
        render(
            "directive", title: directive.title, context: context,
            values: [
                "d": detail(directive), "mayChange": user.mayChange(directive) && directive.revokedAt == nil,
                "form": form ?? Self.formValues(directive), "scanAddress": configuration.scanAddress, "navDirectives": true,
            ].merging(policyHints) { $1 }, error: error, notice: notice, status: status)
    }

    @Sendable func editDirective(_ request: Request, context: WebRequestContext) async throws -> Response {
        let form = try await postedForm(request, context)
        let (user, existing) = try await directives.changeable(context)
        do {
            let updated = try await directives.edit(existing, with: try Self.directiveBody(form, creating: false), by: user)
            return Self.redirect("/directives/\(updated.id.rawValue)?notice=saved")
        } catch let error as WaybillError {
            return directivePage(
                existing, user: user, context: context, form: Self.echo(form), error: error.message, notice: nil,
                status: APIError(error).status)
        }
    }

    @Sendable func revokeDirective(_ request: Request, context: WebRequestContext) async throws -> Response {
        let form = try await postedForm(request, context)
        let (_, existing) = try await directives.changeable(context)
        guard form["confirm"] == "yes" else {
            throw APIError(.unprocessableContent, code: "confirmation-required", "tick the box to confirm the revocation")
        }
        _ = try await configuration.store.revoke(existing.id, at: configuration.clock())
        return Self.redirect("/directives/\(existing.id.rawValue)?notice=revoked")
    }

    @Sendable func sheetPDF(_ request: Request, context: WebRequestContext) async throws -> Response {
        _ = try requireUser(context)
        let directive = try await directives.readable(context)
        let pdf = try await directives.renderSheet(directive)
        var response = directives.file(pdf, type: "application/pdf", name: "sheet-\(directive.id.rawValue).pdf")
        response.headers[.contentDisposition] = "attachment; filename=\"sheet-\(directive.id.rawValue).pdf\""
        return response
    }

    @Sendable func sheetPNG(_ request: Request, context: WebRequestContext) async throws -> Response {
        _ = try requireUser(context)
        let directive = try await directives.readable(context)
        let dpi = Int(request.uri.queryParameters.get("dpi") ?? "") ?? 60
        guard DirectiveRoutes.dpiRange.contains(dpi) else { throw APIError.badRequest("dpi must be from 36 to 300") }
        let png = try await directives.png(ofFirstPage: try await directives.renderSheet(directive), dpi: dpi)
        return directives.file(png, type: "image/png", name: "sheet-\(directive.id.rawValue).png")
    }

    /// Several sheets as one PDF: `/sheets.pdf?id=A&id=B`, in the order given (at most 100).
    @Sendable func sheetsPDF(_ request: Request, context: WebRequestContext) async throws -> Response {
        let user = try requireUser(context)
        let texts: [String] = request.uri.queryParameters.getAll("id").map { String($0) }
        guard !texts.isEmpty else {
            throw APIError(.badRequest, code: "no-directive-selected", "select at least one directive to print")
        }
        guard texts.count <= 100 else { throw APIError.badRequest("at most 100 sheets at once") }
        var chosen: [Directive] = []
        for text in texts {
            guard let id = DirectiveID(text) else {
                throw WaybillError(.invalidDirectiveID, "'\(text)' is not a directive id")
            }
            guard let directive = try await configuration.store.directive(id), user.mayRead(directive) else {
                throw WaybillError(.unknownDirective, "no directive \(id.display) of yours")
            }
            chosen.append(directive)
        }
        let pdf = try await directives.renderSheets(chosen)
        var response = directives.file(pdf, type: "application/pdf", name: "sheets.pdf")
        response.headers[.contentDisposition] = "attachment; filename=\"sheets-\(chosen.count).pdf\""
        return response
    }

    // MARK: Account and administration

    @Sendable func account(_ request: Request, context: WebRequestContext) async throws -> Response {
        let user = try requireUser(context)
        return try await accountPage(user: user, context: context, newToken: nil, notice: Self.notice(request))
    }

    func accountPage(
        user: User, context: WebRequestContext, newToken: String?, notice: String?, error: String? = nil,
        status: HTTPResponse.Status = .ok
    ) async throws -> Response {
        let tokens = try await configuration.store.tokens(user: user.name).map { record -> [String: Any] in
            ["id": record.id, "created": Self.date(record.createdAt), "lastUsed": record.lastUsedAt.map(Self.date) ?? "never",
             "revoked": record.revokedAt.map(Self.date) as Any]
        }
        return render(
            "account", title: "Your account", context: context,
            values: ["name": user.name, "role": user.role.rawValue, "tokens": tokens, "newToken": newToken as Any,
                     "navAccount": true], error: error, notice: notice, status: status)
    }

    /// Checks the current password (throttled like sign-in), stores the new one and gives this
    /// browser a new session: the old stamp no longer matches, so every other session ends.
    @Sendable func changePassword(_ request: Request, context: WebRequestContext) async throws -> Response {
        let user = try requireUser(context)
        let form = try await postedForm(request, context)
        let now = configuration.clock()
        func refuse(_ message: String, _ status: HTTPResponse.Status) async throws -> Response {
            try await accountPage(user: user, context: context, newToken: nil, notice: nil, error: message, status: status)
        }
        if configuration.loginThrottle.wait(account: user.name, address: context.remoteAddress, now: now) != nil {
            return try await refuse("Too many wrong passwords; try again later.", .tooManyRequests)
        }
        let current = form["current"] ?? ""
        let stored = user.passwordHash
        let valid = try await Offload.run { () throws(WaybillError) -> Bool in
            (try? PasswordHash(parsing: stored))?.verify(current) ?? false
        }
        guard valid else {
            configuration.loginThrottle.failed(account: user.name, address: context.remoteAddress, now: now)
            return try await refuse("The current password is wrong.", .unprocessableContent)
        }
        guard let new = form["new"], new == form["repeat"] else {
            return try await refuse("The two new passwords differ.", .unprocessableContent)
        }
        let hash: String
        do {
            hash = try await Offload.run { () throws(WaybillError) -> String in try User.hashPassword(new) }
        } catch let error as WaybillError {
            return try await refuse(error.message, .unprocessableContent)
        }
        try await configuration.store.setPasswordHash(hash, forUser: user.name)
        var updated = user
        updated.passwordHash = hash
        let session = WebSession(
            user: user.name, issuedAt: now, expiresAt: now.addingTimeInterval(WebSession.lifetime),
            nonce: SessionSealer.randomValue(), passwordStamp: WebSession.stamp(updated))
        var response = Self.redirect("/account?notice=password-changed")
        response.setCookie(cookie(Self.sessionCookie, sealer.seal(session), maxAge: Int(WebSession.lifetime), request))
        return response
    }

    @Sendable func createToken(_ request: Request, context: WebRequestContext) async throws -> Response {
        let user = try requireUser(context)
        _ = try await postedForm(request, context)
        let token = APIToken.generate()
        _ = try await configuration.store.addToken(digest: APIToken.digest(of: token), user: user.name, at: configuration.clock())
        return try await accountPage(user: user, context: context, newToken: token, notice: nil)
    }

    @Sendable func revokeToken(_ request: Request, context: WebRequestContext) async throws -> Response {
        let user = try requireUser(context)
        _ = try await postedForm(request, context)
        let id = try context.parameters.require("id", as: Int64.self)
        guard try await configuration.store.tokens(user: user.name).contains(where: { $0.id == id }) else {
            throw WaybillError(.unknownToken, "no API token \(id) of yours")
        }
        _ = try await configuration.store.revokeToken(id, at: configuration.clock())
        return Self.redirect("/account?notice=token-revoked")
    }

    @Sendable func admin(_ request: Request, context: WebRequestContext) async throws -> Response {
        _ = try requireAdmin(context)
        let statistics = try await configuration.store.statistics(at: configuration.clock())
        let dead = statistics.deliveries.filter { $0.state == DeliveryState.dead.rawValue }.reduce(0) { $0 + $1.count }
        let sections = configuration.settingsSummary().map { section -> [String: Any] in
            ["title": section.title, "items": section.items, "empty": section.empty]
        }
        return render(
            "admin", title: "Administration", context: context,
            values: [
                "held": statistics.quarantineHeld.values.reduce(0, +), "depth": statistics.queueDepth, "dead": dead,
                "users": statistics.users, "sections": sections, "navAdmin": true,
            ])
    }

    @Sendable func users(_ request: Request, context: WebRequestContext) async throws -> Response {
        _ = try requireAdmin(context)
        return try await usersPage(context: context, error: nil, notice: Self.notice(request))
    }

    func usersPage(context: WebRequestContext, error: String?, notice: String?, status: HTTPResponse.Status = .ok)
        async throws -> Response
    {
        let users = try await configuration.store.allUsers().map { user -> [String: Any] in
            ["name": user.name, "role": user.role.rawValue, "created": Self.date(user.createdAt)]
        }
        return render(
            "users", title: "Users", context: context, values: ["users": users, "navAdmin": true], error: error,
            notice: notice, status: status)
    }

    @Sendable func addUser(_ request: Request, context: WebRequestContext) async throws -> Response {
        _ = try requireAdmin(context)
        let form = try await postedForm(request, context)
        let name = (form["name"] ?? "").trimmingCharacters(in: .whitespaces)
        let password = form["password"] ?? ""
        let role: UserRole = form["admin"] == "on" ? .admin : .user
        let now = configuration.clock()
        do {
            let user = try await Offload.run { () throws(WaybillError) -> User in
                try User.make(name: name, role: role, password: password, now: now)
            }
            try await configuration.store.addUser(user)
        } catch let error as WaybillError {
            return try await usersPage(context: context, error: error.message, notice: nil, status: APIError(error).status)
        }
        return Self.redirect("/admin/users?notice=user-added")
    }

    // MARK: Helpers

    func requireUser(_ context: WebRequestContext) throws -> User {
        guard let user = context.user else { throw PageRedirect.signIn }
        return user
    }

    func requireAdmin(_ context: WebRequestContext) throws -> User {
        let user = try requireUser(context)
        guard user.isAdmin else { throw APIError.forbidden("this page is for administrators") }
        return user
    }

    /// The body of a form that changes something, after its CSRF token and origin are checked.
    func postedForm(_ request: Request, _ context: WebRequestContext) async throws -> FormData {
        guard context.session != nil, let expected = context.csrf else { throw PageRedirect.signIn }
        try checkOrigin(request)
        let form = try await FormData.read(request, context: context)
        guard SessionSealer.constantTimeEqual(expected, form["_csrf"] ?? "") else {
            throw APIError(.forbidden, code: "csrf-failed", "the form was not sent from this site's page; reload it and try again")
        }
        return form
    }

    /// A browser's `Origin` (or, lacking it, `Referer`) must name this host: a second line of
    /// defence behind the token, and the first for the sign-in form.
    func checkOrigin(_ request: Request) throws {
        guard let source = request.headers[.origin] ?? request.headers[.referer], source != "null" else { return }
        let host = request.head.authority ?? ""
        guard let url = URL(string: source), let sourceHost = url.host else {
            throw APIError(.forbidden, code: "csrf-failed", "the form came from an unknown origin")
        }
        let sourceAuthority = url.port.map { "\(sourceHost):\($0)" } ?? sourceHost
        guard sourceAuthority.lowercased() == host.lowercased() || sourceHost.lowercased() == host.lowercased() else {
            throw APIError(.forbidden, code: "csrf-failed", "the form came from another site (\(sourceAuthority))")
        }
    }

    func cookie(_ name: String, _ value: String, maxAge: Int, _ request: Request) -> Cookie {
        let secure =
            configuration.secureCookies
            ?? (request.headers[HTTPField.Name("X-Forwarded-Proto")!]?.lowercased() == "https" || request.uri.scheme == .https)
        return Cookie(name: name, value: value, maxAge: maxAge, path: "/", secure: secure, httpOnly: true, sameSite: .lax)
    }

    func render(
        _ template: String, title: String, context: WebRequestContext?, values: [String: Any], error: String? = nil,
        notice: String? = nil, status: HTTPResponse.Status = .ok
    ) -> Response {
        var values = Self.withPresence(values)
        var user: [String: Any]?
        if let context, let signedIn = context.user {
            user = ["name": signedIn.name, "isAdmin": signedIn.isAdmin, "csrf": context.csrf ?? ""]
            values["csrf"] = values["csrf"] ?? context.csrf ?? ""
            for key in ["navDirectives", "navActivity", "navAdmin", "navAccount"] where values[key] != nil { user?[key] = true }
        }
        let content = PageTemplates.library.render(values, withTemplate: template) ?? ""
        var page: [String: Any] = ["title": title, "content": content]
        page["user"] = user
        page["error"] = error
        page["notice"] = notice
        let html = PageTemplates.library.render(page, withTemplate: "layout") ?? ""
        return Response(
            status: status,
            headers: [
                .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                .contentSecurityPolicy: "default-src 'self'; img-src 'self' data:; style-src 'self'; form-action 'self'; frame-ancestors 'none'",
                HTTPField.Name("X-Content-Type-Options")!: "nosniff", HTTPField.Name("Referrer-Policy")!: "same-origin",
            ],
            body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
    }

    /// `has_NAME` beside every list `NAME`, for "show this table only if it has rows"
    /// (swift-mustache has no `{{#list.0}}`), in nested dictionaries too.
    static func withPresence(_ values: [String: Any]) -> [String: Any] {
        var result = values
        for (key, value) in values {
            if let list = value as? [Any] {
                result["has_" + key] = !list.isEmpty
                if let rows = value as? [[String: Any]] { result[key] = rows.map(withPresence) }
            } else if let nested = value as? [String: Any] {
                result[key] = withPresence(nested)
            }
        }
        return result
    }

    var policyHints: [String: Any] {
        ["roots": configuration.policy.folderRoots.keys.sorted(), "webhooks": configuration.policy.webhookPrefixes]
    }

    func row(_ directive: Directive, now: Date) -> [String: Any] {
        let status = directive.status(at: now)
        return [
            "id": directive.id.rawValue, "display": directive.id.display, "title": directive.title, "owner": directive.owner,
            "visibility": directive.visibility.rawValue, "destinations": directive.destinations.map(\.uri),
            "status": status.name, "active": status.isActive,
            "expires": directive.expiresAt.map(Self.date) ?? "never",
            "uses": directive.maxUses.map { "\(directive.useCount) of \($0)" } ?? "\(directive.useCount)",
        ]
    }

    func detail(_ directive: Directive) -> [String: Any] {
        let now = configuration.clock()
        var values = row(directive, now: now)
        values["explanation"] = directive.status(at: now).explanation(for: directive.id)
        values["idle"] = directive.idleExpiry.map { Self.duration($0) } ?? "never"
        values["lastUsed"] = directive.lastUsedAt.map(Self.date) ?? "never"
        values["created"] = Self.date(directive.createdAt)
        values["confirmation"] = directive.options.deliveryConfirmation ? "yes, to \(directive.owner)" : "no"
        values["notes"] = directive.options.notes.isEmpty ? nil : directive.options.notes
        return values
    }

    static func formValues(_ directive: Directive) -> [String: Any] {
        [
            "title": directive.title, "destinations": directive.destinations.map(\.uri).joined(separator: "\n"),
            "expires": directive.expiresAt.map { HumanDate.formatISO($0) } ?? "",
            "idle_expiry": directive.idleExpiry.map { duration($0) } ?? "", "max_uses": directive.maxUses.map(String.init) ?? "",
            directive.visibility.rawValue: true, "confirm": directive.options.deliveryConfirmation,
            "notes": directive.options.notes,
        ]
    }

    /// What the person typed, back in the form after a refusal.
    static func echo(_ form: FormData) -> [String: Any] {
        var values: [String: Any] = [:]
        for key in ["title", "destinations", "expires", "idle_expiry", "max_uses", "notes"] { values[key] = form[key] ?? "" }
        values[form["visibility"] ?? "private"] = true
        values["confirm"] = form["delivery_confirmation"] == "on"
        return values
    }

    /// A form as the API's body: empty optional fields mean "none" (cleared when editing).
    static func directiveBody(_ form: FormData, creating: Bool) throws -> DirectiveBody {
        var body = DirectiveBody()
        body.title = form["title"] ?? ""
        body.destinations = (form["destinations"] ?? "").split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            // A bare address is mail: people type `ap@example.com`, not `mailto:ap@example.com`.
            .map { $0.contains("@") && !$0.contains(":") ? "mailto:" + $0 : $0 }
        body.visibility = form["visibility"] ?? "private"
        body.deliveryConfirmation = form["delivery_confirmation"] == "on"
        body.notes = form["notes"] ?? ""
        let expires = (form["expires"] ?? "").trimmingCharacters(in: .whitespaces)
        body.expires = expires.isEmpty ? (creating ? .keep : .clear) : .set(expires)
        let idle = (form["idle_expiry"] ?? "").trimmingCharacters(in: .whitespaces)
        if idle.isEmpty {
            body.idleExpiry = .clear
        } else {
            guard let seconds = Int(idle) ?? TimeSpec.parseDuration(idle) else {
                throw WaybillError(.invalidExpiry, "cannot read '\(idle)' as a time unused: use a duration such as 90d")
            }
            body.idleExpiry = .set(seconds)
        }
        let uses = (form["max_uses"] ?? "").trimmingCharacters(in: .whitespaces)
        if uses.isEmpty {
            body.maxUses = .clear
        } else {
            guard let count = Int(uses) else { throw WaybillError(.invalidMaxUses, "most uses must be a whole number, not '\(uses)'") }
            body.maxUses = .set(count)
        }
        return body
    }

    static let notices: [String: String] = [
        "created": "Directive created. Print its sheet below.", "saved": "Changes saved.",
        "revoked": "Directive revoked: its sheets no longer route anything.", "user-added": "User added.",
        "token-revoked": "Token revoked.", "password-changed": "Password changed. Other browsers signed in as you are signed out.", "rerouted": "Message routed to the directive.",
        "released": "Message released through the routing rules.", "deleted": "Message deleted.",
        "retried": "Delivery queued for another attempt now.", "purged": "Delivery purged.",
    ]

    /// `?notice=KEY` after a redirect: only known keys, so a link cannot put words on the page.
    static func notice(_ request: Request) -> String? {
        request.uri.queryParameters.get("notice").flatMap { notices[$0] }
    }

    /// Only a path on this site, never `//elsewhere` or a full URL: no open redirect.
    static func safeNext(_ next: String?) -> String {
        guard let next, next.hasPrefix("/"), !next.hasPrefix("//"), !next.contains("\\"),
            !next.unicodeScalars.contains(where: { $0.value < 0x20 })
        else { return "/directives" }
        return next
    }

    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
    }

    static func date(_ date: Date) -> String { HumanDate.format(date) }

    /// `30 Nov 2026, 04:21 UTC`: when a message came matters to the minute.
    static func dateTime(_ date: Date) -> String {
        date.formatted(
            Date.VerbatimFormatStyle(
                format: "\(day: .defaultDigits) \(month: .abbreviated) \(year: .defaultDigits), \(hour: .twoDigits(clock: .twentyFourHour, hourCycle: .zeroBased)):\(minute: .twoDigits) UTC",
                timeZone: .gmt, calendar: Calendar(identifier: .gregorian)))
    }

    static func duration(_ seconds: Int) -> String {
        seconds % 86400 == 0 ? "\(seconds / 86400)d" : seconds % 3600 == 0 ? "\(seconds / 3600)h" : "\(seconds)s"
    }
}

/// Sends the browser to the sign-in page, coming back afterwards.
enum PageRedirect: Error {
    case signIn
}

/// Reads the session cookie: a valid one sets the user, its session and its CSRF token. A user
/// who no longer exists, or whose password changed since, is signed out.
struct SessionMiddleware: RouterMiddleware {
    typealias Context = WebRequestContext
    let pages: PageRoutes

    func handle(
        _ request: Request, context: WebRequestContext, next: (Request, WebRequestContext) async throws -> Response
    ) async throws -> Response {
        var context = context
        if let value = request.cookies[PageRoutes.sessionCookie]?.value, !value.isEmpty,
            let session = pages.sealer.open(value, now: pages.configuration.clock()),
            let user = try await pages.configuration.store.user(named: session.user),
            WebSession.stamp(user) == session.passwordStamp
        {
            context.user = user
            context.session = session
            context.csrf = pages.sealer.csrfToken(for: session)
        }
        return try await next(request, context)
    }
}

/// Failures as pages: a person sees what went wrong in words, with the status a script would.
struct PageErrorMiddleware: RouterMiddleware {
    typealias Context = WebRequestContext
    let pages: PageRoutes

    func handle(
        _ request: Request, context: WebRequestContext, next: (Request, WebRequestContext) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch PageRedirect.signIn {
            let target = request.method == .get ? request.uri.description : "/"
            return PageRoutes.redirect("/login?next=" + (target.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "/"))
        } catch let error as APIError {
            return page(error.status, error.message, context)
        } catch let error as WaybillError {
            let apiError = APIError(error)
            if apiError.status == .internalServerError {
                context.logger.error("\(request.method) \(request.uri.path) failed: \(error.message) [\(error.code)]")
            }
            return page(apiError.status, error.message, context)
        } catch let error as any HTTPResponseError {
            return page(error.status, error.status == .notFound ? "There is no such page." : error.status.reasonPhrase, context)
        } catch {
            context.logger.error("\(request.method) \(request.uri.path) failed: \(error)")
            return page(.internalServerError, "The server failed; its log says why.", context)
        }
    }

    func page(_ status: HTTPResponse.Status, _ message: String, _ context: WebRequestContext) -> Response {
        let heading =
            switch status {
            case .notFound: "Not found"
            case .forbidden: "Not allowed"
            case .conflict: "Not possible now"
            case .unprocessableContent, .badRequest: "Please check what you entered"
            default: "Something went wrong"
            }
        return pages.render(
            "error", title: heading, context: context, values: ["heading": heading, "message": message], status: status)
    }
}

/// A path that matches no route is a page for a person ("Not found", in the app's layout), except
/// under `/api`, where scripts get the API's JSON error.
struct PageNotFoundMiddleware: RouterMiddleware {
    typealias Context = WebRequestContext
    let pages: PageRoutes

    func handle(
        _ request: Request, context: WebRequestContext, next: (Request, WebRequestContext) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as any HTTPResponseError where error.status == .notFound {
            let path = request.uri.path
            guard !(error is APIError), path != "/api", !path.hasPrefix("/api/") else { throw error }
            return PageErrorMiddleware(pages: pages).page(.notFound, "There is no such page.", context)
        }
    }
}

/// An `application/x-www-form-urlencoded` body: every value of every name, in order.
struct FormData: Sendable {
    var fields: [(String, String)] = []

    subscript(_ name: String) -> String? { fields.first { $0.0 == name }?.1 }

    func all(_ name: String) -> [String] { fields.filter { $0.0 == name }.map(\.1) }

    static func read(_ request: Request, context: WebRequestContext) async throws -> FormData {
        let buffer = try await request.body.collect(upTo: 1 << 20)
        return parse(String(decoding: buffer.readableBytesView, as: UTF8.self))
    }

    static func parse(_ text: String) -> FormData {
        var form = FormData()
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ part: Substring) -> String {
                let spaced = part.replacingOccurrences(of: "+", with: " ")
                return spaced.removingPercentEncoding ?? spaced
            }
            form.fields.append((decode(parts[0]), parts.count > 1 ? decode(parts[1]) : ""))
        }
        return form
    }
}
