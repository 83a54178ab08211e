import Foundation
import Testing

/// The web app in a real browser: headless Chromium, driven by Selenium
/// (`Tests/Browser/browser_test.py`), against the real `waybill serve`. It signs in, creates a
/// directive through the form and downloads its sheet PDF; this test then decodes that PDF with
/// `waybill decode` and checks it carries the directive's own signed token. The screenshots of
/// every page visited are kept in `.build/browser-screenshots/` to look at. The user is an admin,
/// so the tour also covers the activity and admin pages, with a real scan held in quarantine
/// whose pages must load as images.
@Suite(.serialized) struct BrowserTests {
    static let screenshots = ServeTests.root.appendingPathComponent(".build/browser-screenshots").path

    @Test func signInCreateADirectiveAndDownloadASheetThatDecodesToItsToken() throws {
        var cli = try CLI()
        let archive = cli.directory + "/archive"
        try FileManager.default.createDirectory(atPath: archive, withIntermediateDirectories: true)
        cli.environment["WAYBILL_FOLDER_ROOTS"] = "archive=\(archive)"
        let passwordFile = cli.directory + "/password"
        try "a-long-browser-password\n".write(toFile: passwordFile, atomically: true, encoding: .utf8)
        chmod(passwordFile, 0o600)
        _ = try cli.ok(["user", "add", "carol@example.com", "--admin", "--password-file", passwordFile])
        let server = try ServeTests.Server(cli, environment: ["WAYBILL_HTTP_HOST": "127.0.0.1"])
        // A scan without a sheet, held in quarantine, for the admin pages to show.
        let scan = cli.directory + "/nosheet.pdf"
        _ = try CLI.run(
            "/usr/bin/python3", [ServeTests.root.appendingPathComponent("Fixtures/make_batch.py").path, scan, "doc:HELD-1", "doc:HELD-2"],
            in: cli.directory)
        let swaks = try CLI.run(
            "/usr/bin/swaks", ["--timeout", "60", "--server", "127.0.0.1:\(server.port)", "--to", "scan@localhost", "--attach", "@" + scan], in: cli.directory)
        #expect(swaks.status == 0, "\(swaks.stdout)")
        var held: [Any] = []
        for _ in 0..<600 where held.isEmpty {
            held = (try cli.json(["quarantine", "list", "--json"]) as? [Any]) ?? []
            if held.isEmpty { usleep(100_000) }
        }
        #expect(held.count == 1)
        var port: Int?
        for _ in 0..<300 where port == nil {
            if let range = server.output.range(of: #"http listening on 127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                port = Int(server.output[range].split(separator: ":").last!)
            } else {
                usleep(100_000)
            }
        }
        guard let port else {
            Issue.record("no HTTP port in the log: \(server.output)")
            return
        }
        try? FileManager.default.removeItem(atPath: Self.screenshots)
        let downloads = cli.directory + "/downloads"
        let run = try CLI.run(
            "/usr/bin/python3",
            [
                ServeTests.root.appendingPathComponent("Tests/Browser/browser_test.py").path, "--base", "http://127.0.0.1:\(port)",
                "--user", "carol@example.com", "--password-file", passwordFile, "--downloads", downloads, "--shots", Self.screenshots,
                "--admin-tour",
            ], in: cli.directory)
        #expect(run.status == 0, "the browser script failed: \(run.stdout)\n\(run.stderr)")
        guard let line = run.stdout.split(separator: "\n").last,
            let summary = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            summary["ok"] as? Bool == true, let id = summary["directive"] as? String, let pdf = summary["pdf"] as? String,
            let visited = summary["visited"] as? [[String: Any]]
        else {
            Issue.record("no summary from the browser script: \(run.stdout)\n\(run.stderr)")
            return
        }
        // Every page it visited has its screenshot, a real PNG.
        #expect(visited.count >= 14)
        #expect(visited.contains { ($0["page"] as? String ?? "").contains("/admin/quarantine/") }, "the held scan's page was shown")
        for page in visited {
            let path = page["screenshot"] as? String ?? ""
            let bytes = (try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data()
            #expect(bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]), "screenshot of \(page["page"] ?? "?"): \(path)")
            #expect((page["title"] as? String ?? "").hasSuffix("· Waybill"), "\(page)")
        }
        // The directive exists as the form said, owned by the user who signed in.
        let directive = try cli.json(["directive", "show", id, "--json"]) as? [String: Any] ?? [:]
        #expect(directive["owner"] as? String == "carol@example.com")
        #expect(directive["title"] as? String == "Browser test: invoices")
        #expect(directive["destinations"] as? [String] == ["folder:archive/browser"])
        #expect(directive["max_uses"] as? Int == 50)
        // The downloaded PDF decodes to that directive's token, verified by the keys.
        let decoded = try cli.json(["decode", "--json", pdf]) as? [String: Any] ?? [:]
        let sheets = decoded["sheets"] as? [[String: Any]] ?? []
        #expect(sheets.count == 1)
        #expect(sheets.first?["directive"] as? String == id)
        #expect(sheets.first?["status"] as? String == "valid")
        let texts = (decoded["barcodes"] as? [[String: Any]] ?? []).compactMap { $0["text"] as? String }
        #expect(texts.contains(directive["token"] as? String ?? "-"), "\(texts)")
        #expect(server.stop() == 0)
    }
}
