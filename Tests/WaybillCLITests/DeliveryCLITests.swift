import Foundation
import Testing
import WaybillCore

/// `waybill serve` delivering through real peers: aiosmtpd as the smarthost, a Python webhook
/// receiver; `waybill queue` on what is left; `kill -9` in the middle of deliveries.
@Suite(.serialized) struct DeliveryCLITests {
    static let peers = ServeTests.root.appendingPathComponent("Tests/WaybillDeliveryTests/Peers")

    /// A Python peer (smarthost.py, webhook_receiver.py) on a port of its choosing.
    final class Peer {
        let process = Process()
        let out: String
        let port: Int

        init(_ script: String, _ arguments: [String], out: String) throws {
            self.out = out
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = [DeliveryCLITests.peers.appendingPathComponent(script).path, "--out", out] + arguments
            let stdout = Pipe()
            process.standardOutput = stdout
            try process.run()
            var line: [UInt8] = []
            while true {
                let byte = stdout.fileHandleForReading.readData(ofLength: 1)
                if byte.isEmpty || byte.first == UInt8(ascii: "\n") { break }
                line += byte
            }
            let text = String(decoding: line, as: UTF8.self)
            guard text.hasPrefix("READY "), let port = Int(text.dropFirst(6)) else {
                kill(process.processIdentifier, SIGKILL)
                throw WaybillError(.ioError, "\(script) did not start: \(text)")
            }
            self.port = port
        }

        /// SIGKILL: a child of the test runner may have SIGTERM blocked.
        deinit {
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }

