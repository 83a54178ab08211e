import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
import WaybillCore
import WaybillScan
import WaybillStore
import WaybillWeb

/// The pages in process, as a browser uses them: cookies kept between requests, forms posted
/// with the token the page gave. Every refusal a browser can meet: no session, no or a wrong
/// CSRF token, another origin, too many wrong passwords, another user's directive, a non-admin
/// on an admin page.
@Suite struct PageRoutesTests {
    typealias Fixture = WebAppTests.Fixture

    /// A cookie jar and the last page's CSRF token.
    final class Browser: @unchecked Sendable {
        let client: any TestClientProtocol
        var cookies: [String: String] = [:]
        var headers: HTTPFields = [:]

        init(_ client: any TestClientProtocol) { self.client = client }

        struct Page {
            let status: HTTPResponse.Status
            let headers: HTTPFields
            let body: ByteBuffer
            var text: String { String(buffer: body) }
            var location: String? { headers[.location] }
            var csrf: String? {
                guard let range = text.range(of: #"name="_csrf" value="[^"]*""#, options: .regularExpression) else { return nil }
                return text[range].split(separator: "\"").last.map(String.init)
            }
            var setCookies: [String] { headers[values: .setCookie] }
        }

        @discardableResult
        func request(_ method: HTTPRequest.Method, _ uri: String, form: [(String, String)]? = nil, extra: HTTPFields = [:])
            async throws -> Page
        {
            var headers = self.headers
            if !cookies.isEmpty { headers[.cookie] = cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ") }
            var body: ByteBuffer?
            if let form {
                headers[.contentType] = "application/x-www-form-urlencoded"
                body = ByteBuffer(string: form.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&"))
            }
            headers.append(contentsOf: extra)
            let page = try await client.execute(uri: uri, method: method, headers: headers, body: body) { response in
                Page(status: response.status, headers: response.headers, body: response.body)
            }
            for line in page.setCookies {
                let pair = line.split(separator: ";")[0].split(separator: "=", maxSplits: 1).map(String.init)
                if pair.count == 2, !line.contains("Max-Age=0") { cookies[pair[0]] = pair[1] } else { cookies[pair[0]] = nil }
            }
            return page
        }

        static func encode(_ text: String) -> String {
            text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
        }

        /// Opens the sign-in page and posts it, as a person would.
        @discardableResult
        func signIn(_ user: String, _ password: String = "correct horse", next: String = "/directives") async throws -> Page {
            let form = try await request(.get, "/login")
            return try await request(
                .post, "/login", form: [("_csrf", form.csrf ?? ""), ("next", next), ("username", user), ("password", password)])
        }

        /// Posts a form with the CSRF token of the page at `from`.
        @discardableResult
        func post(_ uri: String, from: String, _ fields: [(String, String)], extra: HTTPFields = [:]) async throws -> Page {
            let page = try await request(.get, from)
            return try await request(.post, uri, form: [("_csrf", page.csrf ?? "")] + fields, extra: extra)
        }
    }

    static let directiveFields: [(String, String)] = [
        ("title", "Invoices <b>2026</b>"), ("destinations", "ap@example.com\nfolder:archive/invoices"), ("expires", "30d"),
        ("idle_expiry", ""), ("max_uses", "20"), ("visibility", "private"), ("notes", ""),
    ]

    @Test func signedOutPagesSendTheBrowserToSignInAndBack() async throws {
        let fixture = try await Fixture()
        try await fixture.app.test(.router) { client in
            let browser = Browser(client)
            let page = try await browser.request(.get, "/directives/new")
            #expect(page.status == .seeOther)
            #expect(page.location == "/login?next=%2Fdirectives%2Fnew")
            let signIn = try await browser.signIn("alice@example.com", next: "/directives/new")
            #expect(signIn.status == .seeOther)
            #expect(signIn.location == "/directives/new")
            let cookie = signIn.setCookies.first { $0.hasPrefix("waybill_session=") } ?? ""
            #expect(cookie.contains("HttpOnly"))
            #expect(cookie.contains("SameSite=Lax"))
            #expect(!cookie.contains("Secure"), "plain HTTP without a proxy: no Secure, or the browser drops it")
            #expect(try await browser.request(.get, "/directives/new").status == .ok)
            // No open redirect: a next that leaves the site goes to the directives.
            let other = Browser(client)
            #expect(try await other.signIn("bob@example.com", next: "//evil.example/").location == "/directives")
            #expect(try await Browser(client).signIn("bob@example.com", next: "https://evil.example/").location == "/directives")
        }
    }

    @Test func behindAnHTTPSProxyTheSessionCookieIsSecure() async throws {
        let fixture = try await Fixture()
        try await fixture.app.test(.router) { client in
            let browser = Browser(client)
            browser.headers[HTTPField.Name("X-Forwarded-Proto")!] = "https"
            let page = try await browser.signIn("alice@example.com")
            #expect(page.setCookies.first { $0.hasPrefix("waybill_session=") }?.contains("Secure") == true)
        }
    }

    @Test func wrongPasswordsAreRefusedThenThrottledEvenForTheRightOne() async throws {
        let fixture = try await Fixture()
        try await fixture.app.test(.router) { client in
            let browser = Browser(client)
            for _ in 0..<4 {
                let page = try await browser.signIn("alice@example.com", "wrong")
                #expect(page.status == .unauthorized)
                #expect(page.text.contains("The user name or password is wrong."))
                #expect(browser.cookies["waybill_session"] == nil)
            }
            #expect(try await browser.signIn("nobody@example.com", "wrong").status == .unauthorized)
            #expect(try await browser.signIn("alice@example.com", "wrong").status == .unauthorized)
            let locked = try await browser.signIn("alice@example.com")
            #expect(locked.status == .tooManyRequests)
            #expect(locked.text.contains("Too many failed sign-ins. Try again in 1 minute."))
            #expect(Int(locked.headers[.retryAfter] ?? "") ?? 0 > 0)
            #expect(browser.cookies["waybill_session"] == nil)
            // Another account is not locked by alice's failures.
            #expect(try await Browser(client).signIn("bob@example.com").status == .seeOther)
        }
    }

    @Test func theSignInFormNeedsItsOwnToken() async throws {
        let fixture = try await Fixture()
        try await fixture.app.test(.router) { client in
            let browser = Browser(client)
            // A form posted from elsewhere: no pre-session cookie, no token.
            let forged = try await browser.request(
                .post, "/login", form: [("username", "alice@example.com"), ("password", "correct horse")])
            #expect(forged.status == .forbidden)
            #expect(browser.cookies["waybill_session"] == nil)
            let page = try await browser.request(.get, "/login")
            let wrong = try await browser.request(
                .post, "/login", form: [("_csrf", (page.csrf ?? "") + "x"), ("username", "alice@example.com"), ("password", "correct horse")])
            #expect(wrong.status == .forbidden)
        }
    }

    @Test func createShowEditAndRevokeADirectiveThroughTheForms() async throws {
        let fixture = try await Fixture()
        try await fixture.app.test(.router) { client in
            let browser = Browser(client)
            try await browser.signIn("alice@example.com")
            let created = try await browser.post("/directives", from: "/directives/new", Self.directiveFields)
            #expect(created.status == .seeOther)
            let location = created.location ?? ""
            #expect(location.hasSuffix("?notice=created"))
            let id = String(location.dropFirst("/directives/".count).prefix(10))
            let stored = try #require(try await fixture.store.directive(DirectiveID(id)!))
            #expect(stored.owner == "alice@example.com")
            #expect(stored.destinations.map(\.uri) == ["mailto:ap@example.com", "folder:archive/invoices"])
            #expect(stored.maxUses == 20)
            #expect(stored.expiresAt != nil)
            let page = try await browser.request(.get, location)
            #expect(page.status == .ok)
            #expect(page.text.contains("Directive created."))
            #expect(page.text.contains("Invoices &lt;b&gt;2026&lt;/b&gt;"), "titles are escaped")
            #expect(!page.text.contains("<b>2026</b>"))
            #expect(page.text.contains("/directives/\(id)/sheet.png"))
            // A refusal re-shows the form with the reason and what was typed.
            let refused = try await browser.post(
                "/directives/\(id)", from: "/directives/\(id)",
                [("title", "Invoices"), ("destinations", "folder:nowhere/x"), ("expires", ""), ("idle_expiry", ""),
                 ("max_uses", ""), ("visibility", "shared")])
            #expect(refused.status == .unprocessableContent)
            #expect(refused.text.contains("unknown folder root &#39;nowhere&#39;") || refused.text.contains("unknown folder root"))
            #expect(refused.text.contains("folder:nowhere/x"))
            let edited = try await browser.post(
                "/directives/\(id)", from: "/directives/\(id)",
                [("title", "Invoices"), ("destinations", "folder:archive/invoices"), ("expires", ""), ("idle_expiry", "90d"),
                 ("max_uses", ""), ("visibility", "shared"), ("delivery_confirmation", "on")])
            #expect(edited.status == .seeOther)
            let after = try #require(try await fixture.store.directive(DirectiveID(id)!))
            #expect(after.visibility == .shared)
            #expect(after.maxUses == nil)
            #expect(after.expiresAt == nil)
            #expect(after.idleExpiry == 90 * 86400)
            #expect(after.options.deliveryConfirmation)
            // Revoking needs the box ticked.
            let unconfirmed = try await browser.post("/directives/\(id)/revoke", from: "/directives/\(id)", [])
            #expect(unconfirmed.status == .unprocessableContent)
            let revoked = try await browser.post("/directives/\(id)/revoke", from: "/directives/\(id)", [("confirm", "yes")])
            #expect(revoked.status == .seeOther)
            #expect(try await fixture.store.directive(DirectiveID(id)!)?.revokedAt != nil)
            #expect(try await browser.request(.get, "/directives/\(id)/sheet.pdf").status == .conflict)
        }
    }

    @Test func formsWithoutTheTokenOrFromAnotherOriginAreRefused() async throws {
        let fixture = try await Fixture()
        try await fixture.app.test(.router) { client in
            let browser = Browser(client)
            try await browser.signIn("alice@example.com")
            let missing = try await browser.request(.post, "/directives", form: Self.directiveFields)
            #expect(missing.status == .forbidden)
            #expect(missing.text.contains("the form was not sent from this site"))
            let wrong = try await browser.request(.post, "/directives", form: [("_csrf", "forged")] + Self.directiveFields)
            #expect(wrong.status == .forbidden)
            var origin = HTTPFields()
            origin[.origin] = "https://evil.example"
            let cross = try await browser.post("/directives", from: "/directives/new", Self.directiveFields, extra: origin)
            #expect(cross.status == .forbidden)
            // Another session's token does not work in this one.
            let bob = Browser(client)
            try await bob.signIn("bob@example.com")
            let bobsToken = try await bob.request(.get, "/directives/new").csrf ?? ""
            let swapped = try await browser.request(.post, "/directives", form: [("_csrf", bobsToken)] + Self.directiveFields)
            #expect(swapped.status == .forbidden)
            #expect(try await fixture.store.allDirectives().isEmpty, "nothing was created")
            // Signed out, a post goes to the sign-in page and changes nothing.
            let signedOut = try await Browser(client).request(.post, "/directives", form: Self.directiveFields)
            #expect(signedOut.status == .seeOther)
            #expect(signedOut.location?.hasPrefix("/login") == true)
            // A tampered session cookie is no session.
            let tampered = Browser(client)
            tampered.cookies["waybill_session"] = (browser.cookies["waybill_session"] ?? "").replacingOccurrences(
                of: "YWxpY2VAZXhhbXBsZS5jb20", with: "cm9vdEBleGFtcGxlLmNvbQ")
            #expect(try await tampered.request(.get, "/directives").status == .seeOther)
        }
    }

    @Test func othersPrivateDirectivesAndAdminPagesAreForbidden() async throws {
        let fixture = try await Fixture()
        try await fixture.app.test(.router) { client in
            let alice = Browser(client)
            try await alice.signIn("alice@example.com")
            let location = try await alice.post("/directives", from: "/directives/new", Self.directiveFields).location ?? ""
            let bob = Browser(client)
            try await bob.signIn("bob@example.com")
            #expect(try await bob.request(.get, location).status == .forbidden)
            #expect(try await bob.request(.get, location.replacingOccurrences(of: "?notice=created", with: "/sheet.pdf")).status == .forbidden)
            #expect(!(try await bob.request(.get, "/directives").text.contains("Invoices")))
            #expect(try await bob.request(.get, "/admin").status == .forbidden)
            #expect(try await bob.request(.get, "/admin/users").status == .forbidden)
            let addByBob = try await bob.post("/admin/users", from: "/directives", [("name", "eve@example.com"), ("password", "0123456789ab")])
            #expect(addByBob.status == .forbidden)
            #expect(try await fixture.store.user(named: "eve@example.com") == nil)
            // An admin sees the configuration and adds a user who can then sign in.
            let root = Browser(client)
            try await root.signIn("root@example.com")
            let admin = try await root.request(.get, "/admin")
            #expect(admin.status == .ok)
            #expect(admin.text.contains("Delivery queue"))
            let added = try await root.post(
                "/admin/users", from: "/admin/users", [("name", "eve@example.com"), ("password", "0123456789ab"), ("admin", "on")])
            #expect(added.status == .seeOther)
            #expect(try await fixture.store.user(named: "eve@example.com")?.isAdmin == true)
            #expect(try await Browser(client).signIn("eve@example.com", "0123456789ab").status == .seeOther)
            let short = try await root.post("/admin/users", from: "/admin/users", [("name", "mallory@example.com"), ("password", "short")])
            #expect(short.status == .unprocessableContent)
        }
    }

    @Test func severalSheetsPrintAsOnePDFPageEach() async throws {
        let fixture = try await Fixture()
        try await fixture.app.test(.router) { client in
            let browser = Browser(client)
            try await browser.signIn("alice@example.com")
            var ids: [String] = []
            for _ in 0..<3 {
                let location = try await browser.post("/directives", from: "/directives/new", Self.directiveFields).location ?? ""
                ids.append(String(location.dropFirst("/directives/".count).prefix(10)))
            }
            let list = try await browser.request(.get, "/directives")
            for id in ids { #expect(list.text.contains("value=\"\(id)\"")) }
            let pdf = try await browser.request(.get, "/sheets.pdf?" + ids.map { "id=\($0)" }.joined(separator: "&"))
            #expect(pdf.status == .ok)
            #expect(pdf.headers[.contentType] == "application/pdf")
            let path = fixture.directory + "/sheets.pdf"
            try Data(pdf.body.readableBytesView).write(to: URL(fileURLWithPath: path))
            var found: [String] = []
            let pages = try ScanDecoder(keys: fixture.keys).decode(path: path) { page in
                if let sheet = page.sheet, case .valid(let id) = sheet.verification { found.append(id.rawValue) }
            }
            #expect(pages == 3)
            #expect(found == ids)
            #expect(try await browser.request(.get, "/sheets.pdf").status == .badRequest)
            let bob = Browser(client)
            try await bob.signIn("bob@example.com")
            #expect(try await bob.request(.get, "/sheets.pdf?id=\(ids[0])").status == .notFound)
        }
    }

    @Test func signingOutEndsTheSessionAndNeedsTheToken() async throws {
        let fixture = try await Fixture()
        try await fixture.app.test(.router) { client in
            let browser = Browser(client)
            try await browser.signIn("alice@example.com")
            #expect(try await browser.request(.post, "/logout", form: []).status == .forbidden)
            #expect(browser.cookies["waybill_session"] != nil)
            let out = try await browser.post("/logout", from: "/directives", [])
            #expect(out.status == .seeOther)
            #expect(browser.cookies["waybill_session"] == nil)
            #expect(try await browser.request(.get, "/directives").status == .seeOther)
        }
    }
    @Test func changingThePasswordKeepsThisBrowserAndSignsOutTheOthers() async throws {
        let fixture = try await Fixture()
        try await fixture.app.test(.router) { client in
            let here = Browser(client)
            try await here.signIn("alice@example.com")
            let elsewhere = Browser(client)
            try await elsewhere.signIn("alice@example.com")
            #expect(try await elsewhere.request(.get, "/directives").status == .ok)
            let wrong = try await here.post(
                "/account/password", from: "/account", [("current", "nope"), ("new", "a new password"), ("repeat", "a new password")])
            #expect(wrong.status == .unprocessableContent)
            #expect(wrong.text.contains("The current password is wrong."))
            let differ = try await here.post(
                "/account/password", from: "/account",
                [("current", "correct horse"), ("new", "a new password"), ("repeat", "another one")])
            #expect(differ.status == .unprocessableContent)
            let short = try await here.post(
                "/account/password", from: "/account", [("current", "correct horse"), ("new", "short"), ("repeat", "short")])
            #expect(short.status == .unprocessableContent)
            let changed = try await here.post(
                "/account/password", from: "/account",
                [("current", "correct horse"), ("new", "a new password"), ("repeat", "a new password")])
            #expect(changed.status == .seeOther)
            #expect(changed.location == "/account?notice=password-changed")
            #expect(try await here.request(.get, "/account").status == .ok, "this browser stays signed in")
            #expect(try await elsewhere.request(.get, "/directives").status == .seeOther, "the other session ended")
            #expect(try await Browser(client).signIn("alice@example.com", "correct horse").status == .unauthorized)
            #expect(try await Browser(client).signIn("alice@example.com", "a new password").status == .seeOther)
        }
    }

    @Test func anUnknownPathIsAPageForPeopleAndJSONUnderTheAPI() async throws {
        let fixture = try await Fixture()
        try await fixture.app.test(.router) { client in
            let browser = Browser(client)
            let page = try await browser.request(.get, "/no/such/page")
            #expect(page.status == .notFound)
            #expect(page.headers[.contentType]?.hasPrefix("text/html") == true)
            #expect(page.text.contains("There is no such page."))
            let api = try await browser.request(.get, "/api/no/such/route")
            #expect(api.status == .notFound)
            #expect(api.headers[.contentType]?.hasPrefix("application/json") == true)
            #expect(api.text.contains("\"code\""))
        }
    }
}
