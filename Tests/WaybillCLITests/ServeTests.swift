import Foundation
import Testing
import WaybillCore
import WaybillScan

/// `waybill serve` as a scanner meets it: the real binary on a free port, real clients (Python's
/// smtplib, swaks), real sheets and scans, documents checked where they land.
@Suite(.serialized) struct ServeTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// A running `waybill serve`, its log in a file.
    final class Server {
        let process = Process()
        let log: String
        let port: Int

        /// `unprivileged`: when the tests run as root, serve runs as `nobody` (through `setpriv`,
        /// which execs: signals reach serve itself), as it does for anyone who is not root.
        init(_ cli: CLI, environment: [String: String] = [:], unprivileged: Bool = false) throws {
            log = cli.directory + "/serve-\(UUID().uuidString).log"
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            let arguments = ["serve", "--smtp-host", "127.0.0.1", "--smtp-port", "0", "--http-port", "0"]
            if unprivileged && geteuid() == 0 {
                try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: cli.directory)
                process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
                process.arguments = ["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", CLI.binary] + arguments
            } else {
                process.executableURL = URL(fileURLWithPath: CLI.binary)
                process.arguments = arguments
            }
            process.currentDirectoryURL = URL(fileURLWithPath: cli.directory)
            var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("WAYBILL_") }
            env["WAYBILL_TEMPLATES"] = CLI.templates
            env.merge(cli.environment) { $1 }
            env.merge(environment) { $1 }
            process.environment = env
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            process.standardError = handle
            process.standardOutput = handle
            try process.run()
            var found: Int?
            for _ in 0..<300 where found == nil {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                // serve's SMTP line (`[WaybillCLI] listening on …`), not the web app's
                // `http listening on …` nor Hummingbird's `Server started and listening on …`.
                if let range = text.range(of: #"\] listening on 127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                    found = Int(text[range].split(separator: ":").last!)
                } else if !process.isRunning {
                    break
                }
                usleep(100_000)
            }
            guard let found else {
                process.terminate()
                throw WaybillError(.ioError, "serve did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            }
            port = found
        }

        var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

        func stop(_ signal: Int32 = SIGTERM) -> Int32 {
            kill(process.processIdentifier, signal)
            process.waitUntilExit()
            return process.terminationStatus
        }

        deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
    }

    static func python(_ script: String, _ arguments: [String]) throws -> CLI.Result {
        try CLI.run("/usr/bin/python3", ["-c", script] + arguments, in: NSTemporaryDirectory())
    }

    /// Makes a directive with a folder destination and a scan: its sheet, a blank back, two pages.
    func directiveAndScan(_ cli: CLI, folder: String, labels: [String]) throws -> (id: String, scan: String) {
        let created = try cli.json([
            "directive", "create", "--title", "Accounts payable", "--owner", "ap@example.com", "--to", "folder:archive/\(folder)",
            "--json",
        ])
        let id = try #require((created as? [String: Any])?["id"] as? String)
        _ = try cli.ok(["sheet", id, "-o", "sheet-\(id).pdf"])
        let scan = cli.directory + "/scan-\(id).pdf"
        let made = try CLI.run(
            "/usr/bin/python3",
            [Self.root.appendingPathComponent("Fixtures/make_batch.py").path, scan, "sheet:sheet-\(id).pdf", "blank"]
                + labels.map { "doc:" + $0 }, in: cli.directory)
        #expect(made.status == 0, "\(made.stderr)")
        return (id, scan)
    }

    /// Waits for `count` documents in `folder`; returns them sorted.
    func waitForFiles(_ cli: CLI, folder: String, count: Int, seconds: Int = 120) -> [String] {
        let path = cli.directory + "/waybill-data/archive/" + folder
        var files: [String] = []
        for _ in 0..<(seconds * 10) {
            files = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
            if files.count >= count { break }
            usleep(100_000)
        }
        return files.map { path + "/" + $0 }
    }

    static func labels(_ path: String) throws -> [String] {
        var keys = SigningKeys(keys: [])
        keys.rotate(now: Date())
        var labels: [String] = []
        try ScanDecoder(keys: keys).decode(path: path) { page in
            labels += page.barcodes.filter { $0.text.hasPrefix("PAGE-") }.map(\.text)
            #expect(page.sheet == nil, "a routing sheet reached the destination on page \(page.page)")
        }
        return labels
    }

    @Test func aScanSentWithSmtplibAndSwaksLandsWithoutItsSheet() throws {
        let cli = try CLI()
        let server = try Server(cli)
        let (_, scanA) = try directiveAndScan(cli, folder: "smtplib", labels: ["PAGE-S1", "PAGE-S2"])
        let (_, scanB) = try directiveAndScan(cli, folder: "swaks", labels: ["PAGE-W1", "PAGE-W2"])

        // Python's smtplib, the way a scanner sends: EHLO, one PDF labelled octet-stream.
        let sent = try Self.python(
            """
            import smtplib, sys
            from email.message import EmailMessage
            msg = EmailMessage()
            msg["From"] = "mfp@office.example.com"; msg["To"] = "scan@localhost"; msg["Subject"] = "Scan from MFP-4"
            msg.set_content("Please find the scanned document attached.")
            msg.add_attachment(open(sys.argv[2], "rb").read(), maintype="application", subtype="octet-stream", filename="SCAN0001.PDF")
            with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30) as s:
                s.ehlo("mfp-4")
                s.send_message(msg)
            """, [String(server.port), scanA])
        #expect(sent.status == 0, "\(sent.stderr)")

        // swaks, as its manual shows for an attachment.
        let swaks = try CLI.run(
            "/usr/bin/swaks",
            [
                "--server", "127.0.0.1:\(server.port)", "--from", "mfp@office.example.com", "--to", "scan@localhost",
                "--attach-type", "application/pdf", "--attach", "@" + scanB, "--header", "Subject: Scan",
            ], in: cli.directory)
        #expect(swaks.status == 0, "\(swaks.stdout)\(swaks.stderr)")
        #expect(swaks.stdout.contains("250 2.0.0 Ok: queued as"))

        let a = waitForFiles(cli, folder: "smtplib", count: 1)
        let b = waitForFiles(cli, folder: "swaks", count: 1)
        #expect(a.count == 1 && b.count == 1, "\(server.output)")
        if let a = a.first { #expect(try Self.labels(a) == ["PAGE-S1", "PAGE-S2"]) }
        if let b = b.first { #expect(try Self.labels(b) == ["PAGE-W1", "PAGE-W2"]) }
        #expect(server.output.contains("outcome=delivered"))

        // Not an open relay: a foreign recipient is refused at RCPT.
        let relay = try CLI.run(
            "/usr/bin/swaks",
            ["--server", "127.0.0.1:\(server.port)", "--from", "a@b.example", "--to", "victim@elsewhere.example", "--quit-after", "RCPT"],
            in: cli.directory)
        #expect(relay.stdout.contains("550 5.1.1"))
        #expect(server.stop() == 0, "SIGTERM ends serve cleanly: \(server.output)")
    }

    /// `serve` with the given flags, killed if it has not exited after a minute (a hang is the bug).
    static func serveExpectingExit(_ cli: CLI, _ flags: [String]) throws -> CLI.Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = ["serve"] + flags
        process.currentDirectoryURL = URL(fileURLWithPath: cli.directory)
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("WAYBILL_") }
        env["WAYBILL_TEMPLATES"] = CLI.templates
        env.merge(cli.environment) { $1 }
        process.environment = env
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let pid = process.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + 60) { if process.isRunning { kill(pid, SIGKILL) } }
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit, "serve did not exit by itself: \(stderr)")
        return CLI.Result(status: process.terminationStatus, stdout: "", stderr: stderr)
    }

    /// A second `serve` on a port the first one holds stops at once with the reason, for SMTP
    /// (where `SO_REUSEPORT` would otherwise let it share the port and take half the scans) and
    /// for HTTP; the first one goes on serving.
    @Test func aPortInUseStopsServeWithItsReason() throws {
        let cli = try CLI()
        let first = try Server(cli)
        let smtp = try Self.serveExpectingExit(
            try CLI(), ["--smtp-host", "127.0.0.1", "--smtp-port", "\(first.port)", "--http-port", "0"])
        #expect(smtp.status != 0)
        #expect(smtp.stderr.contains("SMTP port \(first.port) on 127.0.0.1 is in use by another program"), "\(smtp.stderr)")
        let http = try Self.serveExpectingExit(
            try CLI(), ["--smtp-host", "127.0.0.1", "--smtp-port", "0", "--http-host", "127.0.0.1", "--http-port", "\(first.port)"])
        #expect(http.status != 0)
        #expect(http.stderr.contains("HTTP port \(first.port) on 127.0.0.1 is in use by another program"), "\(http.stderr)")
        let reply = try Self.python(
            "import smtplib,sys; s=smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=30); print(s.noop()[0]); s.quit()",
            ["\(first.port)"])
        #expect(reply.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "250", "\(reply.stderr)")
        #expect(first.stop() == 0, "\(first.output)")
    }

    /// Not root, as most people run it: the accepted connections must carry no option that only
    /// root may set (the listener once set SO_DEBUG, meaning TCP_NODELAY, and every connection
    /// of a non-root serve was closed at once).
    @Test func anUnprivilegedServeAcceptsMail() throws {
        let cli = try CLI()
        let server = try Server(cli, environment: ["WAYBILL_GREETING_DELAY": "0"], unprivileged: true)
        let reply = try Self.python(
            """
            import smtplib, sys
            s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=30)
            s.sendmail('scanner@example.com', ['scan@localhost'], 'Subject: hello\\r\\n\\r\\nno sheet\\r\\n')
            print(s.noop()[0]); s.quit()
            """, ["\(server.port)"])
        #expect(reply.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "250", "\(reply.stderr)\n\(server.output)")
        #expect(server.output.contains("accepted message"), "\(server.output)")
        #expect(server.stop() == 0, "\(server.output)")
    }

    /// The SMTP limits come from the settings like everything else: a file key or `WAYBILL_…`.
    @Test func theSMTPLimitsAreSettings() throws {
        var cli = try CLI()
        let server = try Server(
            cli, environment: ["WAYBILL_GREETING_DELAY": "0", "WAYBILL_MAX_RECIPIENTS": "2", "WAYBILL_MAX_CONNECTIONS_PER_ADDRESS": "1"])
        let replies = try Self.python(
            """
            import smtplib, socket, sys
            port = int(sys.argv[1])
            s = smtplib.SMTP('127.0.0.1', port, timeout=30)
            s.ehlo('scanner')
            s.mail('scanner@example.com')
            codes = [s.rcpt('scan@localhost')[0] for _ in range(3)]
            second = socket.create_connection(('127.0.0.1', port), timeout=30)
            codes.append(int(second.recv(512)[:3]))
            s.quit()
            print(' '.join(map(str, codes)))
            """, ["\(server.port)"])
        #expect(replies.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "250 250 452 421", "\(replies.stderr)")
        #expect(server.stop() == 0, "\(server.output)")

        cli.environment = ["WAYBILL_COMMAND_TIMEOUT": "soon"]
        let refused = try Self.serveExpectingExit(cli, ["--smtp-host", "127.0.0.1", "--smtp-port", "0", "--http-port", "0"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("command_timeout must be a duration"), "\(refused.stderr)")
    }

    @Test func aScanWithoutASheetIsQuarantinedAndCanBeRerouted() throws {
        let cli = try CLI()
        let server = try Server(cli)
        let scan = cli.directory + "/nosheet.pdf"
        _ = try CLI.run(
            "/usr/bin/python3", [Self.root.appendingPathComponent("Fixtures/make_batch.py").path, scan, "doc:PAGE-Q1"], in: cli.directory)
        let swaks = try CLI.run(
            "/usr/bin/swaks",
            ["--server", "127.0.0.1:\(server.port)", "--to", "scan@localhost", "--attach", "@" + scan, "--header", "Subject: lost"],
            in: cli.directory)
        #expect(swaks.status == 0)
        var held: [[String: Any]] = []
        for _ in 0..<600 where held.isEmpty {
            held = (try cli.json(["quarantine", "list", "--json"]) as? [[String: Any]]) ?? []
            if held.isEmpty { usleep(100_000) }
        }
        let entry = try #require(held.first)
        #expect(entry["reason"] as? String == "no-sheet")
        #expect(entry["subject"] as? String == "lost")
        let id = try #require(entry["id"] as? String)
        #expect(try cli.ok(["quarantine", "show", id]).contains("no routing sheet"))

        let created = try cli.json(["directive", "create", "--title", "Lost and found", "--owner", "it@example.com", "--to", "folder:archive/found", "--json"])
        let directive = try #require((created as? [String: Any])?["id"] as? String)
        _ = try cli.ok(["quarantine", "reroute", id, "--directive", directive])
        let files = waitForFiles(cli, folder: "found", count: 1, seconds: 5)
        #expect(files.count == 1)
        #expect(try cli.run(["quarantine", "release", id]).status == 1, "a rerouted message is no longer held")
        let journal = try #require(try cli.json(["quarantine", "show", id, "--json"]) as? [String: Any])
        let events = ((journal["journal"] as? [[String: Any]]) ?? []).compactMap { $0["event"] as? String }
        #expect(events.contains("quarantined") && events.contains("rerouted") && events.contains("delivered"), "\(events)")
        #expect((journal["entry"] as? [String: Any])?["state"] as? String == "rerouted")
        #expect(server.stop() == 0)
    }

    @Test func rulesListAndTestExplainTheDecision() throws {
        var cli = try CLI()
        let id = DirectiveID.random()
        cli.environment["WAYBILL_RULES"] = "invoices@scan.example.com=directive:\(id.display),@spam.example=refuse"
        cli.environment["WAYBILL_DOMAINS"] = "scan.example.com"
        let list = try cli.ok(["rules", "list"])
        #expect(list.contains("1. invoices@scan.example.com  (exact address, configuration)  → apply directive \(id.display)"))
        #expect(list.contains("3. scan@localhost  (exact address, built-in)  → search for routing sheets"))
        #expect(list.contains("4. scan@scan.example.com"))
        #expect(try cli.ok(["rules", "test", "INVOICES@scan.example.com"]).contains("rule 1"))
        let refused = try cli.run(["rules", "test", "someone@spam.example"])
        #expect(refused.status == 1 && refused.stdout.contains("rule 2") && refused.stdout.contains("550 5.1.1"))
        let nobody = try cli.run(["rules", "test", "victim@elsewhere.example"])
        #expect(nobody.status == 1 && nobody.stdout.contains("no rule matches"))
        let json = try #require(try cli.json(["rules", "list", "--json"]) as? [[String: Any]])
        #expect(json.first?["directive"] as? String == id.rawValue)
        cli.environment["WAYBILL_RULES"] = "invoices@scan.example.com=teleport"
        let bad = try cli.run(["rules", "list"])
        #expect(bad.status == 1 && bad.stderr.contains("[config-error]"))
    }

    /// The process dies at the worst moments (just after the jobs are accepted, just after the
    /// document is linked into the folder); the restart delivers once and counts one use.
    @Test(arguments: ["after-accept", "after-link"]) func aCrashAtAnyPointDeliversOnce(point: String) throws {
        let cli = try CLI()
        let created = try cli.json([
            "directive", "create", "--title", "Once", "--owner", "ap@example.com", "--to", "folder:archive/once", "--max-uses", "1", "--json",
        ])
        let id = try #require((created as? [String: Any])?["id"] as? String)
        _ = try cli.ok(["sheet", id, "-o", "sheet.pdf"])
        let scan = cli.directory + "/scan.pdf"
        _ = try CLI.run(
            "/usr/bin/python3", [Self.root.appendingPathComponent("Fixtures/make_batch.py").path, scan, "sheet:sheet.pdf", "doc:PAGE-X1"],
            in: cli.directory)
        let crashing = try Server(cli, environment: ["WAYBILL_TEST_CRASH_AT": point, "WAYBILL_GREETING_DELAY": "0"])
        let sent = try CLI.run(
            "/usr/bin/swaks", ["--server", "127.0.0.1:\(crashing.port)", "--to", "scan@localhost", "--attach", "@" + scan], in: cli.directory)
        #expect(sent.stdout.contains("250 2.0.0 Ok: queued as"))
        crashing.process.waitUntilExit()
        #expect(crashing.process.terminationStatus == 137, "the crash point was reached: \(crashing.output)")

        let server = try Server(cli)
        let files = waitForFiles(cli, folder: "once", count: 1)
        usleep(300_000)
        #expect(waitForFiles(cli, folder: "once", count: 1, seconds: 1).count == 1)
        if let file = files.first { #expect(try Self.labels(file) == ["PAGE-X1"]) }
        let shown = try #require(try cli.json(["directive", "show", id, "--json"]) as? [String: Any])
        #expect(shown["use_count"] as? Int == 1)
        #expect((try cli.json(["quarantine", "list", "--json"]) as? [Any])?.isEmpty == true, "\(server.output)")
        #expect(server.stop() == 0)
    }

    /// `kill -9` in the middle of 200 messages, then a restart: every message that got its 250
    /// is delivered exactly once.
    @Test func killNineLosesNothingAndDuplicatesNothing() throws {
        let cli = try CLI()
        // An address bound to a directive: no decoding, so the run is about durability, not zbar.
        let created = try cli.json([
            "directive", "create", "--title", "Fax in", "--owner", "fax@example.com", "--to", "folder:archive/fax",
            "--file-name-pattern", "{message}", "--json",
        ])
        let directive = try #require((created as? [String: Any])?["id"] as? String)
        let environment = ["WAYBILL_RULES": "fax@localhost=directive:\(directive)", "WAYBILL_GREETING_DELAY": "0"]
        let page = cli.directory + "/page.png"
        _ = try CLI.run(
            "/usr/bin/python3", [Self.root.appendingPathComponent("Fixtures/make_batch.py").path, page, "--format", "png", "--dpi", "50", "doc:PAGE-K"],
            in: cli.directory)
        var server = try Server(cli, environment: environment)
        let idsFile = cli.directory + "/ids.txt"
        // The client records each queue id it was given; it stops when the server is gone.
        let client = Process()
        client.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        client.arguments = [
            "-c",
            """
            import smtplib, sys
            from email.message import EmailMessage
            port, page, out = int(sys.argv[1]), open(sys.argv[2], "rb").read(), open(sys.argv[3], "w")
            for n in range(200):
                msg = EmailMessage()
                msg["From"] = "fax@example.com"; msg["To"] = "fax@localhost"; msg["Subject"] = f"fax {n}"
                msg.add_attachment(page, maintype="image", subtype="png", filename=f"fax{n}.png")
                try:
                    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
                        code, reply = s.ehlo("fax")[0], None
                        s.mail("fax@example.com"); s.rcpt("fax@localhost")
                        code, reply = s.data(msg.as_bytes())
                        if code == 250:
                            out.write(reply.decode().split()[-1] + "\\n"); out.flush()
                except Exception as e:
                    break
            """,
            String(server.port), page, idsFile,
        ]
        try client.run()
        // Let some messages through, then kill the server without warning.
        for _ in 0..<300 {
            let text = (try? String(contentsOfFile: idsFile, encoding: .utf8)) ?? ""
            if text.split(separator: "\n").count >= 40 { break }
            usleep(50_000)
        }
        _ = server.stop(SIGKILL)
        client.waitUntilExit()
        let acknowledged = Set(((try? String(contentsOfFile: idsFile, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init))
        #expect(acknowledged.count >= 40)

        server = try Server(cli, environment: environment)
        let files = waitForFiles(cli, folder: "fax", count: acknowledged.count, seconds: 180)
        usleep(500_000)
        let names = waitForFiles(cli, folder: "fax", count: acknowledged.count, seconds: 1).map {
            URL(fileURLWithPath: $0).deletingPathExtension().lastPathComponent
        }
        #expect(files.count >= acknowledged.count)
        // Each acknowledged message exactly once (`{message}` names files by message id; a second
        // copy would be `<id>-2`), and nothing but messages that were spooled.
        for id in acknowledged { #expect(names.filter { $0 == id }.count == 1, "\(id)") }
        #expect(!names.contains { $0.hasSuffix("-2") }, "a duplicate delivery: \(names.filter { $0.hasSuffix("-2") })")
        #expect(server.stop() == 0)
    }
}
