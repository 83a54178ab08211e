import Foundation
import Testing
import WaybillCore

/// `waybill ingest` on real folders: scans from the fixture generator, sheets from the CLI.
@Suite(.serialized) struct IngestCLITests {
    static let makeBatch = ServeTests.root.appendingPathComponent("Fixtures/make_batch.py").path

    /// A data directory with one directive (folder `archive/ap`) and a folder of scans: two with
    /// sheets (PDF, TIFF), one without, one text file, one `.eml` carrying a scan.
    func world() throws -> (cli: CLI, id: String, folder: String) {
        let cli = try CLI()
        let created = try cli.json([
            "directive", "create", "--title", "AP", "--owner", "ap@example.com", "--to", "folder:archive/ap", "--max-uses", "10",
            "--json",
        ])
        let id = try #require((created as? [String: Any])?["id"] as? String)
        _ = try cli.ok(["sheet", id, "-o", "sheet.pdf"])
        let folder = cli.directory + "/scans"
        try FileManager.default.createDirectory(atPath: folder + "/sub", withIntermediateDirectories: true)
        for (name, items, format) in [
            ("a.pdf", ["sheet:sheet.pdf", "doc:PAGE-A1", "doc:PAGE-A2"], "pdf"),
            ("sub/b.tif", ["sheet:sheet.pdf", "blank", "doc:PAGE-B1"], "tiff"),
            ("c.pdf", ["doc:PAGE-C1"], "pdf"),
        ] {
            let made = try CLI.run("/usr/bin/python3", [Self.makeBatch, folder + "/" + name, "--format", format] + items, in: cli.directory)
            #expect(made.status == 0, "\(made.stderr)")
        }
        try Data("not a scan\n".utf8).write(to: URL(fileURLWithPath: folder + "/notes.txt"))
        _ = try CLI.run("/usr/bin/python3", [Self.makeBatch, cli.directory + "/d.pdf", "sheet:sheet.pdf", "doc:PAGE-D1"], in: cli.directory)
        let mail = try CLI.run(
            "/usr/bin/python3",
            [
                "-c",
                """
                import sys
                from email.message import EmailMessage
                msg = EmailMessage(); msg["From"] = "mfp@example.com"; msg["To"] = "scan@localhost"; msg["Subject"] = "saved mail"
                msg.add_attachment(open(sys.argv[1], "rb").read(), maintype="application", subtype="octet-stream", filename="d.pdf")
                open(sys.argv[2], "wb").write(bytes(msg))
                """,
                cli.directory + "/d.pdf", folder + "/sub/d.eml",
            ], in: cli.directory)
        #expect(mail.status == 0, "\(mail.stderr)")
        return (cli, id, folder)
    }

