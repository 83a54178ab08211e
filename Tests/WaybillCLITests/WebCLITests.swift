import Foundation
import Testing
import WaybillCore

/// The web API as a script meets it: users and tokens made with the CLI, `waybill serve` on a free
/// HTTP port, requests from Python's urllib.
@Suite(.serialized) struct WebCLITests {
    /// POSTs (or GETs, without a body) with urllib; prints the status and the body.
    static let client = """
        import sys, urllib.request, urllib.error
        url, token, body = sys.argv[1], sys.argv[2], sys.argv[3]
        request = urllib.request.Request(url, data=body.encode() if body else None, method="POST" if body else "GET")
        request.add_header("Content-Type", "application/json")
        if token: request.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(request, timeout=30) as response: print(response.status); print(response.read().decode())
        except urllib.error.HTTPError as error:
            print(error.code); print(error.read().decode())
        """

    static func request(_ url: String, token: String = "", body: String = "") throws -> (status: Int, body: String) {
        let result = try CLI.run("/usr/bin/python3", ["-c", client, url, token, body], in: NSTemporaryDirectory())
        let lines = result.stdout.split(separator: "\n", maxSplits: 1).map(String.init)
        return (Int(lines.first ?? "") ?? -1, lines.count > 1 ? lines[1] : result.stderr)
    }

    @Test func userPasswordReplacesTheStoredHash() throws {
        let cli = try CLI()
        let first = cli.directory + "/first"
        let second = cli.directory + "/second"
        try "correct horse battery\n".write(toFile: first, atomically: true, encoding: .utf8)
        try "another good password\n".write(toFile: second, atomically: true, encoding: .utf8)
        chmod(first, 0o600)
        chmod(second, 0o600)
        _ = try cli.ok(["user", "add", "alice@example.com", "--password-file", first])
        let database = cli.directory + "/waybill-data/waybill.sqlite"
        let read = "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select password_hash from user').fetchone()[0])"
        let before = try CLI.run("/usr/bin/python3", ["-c", read, database], in: cli.directory).stdout
        #expect(try cli.ok(["user", "password", "alice@example.com", "--password-file", second]).contains("sessions have ended"))
        let after = try CLI.run("/usr/bin/python3", ["-c", read, database], in: cli.directory).stdout
        #expect(!before.isEmpty && before != after)
        let unknown = try cli.run(["user", "password", "bob@example.com", "--password-file", second])
        #expect(unknown.status != 0)
        #expect(unknown.stderr.contains("no user bob@example.com"))
        try "short\n".write(toFile: second, atomically: true, encoding: .utf8)
        chmod(second, 0o600)
        let short = try cli.run(["user", "password", "alice@example.com", "--password-file", second])
        #expect(short.status != 0)
        #expect(short.stderr.contains("at least 8 characters"))
    }

