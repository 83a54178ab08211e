import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
import WaybillCore
import WaybillScan
import WaybillSheets
import WaybillStore
import WaybillWeb

/// The API in process (HummingbirdTesting's `.router` mode) on a real SQLite store: every
/// route, every refusal.
@Suite struct WebAppTests {
    static let templates = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Templates").path

    /// A store with three users (alice and bob: users; root: admin), a token each, and a revoked
    /// token of alice's.
    struct Fixture {
        let directory: String
        let store: SQLiteDirectiveStore
        let keys: SigningKeys
        let configuration: WebConfiguration
        let alice: String
        let bob: String
        let root: String
        let revoked: String

        init() async throws {
            directory = NSTemporaryDirectory() + "waybill-web-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            store = try SQLiteDirectiveStore(path: directory + "/waybill.sqlite")
            var keys = SigningKeys(keys: [])
            keys.rotate(now: Date())
            self.keys = keys
            let now = Date()
            // Few iterations: these tests check who may do what, not the hash's cost.
            for (name, role) in [("alice@example.com", UserRole.user), ("bob@example.com", .user), ("root@example.com", .admin)] {
                let hash = PasswordHash.make(password: "correct horse", iterations: 1_000).encoded
                try await store.addUser(User(name: name, role: role, passwordHash: hash, createdAt: now))
            }
            let store = self.store
            func token(_ user: String) async throws -> String {
                let token = APIToken.generate()
                _ = try await store.addToken(digest: APIToken.digest(of: token), user: user, at: now)
                return token
            }
            alice = try await token("alice@example.com")
            bob = try await token("bob@example.com")
            root = try await token("root@example.com")
            revoked = try await token("alice@example.com")
            let revokedID = try await store.tokens(user: "alice@example.com").first!.id
            _ = try await store.revokeToken(revokedID, at: now)
            let template = try TemplateLocator(explicitDirectory: WebAppTests.templates, environment: [:], executablePath: nil)
                .locate(name: "standard", paper: .letter)
            configuration = WebConfiguration(
                store: store, keys: keys,
                policy: DestinationPolicy(
                    folderRoots: ["archive": directory + "/archive"], webhookPrefixes: ["https://hooks.example.com/"]),
                template: { template }, scanAddress: "scan@example.com")
        }

        var app: Application<RouterResponder<WebRequestContext>> { Application(router: WebApp.router(configuration)) }
    }

    struct Reply: Sendable {
        let status: HTTPResponse.Status
        let headers: HTTPFields
        let body: ByteBuffer