        func records(_ suffix: String) -> [[String: Any]] {
            ((try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []).filter { $0.hasSuffix(suffix) }.sorted().compactMap {
                (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/" + $0)))) as? [String: Any]
            }
        }

        func waitFor(_ suffix: String, count: Int, seconds: Int = 120) -> [[String: Any]] {
            var found: [[String: Any]] = []
            for _ in 0..<(seconds * 10) {
                found = records(suffix)
                if found.count >= count { break }
                usleep(100_000)
            }
            return found
        }
    }

    func scan(_ cli: CLI, _ id: String, labels: [String]) throws -> String {
        _ = try cli.ok(["sheet", id, "-o", "sheet-\(id).pdf"])
        let scan = cli.directory + "/scan-\(id).pdf"
        let made = try CLI.run(
            "/usr/bin/python3",
            [ServeTests.root.appendingPathComponent("Fixtures/make_batch.py").path, scan, "sheet:sheet-\(id).pdf"] + labels.map { "doc:" + $0 },
            in: cli.directory)
        #expect(made.status == 0, "\(made.stderr)")
        return scan
    }

    func send(_ scan: String, port: Int, from: String = "scanner@example.com", to: String = "scan@localhost") throws {
        let sent = try ServeTests.python(
            """
            import smtplib, sys
            from email.message import EmailMessage
            msg = EmailMessage()
            msg["From"] = sys.argv[3]; msg["To"] = sys.argv[4]; msg["Subject"] = "Scan"
            msg.add_attachment(open(sys.argv[2], "rb").read(), maintype="application", subtype="pdf", filename="scan.pdf")
            with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30) as s:
                s.send_message(msg, from_addr=sys.argv[3], to_addrs=[sys.argv[4]])
            """, [String(port), scan, from, to])
        #expect(sent.status == 0, "\(sent.stderr)")
    }

    @Test func mailGoesThroughTheSmarthostAndRefusalsBecomeDeadLettersWithNotices() throws {
        var cli = try CLI()
        let smarthost = try Peer(
            "smarthost.py", ["--rcpt-reply", "bob@example.com=550 5.1.1 <bob@example.com>: no such user"],
            out: cli.directory + "/smarthost")
        cli.environment = [
            "WAYBILL_SMARTHOST": "127.0.0.1:\(smarthost.port)", "WAYBILL_SMARTHOST_SECURITY": "none", "WAYBILL_DOMAINS": "example.com",
            "WAYBILL_GREETING_DELAY": "0",
        ]
        let created = try cli.json([
            "directive", "create", "--title", "Accounts payable", "--owner", "ap@example.com", "--to", "mailto:alice@example.com",
            "--to", "mailto:bob@example.com", "--json",
        ])
        let id = try #require((created as? [String: Any])?["id"] as? String)
        let server = try ServeTests.Server(cli)
        try send(try scan(cli, id, labels: ["PAGE-M1"]), port: server.port)

        // Alice's document, then the notices about Bob's refusal: to the sender and to the owner.
        let sent = smarthost.waitFor(".json", count: 3)
        let recipients = sent.compactMap { ($0["rcpt_tos"] as? [String])?.first }
        #expect(Set(recipients) == ["alice@example.com", "scanner@example.com", "ap@example.com"], "\(server.output)")
        #expect(sent.filter { $0["mail_from"] as? String == "<>" }.count == 2)

        let dead = try #require(try cli.json(["queue", "list", "--dead", "--json"]) as? [[String: Any]])
        #expect(dead.count == 1)
        let row = try #require(dead.first)
        #expect(row["destination"] as? String == "mailto:bob@example.com")
        #expect((row["last_error"] as? String)?.contains("550") == true)
        let delivery = try #require(row["id"] as? Int)
        let shown = try cli.ok(["queue", "show", String(delivery)])
        #expect(shown.contains("no such user") && shown.contains("dead-letter"))
        _ = try cli.ok(["queue", "purge", String(delivery)])
        #expect((try cli.json(["queue", "list", "--dead", "--json"]) as? [Any])?.isEmpty == true)
        let unknown = try cli.run(["queue", "retry", "99999"])
        #expect(unknown.status == 1 && unknown.stderr.contains("unknown-delivery"))
        let all = try #require(try cli.json(["queue", "list", "--all", "--json"]) as? [[String: Any]])
        #expect(all.filter { $0["state"] as? String == "delivered" }.count == 3)
        #expect(server.stop() == 0)
    }

    /// `kill -9` while webhooks are being posted and folders written, then a restart: every
    /// acknowledged message reaches the folder exactly once and the receiver under exactly one
    /// idempotency key each (a post the crash interrupted may come again, with the same key).
    @Test func killNineDuringDeliveriesLosesNothingAndDuplicatesNothing() throws {
        var cli = try CLI()
        let secret = String(repeating: "5e", count: 32)
        try FileManager.default.createDirectory(atPath: cli.directory + "/waybill-data", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(
            atPath: cli.directory + "/waybill-data/webhook-secret", contents: Data((secret + "\n").utf8), attributes: [.posixPermissions: 0o600])
        let receiver = try Peer("webhook_receiver.py", ["--secret", secret, "--stall", "0.2"], out: cli.directory + "/receiver")
        let url = "http://127.0.0.1:\(receiver.port)/in"
        cli.environment = ["WAYBILL_ALLOW_WEBHOOK": url, "WAYBILL_GREETING_DELAY": "0"]
        let created = try cli.json([
            "directive", "create", "--title", "Fax in", "--owner", "fax@example.com", "--to", "folder:archive/fax", "--to", url,
            "--file-name-pattern", "{message}", "--json",
        ])
        let directive = try #require((created as? [String: Any])?["id"] as? String)
        cli.environment["WAYBILL_RULES"] = "fax@localhost=directive:\(directive)"
        let page = cli.directory + "/page.png"
        _ = try CLI.run(
            "/usr/bin/python3",
            [ServeTests.root.appendingPathComponent("Fixtures/make_batch.py").path, page, "--format", "png", "--dpi", "50", "doc:PAGE-K"],
            in: cli.directory)
        var server = try ServeTests.Server(cli)
        let client = Process()
        client.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        client.arguments = [
            "-c",
            """
            import smtplib, sys
            from email.message import EmailMessage
            port, page = int(sys.argv[1]), open(sys.argv[2], "rb").read()
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
                for n in range(40):
                    msg = EmailMessage()
                    msg["From"] = "fax@example.com"; msg["To"] = "fax@localhost"; msg["Subject"] = f"fax {n}"
                    msg.add_attachment(page, maintype="image", subtype="png", filename=f"fax{n}.png")
                    s.send_message(msg)
            """,
            String(server.port), page,
        ]
        try client.run()
        client.waitUntilExit()
        #expect(client.terminationStatus == 0)
        // Kill the server once some webhooks have been posted and others are still waiting.
        _ = receiver.waitFor(".json", count: 8, seconds: 120)
        _ = server.stop(SIGKILL)
        let posted = receiver.records(".json").count
        #expect(posted < 40, "every webhook was posted before the kill; the test proves nothing")

        server = try ServeTests.Server(cli)
        let files = ServeTests().waitForFiles(cli, folder: "fax", count: 40, seconds: 180)
        #expect(files.count == 40)
        #expect(!files.contains { $0.hasSuffix("-2.pdf") }, "a folder delivery was written twice")
        func key(_ request: [String: Any]) -> String? {
            (request["headers"] as? [String: Any])?.first { $0.key.lowercased() == "idempotency-key" }?.value as? String
        }
        // Posts interrupted by the kill come again (same key): wait for 40 keys, not 40 posts.
        var requests: [[String: Any]] = []
        for _ in 0..<1800 {
            requests = receiver.records(".json")
            if Set(requests.filter { $0["signature_valid"] as? Bool == true }.compactMap(key)).count >= 40 { break }
            usleep(100_000)
        }
        let keys = requests.compactMap(key)
        // Posts the kill cut off arrived truncated (their signatures do not verify: a receiver
        // rejects them); every delivery arrived whole, under one key, with one document.
        let whole = requests.filter { $0["signature_valid"] as? Bool == true }
        let wholeKeys = whole.compactMap(key)
        #expect(Set(wholeKeys).count == 40, "\(keys.count) posts, \(Set(wholeKeys).count) whole keys")
        #expect(requests.count - whole.count <= 4, "more truncated posts than deliveries under way")
        var documents: [String: Set<String>] = [:]
        for request in whole {
            guard let key = key(request) else { continue }
            documents[key, default: []].insert(request["document_sha256"] as? String ?? "")
        }
        #expect(documents.values.allSatisfy { $0.count == 1 })
        // And the queue is empty: nothing waits, nothing is dead.
        for _ in 0..<100 {
            if (try? cli.json(["queue", "list", "--json"]) as? [Any])??.isEmpty == true { break }
            usleep(100_000)
        }
        #expect((try cli.json(["queue", "list", "--json"]) as? [Any])?.isEmpty == true)
        #expect(server.stop() == 0)
    }
}