    @Test func aTokenFromTheCLIOpensTheAPI() throws {
        let cli = try CLI()
        let passwordFile = cli.directory + "/password"
        try "correct horse battery\n".write(toFile: passwordFile, atomically: true, encoding: .utf8)
        chmod(passwordFile, 0o644)
        let loose = try cli.run(["user", "add", "alice@example.com", "--password-file", passwordFile])
        #expect(loose.status != 0)
        #expect(loose.stderr.contains("readable by others"))
        chmod(passwordFile, 0o600)
        _ = try cli.ok(["user", "add", "alice@example.com", "--password-file", passwordFile])
        #expect(try cli.ok(["user", "list"]).contains("alice@example.com  user"))
        try "".write(toFile: cli.directory + "/empty", atomically: true, encoding: .utf8)
        chmod(cli.directory + "/empty", 0o600)
        #expect(try cli.run(["user", "add", "bob@example.com", "--password-file", cli.directory + "/empty"]).status != 0)
        let created = try cli.ok(["token", "create", "--user", "alice@example.com"])
        let token = try #require(created.split(separator: "\n").last.map(String.init))
        #expect(APIToken.looksValid(token))
        #expect(try cli.run(["token", "create", "--user", "nobody@example.com"]).status != 0)
        // Only the digest is stored.
        let database = try Data(contentsOf: URL(fileURLWithPath: cli.directory + "/waybill-data/waybill.sqlite"))
        #expect(database.range(of: Data(token.utf8)) == nil)

        let log = cli.directory + "/serve.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = [
            "serve", "--smtp-host", "127.0.0.1", "--smtp-port", "0", "--http-host", "127.0.0.1", "--http-port", "0",
        ]
        process.currentDirectoryURL = URL(fileURLWithPath: cli.directory)
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("WAYBILL_") }
        environment["WAYBILL_TEMPLATES"] = CLI.templates
        process.environment = environment
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardError = handle
        process.standardOutput = handle
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        var port: Int?
        for _ in 0..<300 where port == nil {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let range = text.range(of: #"http listening on 127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                port = Int(text[range].split(separator: ":").last!)
            } else if !process.isRunning {
                break
            }
            usleep(100_000)
        }
        let base = "http://127.0.0.1:\(try #require(port, "serve did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")"))"

        let health = try Self.request(base + "/health")
        #expect(health.status == 200)
        #expect(health.body.contains(#""status":"ok""#))
        let body = #"{"title": "From a script", "destinations": ["mailto:ap@example.com"]}"#
        let refused = try Self.request(base + "/api/directives", body: body)
        #expect(refused.status == 401)
        #expect(refused.body.contains(#""code":"authentication-required""#))
        let accepted = try Self.request(base + "/api/directives", token: token, body: body)
        #expect(accepted.status == 201, "\(accepted.body)")
        let json = try JSONSerialization.jsonObject(with: Data(accepted.body.utf8)) as? [String: Any]
        let id = try #require(json?["id"] as? String)
        #expect(json?["owner"] as? String == "alice@example.com")
        // The CLI sees what the API made, in the same JSON shape.
        let shown = try cli.json(["directive", "show", id, "--json"]) as? [String: Any]
        #expect(shown?["title"] as? String == "From a script")
        #expect(shown?["token"] as? String == json?["token"] as? String)
        #expect(try Self.request(base + "/metrics").body.contains(#"waybill_directives{status="active"} 1"#))

        // A revoked token stops working at once.
        #expect(try cli.ok(["token", "list"]).contains("active"))
        _ = try cli.ok(["token", "revoke", "1"])
        #expect(try Self.request(base + "/api/directives", token: token, body: body).status == 401)

        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }

    /// The admin API in `serve`: a scan without a sheet, sent over SMTP, is rerouted with one POST
    /// through the same pipeline the server runs, and lands in the directive's folder.
    @Test func anAdminReroutesAQuarantinedScanThroughTheLiveAPI() throws {
        let cli = try CLI()
        let passwordFile = cli.directory + "/password"
        try "correct horse battery\n".write(toFile: passwordFile, atomically: true, encoding: .utf8)
        chmod(passwordFile, 0o600)
        _ = try cli.ok(["user", "add", "root@example.com", "--admin", "--password-file", passwordFile])
        _ = try cli.ok(["user", "add", "alice@example.com", "--password-file", passwordFile])
        let admin = try #require(try cli.ok(["token", "create", "--user", "root@example.com"]).split(separator: "\n").last.map(String.init))
        let user = try #require(try cli.ok(["token", "create", "--user", "alice@example.com"]).split(separator: "\n").last.map(String.init))
        let created = try cli.json([
            "directive", "create", "--title", "Lost and found", "--owner", "alice@example.com", "--to", "folder:archive/found", "--json",
        ])
        let directive = try #require((created as? [String: Any])?["id"] as? String)

        let server = try ServeTests.Server(cli)
        var port: Int?
        for _ in 0..<300 where port == nil {
            if let range = server.output.range(of: #"http listening on [0-9.]+:(\d+)"#, options: .regularExpression) {
                port = Int(server.output[range].split(separator: ":").last!)
            } else {
                usleep(100_000)
            }
        }
        let base = "http://127.0.0.1:\(try #require(port, "no http port in: \(server.output)"))"
        let scan = cli.directory + "/nosheet.pdf"
        _ = try CLI.run(
            "/usr/bin/python3", [ServeTests.root.appendingPathComponent("Fixtures/make_batch.py").path, scan, "doc:PAGE-W1"],
            in: cli.directory)
        let swaks = try CLI.run(
            "/usr/bin/swaks", ["--server", "127.0.0.1:\(server.port)", "--to", "scan@localhost", "--attach", "@" + scan], in: cli.directory)
        #expect(swaks.status == 0)
        var held: [[String: Any]] = []
        for _ in 0..<600 where held.isEmpty {
            let list = try Self.request(base + "/api/quarantine", token: admin)
            held = (try? JSONSerialization.jsonObject(with: Data(list.body.utf8)) as? [[String: Any]]) ?? []
            if held.isEmpty { usleep(100_000) }
        }
        let id = try #require(held.first?["id"] as? String)
        #expect(try Self.request(base + "/api/quarantine", token: user).status == 403)

        let body = #"{"directive": "\#(directive)"}"#
        #expect(try Self.request(base + "/api/quarantine/\(id)/reroute", token: user, body: body).status == 403)
        let rerouted = try Self.request(base + "/api/quarantine/\(id)/reroute", token: admin, body: body)
        #expect(rerouted.status == 200, "\(rerouted.body)")
        let folder = cli.directory + "/waybill-data/archive/found"
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { !$0.hasPrefix(".") }
        #expect(files.count == 1, "delivered before the answer")
        if let file = files.first { #expect(try ServeTests.labels(folder + "/" + file) == ["PAGE-W1"]) }
        // The CLI reads what the web did, with who did it.
        let shown = try #require(try cli.json(["quarantine", "show", id, "--json"]) as? [String: Any])
        #expect((shown["entry"] as? [String: Any])?["state"] as? String == "rerouted")
        let lines = (shown["journal"] as? [[String: Any]]) ?? []
        #expect(lines.contains { $0["event"] as? String == "rerouted" && $0["actor"] as? String == "web:root@example.com" })
        // Alice's activity shows the message her directive received.
        let mine = try Self.request(base + "/api/messages", token: user)
        #expect(mine.status == 200)
        #expect(mine.body.contains(id))
        #expect(server.stop() == 0)
    }
}