        var data: Data { Data(body.readableBytesView) }
        var text: String { String(buffer: body) }
        var json: [String: Any] { ((try? JSONSerialization.jsonObject(with: data)) as? [String: Any]) ?? [:] }
        var array: [[String: Any]] { ((try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]]) ?? [] }
        var code: String? { json["code"] as? String }
        var id: String { json["id"] as? String ?? "" }
    }

    static func call(
        _ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, token: String? = nil,
        authorization: String? = nil, body: String? = nil
    ) async throws -> Reply {
        var headers: HTTPFields = [:]
        if let token { headers[.authorization] = "Bearer \(token)" }
        if let authorization { headers[.authorization] = authorization }
        if body != nil { headers[.contentType] = "application/json" }
        return try await client.execute(
            uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }
        ) { response in Reply(status: response.status, headers: response.headers, body: response.body) }
    }

    static func create(
        _ client: any TestClientProtocol, token: String, title: String = "Invoices", visibility: String = "private",
        destinations: [String] = ["mailto:ap@example.com"]
    ) async throws -> Reply {
        let list = destinations.map { "\"\($0)\"" }.joined(separator: ",")
        return try await call(
            client, .post, "/api/directives", token: token,
            body: #"{"title": "\#(title)", "visibility": "\#(visibility)", "destinations": [\#(list)]}"#)
    }

    @Test func healthSaysOK() async throws {
        let fixture = try await Fixture()
        try await fixture.app.test(.router) { client in
            let reply = try await Self.call(client, .get, "/health")
            #expect(reply.status == .ok)
            #expect(reply.json["status"] as? String == "ok")
        }
    }

    @Test func metricsAreCountedFromTheStore() async throws {
        let fixture = try await Fixture()
        try await fixture.app.test(.router) { client in
            #expect(try await Self.create(client, token: fixture.alice).status == .created)
            let reply = try await Self.call(client, .get, "/metrics")
            #expect(reply.status == .ok)
            #expect(reply.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            let text = reply.text
            for line in [
                "# TYPE waybill_messages gauge", #"waybill_messages{state="quarantined"} 0"#,
                #"waybill_deliveries{kind="document",state="dead"} 0"#, "waybill_delivery_queue_depth 0",
                #"waybill_directives{status="active"} 1"#, "waybill_users 3", "waybill_api_tokens_active 3",
            ] {
                #expect(text.contains(line + "\n"), "missing \(line) in:\n\(text)")
            }
            // No registry given: no counters that would say 0 for what no one counts.
            #expect(!text.contains("waybill_smtp_connections_total"))
        }
    }

    /// With the process's registry, its counters and histogram follow the store's gauges.
    @Test func metricsAddTheLiveCounters() async throws {
        let fixture = try await Fixture()
        let metrics = Metrics()
        metrics.smtpRefused(.tooLarge)
        metrics.pageDecoded(in: .milliseconds(40))
        var configuration = fixture.configuration
        configuration.metrics = metrics
        try await Application(router: WebApp.router(configuration)).test(.router) { client in
            let text = try await Self.call(client, .get, "/metrics").text
            for line in [
                "# TYPE waybill_delivery_queue_depth gauge", "waybill_delivery_queue_depth 0",
                "# TYPE waybill_smtp_refusals_total counter", #"waybill_smtp_refusals_total{reason="too-large"} 1"#,
                "# TYPE waybill_page_decode_seconds histogram", #"waybill_page_decode_seconds_bucket{le="0.05"} 1"#,
                "waybill_page_decode_seconds_count 1",
            ] {
                #expect(text.contains(line + "\n"), "missing \(line) in:\n\(text)")
            }
        }
    }

    /// Every API route, with no credentials and with each kind of bad one: 401, a JSON error and
    /// a `WWW-Authenticate` header; nothing changes.
    @Test func everyRouteRefusesAMissingBadOrRevokedToken() async throws {
        let fixture = try await Fixture()
        try await fixture.app.test(.router) { client in
            let id = try await Self.create(client, token: fixture.alice).id
            let routes: [(HTTPRequest.Method, String, String?)] = [
                (.get, "/api/directives", nil),
                (.post, "/api/directives", #"{"title": "X", "destinations": ["mailto:x@example.com"]}"#),
                (.get, "/api/directives/\(id)", nil),
                (.patch, "/api/directives/\(id)", #"{"title": "Changed"}"#),
                (.delete, "/api/directives/\(id)", nil),
                (.get, "/api/directives/\(id)/sheet.pdf", nil),
                (.get, "/api/directives/\(id)/sheet.png", nil),
                (.get, "/api/me", nil),
                (.get, "/api/users", nil),
                (.post, "/api/users", #"{"name": "eve@example.com", "password": "long enough", "role": "admin"}"#),
                (.get, "/api/tokens", nil),
                (.post, "/api/tokens", "{}"),
                (.delete, "/api/tokens/1", nil),
            ]
            let credentials: [String?] = [
                nil, "Bearer", "Bearer junk", "Bearer " + APIToken.generate(), "Bearer " + fixture.revoked,
                "Basic YWxpY2U6cGFzc3dvcmQ=", fixture.alice,
            ]
            for (method, uri, body) in routes {
                for authorization in credentials {
                    let reply = try await Self.call(client, method, uri, authorization: authorization, body: body)
                    #expect(reply.status == .unauthorized, "\(method) \(uri) with \(authorization ?? "nothing")")
                    #expect(["authentication-required", "invalid-token"].contains(reply.code))
                    #expect(reply.json["error"] is String)
                    #expect(reply.headers[.wwwAuthenticate]?.hasPrefix("Bearer") == true)
                }
            }
            let after = try await Self.call(client, .get, "/api/directives/\(id)", token: fixture.alice)
            #expect(after.json["title"] as? String == "Invoices")
            #expect(after.json["revoked"] is NSNull)
            #expect(try await Self.call(client, .get, "/api/directives", token: fixture.alice).array.count == 1)
            #expect(try await fixture.store.allUsers().count == 3)
            #expect(try await fixture.store.tokens(user: nil).filter { $0.revokedAt == nil }.count == 3)
        }
    }

    @Test func createAnswers201WithTheDirective() async throws {
        let fixture = try await Fixture()
        try await fixture.app.test(.router) { client in
            let reply = try await Self.call(
                client, .post, "/api/directives", token: fixture.alice,
                body: """
                    {"title": "Accounts payable", "destinations": ["mailto:ap@example.com", "folder:archive/2026",
                     "https://hooks.example.com/in"], "expires": "30d", "max_uses": 5, "idle_expiry": "90d",
                     "visibility": "shared", "notes": "Scan face down"}
                    """)
            #expect(reply.status == .created)
            let id = reply.id
            #expect(DirectiveID(id) != nil)
            #expect(reply.headers[.location] == "/api/directives/\(id)")
            #expect(reply.json["owner"] as? String == "alice@example.com")
            #expect(reply.json["max_uses"] as? Int == 5)
            #expect(reply.json["idle_expiry_seconds"] as? Int == 90 * 86_400)
            #expect(reply.json["status"] as? String == "active")
            #expect(
                reply.json["destinations"] as? [String]
                    == ["mailto:ap@example.com", "folder:archive/2026", "https://hooks.example.com/in"])
            #expect(fixture.keys.verify(reply.json["token"] as? String ?? "") == .valid(DirectiveID(id)!))
            let stored = try await fixture.store.directive(DirectiveID(id)!)
            #expect(stored?.title == "Accounts payable")
            let shown = try await Self.call(client, .get, "/api/directives/\(id)", token: fixture.alice)
            #expect(shown.status == .ok)
            #expect(shown.data == reply.data)
        }
    }

    @Test func badInputIs400Or422WithTheCode() async throws {
        let fixture = try await Fixture()
        try await fixture.app.test(.router) { client in
            let cases: [(String, HTTPResponse.Status, String)] = [
                (#"{"title": "X", "destinations": ["folder:elsewhere/x"]}"#, .unprocessableContent, "unknown-folder-root"),
                (#"{"title": "X", "destinations": ["folder:archive/../etc"]}"#, .unprocessableContent, "path-escape"),
                (#"{"title": "X", "destinations": ["https://evil.example.net/hook"]}"#, .unprocessableContent, "webhook-not-allowed"),
                (#"{"title": "X", "destinations": []}"#, .unprocessableContent, "invalid-destination"),
                (#"{"title": "", "destinations": ["mailto:a@example.com"]}"#, .unprocessableContent, "invalid-directive"),
                (#"{"title": "X", "destinations": ["mailto:a@example.com"], "expires": "yesterday"}"#,
                 .unprocessableContent, "invalid-expiry"),
                (#"{"title": "X", "destinations": ["mailto:a@example.com"], "max_uses": 0}"#,
                 .unprocessableContent, "invalid-max-uses"),
                (#"{"title": "X", "destinations": ["mailto:a@example.com"], "visibility": "secret"}"#,
                 .unprocessableContent, "invalid-directive"),
                (#"{"title": "X", "destination": ["mailto:a@example.com"]}"#, .badRequest, "bad-request"),
                (#"{"title": 5}"#, .badRequest, "invalid-json"),
                ("not json", .badRequest, "invalid-json"),
            ]
            for (body, status, code) in cases {
                let reply = try await Self.call(client, .post, "/api/directives", token: fixture.alice, body: body)
                #expect(reply.status == status, "\(body): \(reply.text)")
                #expect(reply.code == code, "\(body): \(reply.text)")
            }
            #expect(try await fixture.store.allDirectives().isEmpty)
        }
    }

    @Test func othersPrivateDirectivesAreForbidden() async throws {
        let fixture = try await Fixture()
        try await fixture.app.test(.router) { client in
            let secret = try await Self.create(client, token: fixture.alice, title: "Private").id
            let shared = try await Self.create(client, token: fixture.alice, title: "Shared", visibility: "shared").id
            for (method, uri, body) in [
                (HTTPRequest.Method.get, "/api/directives/\(secret)", nil),
                (.patch, "/api/directives/\(secret)", #"{"title": "Mine now"}"#),
                (.delete, "/api/directives/\(secret)", nil),
                (.get, "/api/directives/\(secret)/sheet.pdf", nil),
                (.get, "/api/directives/\(secret)/sheet.png", nil),
                (.patch, "/api/directives/\(shared)", #"{"title": "Mine now"}"#),
                (.delete, "/api/directives/\(shared)", nil),
            ] {
                let reply = try await Self.call(client, method, uri, token: fixture.bob, body: body)
                #expect(reply.status == .forbidden, "\(method) \(uri)")
                #expect(reply.code == "forbidden")
            }
            #expect(try await Self.call(client, .get, "/api/directives/\(shared)", token: fixture.bob).status == .ok)
            let bobSees = try await Self.call(client, .get, "/api/directives", token: fixture.bob).array.compactMap { $0["id"] as? String }
            #expect(bobSees == [shared])
            let rootSees = try await Self.call(client, .get, "/api/directives", token: fixture.root).array.compactMap { $0["id"] as? String }
            #expect(Set(rootSees) == [secret, shared])
            // An admin changes anyone's directive.
            let edited = try await Self.call(
                client, .patch, "/api/directives/\(secret)", token: fixture.root, body: #"{"title": "Seen by root"}"#)
            #expect(edited.status == .ok)
            #expect(edited.json["title"] as? String == "Seen by root")
            #expect(try await fixture.store.directive(DirectiveID(secret)!)?.title == "Seen by root")
        }
    }

    @Test func onlyAnAdminChoosesAnotherOwner() async throws {
        let fixture = try await Fixture()
        try await fixture.app.test(.router) { client in
            let body = #"{"title": "For Bob", "owner": "bob@example.com", "destinations": ["mailto:b@example.com"]}"#
            let refused = try await Self.call(client, .post, "/api/directives", token: fixture.alice, body: body)
            #expect(refused.status == .forbidden)
            let created = try await Self.call(client, .post, "/api/directives", token: fixture.root, body: body)
            #expect(created.status == .created)
            #expect(created.json["owner"] as? String == "bob@example.com")
            let id = created.id
            // Bob owns it now: he may edit it, but not give it away.
            #expect(
                try await Self.call(client, .patch, "/api/directives/\(id)", token: fixture.bob, body: #"{"notes": "ok"}"#)
                    .status == .ok)
            let giveAway = try await Self.call(
                client, .patch, "/api/directives/\(id)", token: fixture.bob, body: #"{"owner": "alice@example.com"}"#)
            #expect(giveAway.status == .forbidden)
        }
    }

    @Test func patchChangesClearsAndValidates() async throws {
        let fixture = try await Fixture()
        try await fixture.app.test(.router) { client in
            let id = try await Self.create(client, token: fixture.alice).id
            let uri = "/api/directives/\(id)"
            let changed = try await Self.call(
                client, .patch, uri, token: fixture.alice,
                body: """
                    {"title": "Receipts", "max_uses": 3, "visibility": "public", "expires": "2099-12-31",
                     "destinations": ["folder:archive/receipts"], "output_format": "original", "delivery_confirmation": true}
                    """)
            #expect(changed.status == .ok, "\(changed.text)")
            #expect(changed.json["title"] as? String == "Receipts")
            #expect(changed.json["max_uses"] as? Int == 3)
            #expect(changed.json["visibility"] as? String == "public")
            #expect(changed.json["destinations"] as? [String] == ["folder:archive/receipts"])
            #expect(changed.json["output_format"] as? String == "original")
            #expect(changed.json["delivery_confirmation"] as? Bool == true)
            #expect(changed.json["expires"] is String)
            let cleared = try await Self.call(
                client, .patch, uri, token: fixture.alice, body: #"{"max_uses": null, "expires": null}"#)
            #expect(cleared.json["max_uses"] is NSNull)
            #expect(cleared.json["expires"] is NSNull)
            #expect(cleared.json["title"] as? String == "Receipts")
            let bad = try await Self.call(
                client, .patch, uri, token: fixture.alice, body: #"{"destinations": ["https://evil.example.net/"]}"#)
            #expect(bad.status == .unprocessableContent)
            #expect(bad.code == "webhook-not-allowed")
            #expect(try await fixture.store.directive(DirectiveID(id)!)?.destinations == [.folder(root: "archive", path: ["receipts"])])
            // DELETE revokes; a revoked directive is neither edited nor printed.
            let revoked = try await Self.call(client, .delete, uri, token: fixture.alice)
            #expect(revoked.status == .ok)
            #expect(revoked.json["status"] as? String == "revoked")
            #expect(try await fixture.store.directive(DirectiveID(id)!)?.revokedAt != nil)
            let late = try await Self.call(client, .patch, uri, token: fixture.alice, body: #"{"title": "Again"}"#)
            #expect(late.status == .conflict)
            #expect(late.code == "directive-inactive")
            let sheet = try await Self.call(client, .get, uri + "/sheet.pdf", token: fixture.alice)
            #expect(sheet.status == .conflict)
            #expect(sheet.code == "directive-inactive")
        }
    }

    @Test func unknownAndMalformedIDsAre404() async throws {
        let fixture = try await Fixture()
        try await fixture.app.test(.router) { client in
            let unknown = try await Self.call(client, .get, "/api/directives/\(DirectiveID.random().rawValue)", token: fixture.alice)
            #expect(unknown.status == .notFound)
            #expect(unknown.code == "unknown-directive")
            let malformed = try await Self.call(client, .delete, "/api/directives/nope", token: fixture.alice)
            #expect(malformed.status == .notFound)
            #expect(malformed.code == "invalid-directive-id")
        }
    }

    /// The PDF the API serves is a routing sheet the scan decoder reads back to this directive.
    @Test func sheetPDFDecodesToTheDirectivesToken() async throws {
        let fixture = try await Fixture()
        try await fixture.app.test(.router) { client in
            let created = try await Self.create(client, token: fixture.alice, visibility: "public")
            let id = created.id
            // Anyone signed in may print a public directive's sheet.
            let reply = try await Self.call(client, .get, "/api/directives/\(id)/sheet.pdf", token: fixture.bob)
            #expect(reply.status == .ok)
            #expect(reply.headers[.contentType] == "application/pdf")
            #expect(reply.data.starts(with: Data("%PDF-".utf8)))
            let path = fixture.directory + "/sheet.pdf"
            try reply.data.write(to: URL(fileURLWithPath: path))
            var findings: [SheetFinding] = []
            _ = try ScanDecoder(keys: fixture.keys).decode(path: path) { page in
                if let sheet = page.sheet { findings.append(sheet) }
            }
            #expect(findings.count == 1)
            #expect(findings.first?.token == created.json["token"] as? String)
            #expect(findings.first?.verification == .valid(DirectiveID(id)!))
        }
    }

    @Test func sheetPNGIsTheFirstPageAtTheAskedResolution() async throws {
        let fixture = try await Fixture()
        try await fixture.app.test(.router) { client in
            let id = try await Self.create(client, token: fixture.alice).id
            let reply = try await Self.call(client, .get, "/api/directives/\(id)/sheet.png", token: fixture.alice)
            #expect(reply.status == .ok)
            #expect(reply.headers[.contentType] == "image/png")
            #expect(reply.data.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]))
            let image = try ImageReaders.png(reply.data)
            #expect(image.width == 1275 && image.height == 1650)  // Letter at 150 dpi.
            let token = try #require(
                try BarcodeScanner().scan(image).first { $0.symbology == "QR-Code" }?.text)
            #expect(fixture.keys.verify(token) == .valid(DirectiveID(id)!))
            let small = try await Self.call(client, .get, "/api/directives/\(id)/sheet.png?dpi=72", token: fixture.alice)
            let smallImage = try ImageReaders.png(small.data)
            #expect(smallImage.width == 612 && smallImage.height == 792)
            let tooBig = try await Self.call(client, .get, "/api/directives/\(id)/sheet.png?dpi=2400", token: fixture.alice)
            #expect(tooBig.status == .badRequest)
        }
    }
}