    func delivered(_ cli: CLI) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: cli.directory + "/waybill-data/archive/ap")) ?? []).sorted()
    }

    func useCount(_ cli: CLI, _ id: String) throws -> Int? {
        (try cli.json(["directive", "show", id, "--json"]) as? [String: Any])?["use_count"] as? Int
    }

    @Test func dryRunSaysWhatWouldHappenAndChangesNothing() throws {
        let (cli, id, folder) = try world()
        let result = try cli.run(["ingest", folder, "--recursive", "--dry-run", "--json"])
        #expect(result.status == 1, "a file would be quarantined: \(result.stderr)")
        let lines = result.stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        let outcomes = Dictionary(uniqueKeysWithValues: lines.map { (($0["file"] as? String ?? "").replacingOccurrences(of: folder + "/", with: ""), $0["outcome"] as? String ?? "") })
        #expect(outcomes == ["a.pdf": "would-deliver", "sub/b.tif": "would-deliver", "c.pdf": "would-quarantine", "notes.txt": "skipped", "sub/d.eml": "would-deliver"])
        let a = try #require(lines.first { ($0["file"] as? String)?.hasSuffix("a.pdf") == true })
        #expect((a["jobs"] as? [[String: Any]])?.first?["destinations"] as? [String] == ["folder:archive/ap"])
        #expect((a["jobs"] as? [[String: Any]])?.first?["pages"] as? Int == 2)
        #expect(delivered(cli).isEmpty)
        #expect(try useCount(cli, id) == 0)
        #expect((try cli.json(["quarantine", "list", "--json"]) as? [Any])?.isEmpty == true)
    }

    @Test func ingestDeliversQuarantinesSkipsAndResumes() throws {
        let (cli, id, folder) = try world()
        let report = cli.directory + "/report.csv"
        let first = try cli.run(["ingest", folder, "--recursive", "--jobs", "2", "--report", report])
        #expect(first.status == 1, "c.pdf has no sheet: \(first.stdout)")
        #expect(first.stdout.contains("quarantined  \(folder)/c.pdf  no-sheet"))
        #expect(first.stdout.contains("delivered"))
        #expect(delivered(cli).count == 3)
        #expect(try useCount(cli, id) == 3)
        let csv = try String(contentsOfFile: report, encoding: .utf8).split(separator: "\n")
        #expect(csv.first == "file,id,outcome,reason,pages,sheets,jobs,delivered,ms,detail")
        #expect(csv.count == 6)
        let held = try #require(try cli.json(["quarantine", "list", "--json"]) as? [[String: Any]])
        #expect(held.map { $0["reason"] as? String } == ["no-sheet"])

        // Again: everything is recognized by its content and skipped.
        let second = try cli.run(["ingest", folder, "--recursive", "--json"])
        #expect(second.status == 0)
        #expect(second.stdout.components(separatedBy: "\"outcome\":\"already-ingested\"").count - 1 == 4)
        #expect(delivered(cli).count == 3)
        #expect(try useCount(cli, id) == 3)

        // --force: once more, as new messages; --move-to empties the folder.
        let moved = cli.directory + "/done"
        let third = try cli.run(["ingest", folder + "/a.pdf", "--force", "--move-to", moved])
        #expect(third.status == 0, "\(third.stdout)\(third.stderr)")
        #expect(delivered(cli).count == 4)
        #expect(FileManager.default.fileExists(atPath: moved + "/a.pdf"))
        #expect(!FileManager.default.fileExists(atPath: folder + "/a.pdf"))
    }

    /// On a terminal (a pseudo-terminal from util-linux's `script`): a live progress line, then the
    /// summary; the JSON report is one array of the per-file objects.
    @Test func aTerminalGetsAProgressBarAndTheReportCanBeJSON() throws {
        let (cli, _, folder) = try world()
        let report = cli.directory + "/report.json"
        let command = "\(CLI.binary) ingest \(folder) --recursive --report \(report)"
        let result = try CLI.run(
            "/usr/bin/script", ["-qec", command, "/dev/null"], in: cli.directory, environment: ["WAYBILL_TEMPLATES": CLI.templates])
        #expect(result.stdout.contains("5/5 files"), "\(result.stdout)")
        #expect(result.stdout.contains("pages/s"))
        #expect(result.stdout.contains("quarantined  \(folder)/c.pdf  no-sheet"))
        #expect(result.stdout.contains("delivered             3"))
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report))) as? [[String: Any]])
        #expect(rows.count == 5)
        #expect(Set(rows.compactMap { $0["outcome"] as? String }) == ["delivered", "quarantined", "skipped"])
    }

    @Test func aHotFolderIngestsFilesOnceTheyAreComplete() throws {
        let (cli, _, _) = try world()
        let hot = cli.directory + "/hot"
        try FileManager.default.createDirectory(atPath: hot, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        // A settle time longer than the test waits: only inotify's IN_CLOSE_WRITE can start the ingest.
        process.arguments = ["ingest", hot, "--watch", "--settle", "600", "--move-to", cli.directory + "/done"]
        process.currentDirectoryURL = URL(fileURLWithPath: cli.directory)
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("WAYBILL_") }
        env["WAYBILL_TEMPLATES"] = CLI.templates
        process.environment = env
        let logPath = cli.directory + "/watch.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        try process.run()
        // The watch is set up before it says so: a file written before that would be found only by the poll.
        for _ in 0..<600 {
            if ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").contains("Watching") { break }
            usleep(100_000)
        }
        // Written as a scanner on a share does: in pieces, with pauses shorter than the settle time.
        let scan = try Data(contentsOf: URL(fileURLWithPath: cli.directory + "/d.pdf"))
        _ = FileManager.default.createFile(atPath: hot + "/scan.pdf", contents: nil)
        let handle = try #require(FileHandle(forWritingAtPath: hot + "/scan.pdf"))
        let half = scan.count / 2
        handle.write(scan.prefix(half))
        usleep(200_000)
        handle.write(scan.suffix(from: half))
        try handle.close()
        var files: [String] = []
        for _ in 0..<600 where files.isEmpty {
            usleep(100_000)
            files = delivered(cli)
        }
        #expect(files.count == 1)
        for _ in 0..<50 where FileManager.default.fileExists(atPath: hot + "/scan.pdf") { usleep(100_000) }
        #expect(FileManager.default.fileExists(atPath: cli.directory + "/done/scan.pdf"))
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        let output = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        #expect(process.terminationStatus == 0, "\(output)")
        #expect(output.contains("delivered"))
    }
}
