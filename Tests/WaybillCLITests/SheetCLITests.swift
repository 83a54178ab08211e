import Foundation
import Testing
import WaybillCore
import WaybillScan

@Suite struct SheetCLITests {
    func create(_ cli: CLI, _ extra: [String] = []) throws -> String {
        let created = try cli.json(
            ["directive", "create", "--title", "Payables", "--owner", "ap@example.com", "--to", "mailto:ap@example.com", "--json"]
                + extra)
        return try #require((created as? [String: Any])?["id"] as? String)
    }

    func token(_ cli: CLI, _ id: String) throws -> String {
        try #require((try cli.json(["directive", "show", id, "--json"]) as? [String: Any])?["token"] as? String)
    }

    /// The independent check: poppler's pdftoppm and zbar's zbarimg, not our own code, read both codes.
    @Test func pdftoppmAndZbarimgReadBothCodes() throws {
        let cli = try CLI()
        let first = try create(cli)
        let second = try create(cli)
        #expect(try cli.ok(["sheet", first, second, "-o", "sheets.pdf"]).contains("Wrote 2 routing sheets"))
        let rendered = try CLI.run("/usr/bin/pdftoppm", ["-r", "150", "-gray", "-png", "sheets.pdf", "page"], in: cli.directory)
        #expect(rendered.status == 0, "\(rendered.stderr)")
        for (page, id) in [(1, first), (2, second)] {
            let file = try FileManager.default.contentsOfDirectory(atPath: cli.directory).first {
                $0.hasPrefix("page-") && $0.hasSuffix("\(page).png")
            }
            let decoded = try CLI.run("/usr/bin/zbarimg", ["-q", try #require(file)], in: cli.directory)
            let lines = Set(decoded.stdout.split(separator: "\n").map(String.init))
            let expected = try token(cli, id)
            #expect(lines == ["QR-Code:\(expected)", "CODE-128:\(expected)"])
        }
    }

    @Test func a4AndTemplateSelection() throws {
        let cli = try CLI()
        let id = try create(cli)
        _ = try cli.ok(["sheet", id, "-o", "a4.pdf", "--paper", "a4"])
        let size = try PDFDocument(path: cli.directory + "/a4.pdf").pageSize(0)
        #expect(abs(size.width - 595) < 1 && abs(size.height - 842) < 1)
        let missing = try cli.run(["sheet", id, "-o", "x.pdf", "--template", "fancy"])
        #expect(missing.status != 0 && missing.stderr.contains("fancy-letter.svg"))
        #expect(!cli.exists("x.pdf"))
    }

    @Test func inactiveOrUnknownDirectivesGetNoSheetAndNoFile() throws {
        let cli = try CLI()
        let good = try create(cli)
        let revoked = try create(cli)
        _ = try cli.ok(["directive", "revoke", revoked])
        let result = try cli.run(["sheet", good, revoked, "-o", "out.pdf"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("[directive-inactive]") && result.stderr.contains("revoked"))
        #expect(!cli.exists("out.pdf"))
        let unknown = try cli.run(["sheet", DirectiveID.random().rawValue, "-o", "out.pdf"])
        #expect(unknown.status != 0 && unknown.stderr.contains("[unknown-directive]"))
        #expect(!cli.exists("out.pdf"))
        // An existing file is left as it was when rendering is refused.
        try "keep".write(toFile: cli.directory + "/out.pdf", atomically: true, encoding: .utf8)
        _ = try cli.run(["sheet", revoked, "-o", "out.pdf"])
        #expect(try String(contentsOfFile: cli.directory + "/out.pdf", encoding: .utf8) == "keep")
    }

    @Test func expiredDirectivesGetNoSheet() async throws {
        let cli = try CLI()
        let id = try create(cli, ["--expires", "1s"])
        try await Task.sleep(for: .milliseconds(1_200))
        let result = try cli.run(["sheet", id, "-o", "late.pdf"])
        #expect(result.status != 0 && result.stderr.contains("expired"))
        #expect(!cli.exists("late.pdf"))
    }

    @Test func malformedTemplateIsNamed() throws {
        let cli = try CLI()
        let id = try create(cli)
        try FileManager.default.createDirectory(atPath: cli.directory + "/T", withIntermediateDirectories: true)
        try "<svg>{{#title}}</svg>".write(toFile: cli.directory + "/T/standard-letter.svg", atomically: true, encoding: .utf8)
        let result = try cli.run(["sheet", id, "-o", "x.pdf", "--templates", "T"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("T/standard-letter.svg"), "\(result.stderr)")
        #expect(!cli.exists("x.pdf"))
    }

    @Test func keyRotationAndRetirement() throws {
        let cli = try CLI()
        let id = try create(cli)
        let before = try token(cli, id)
        _ = try cli.ok(["sheet", id, "-o", "k1.pdf"])
        #expect(try cli.ok(["key", "rotate"]).contains("K2"))
        let after = try token(cli, id)
        #expect(after.contains(":K2:") && before.contains(":K1:"))
        #expect(try cli.ok(["key", "list"]).contains("K1"))
        _ = try cli.ok(["key", "retire", "K1"])
        #expect(try cli.ok(["key", "list"]).contains("retired"))
        let onlyOne = try cli.run(["key", "retire", "K2"])
        #expect(onlyOne.status != 0 && onlyOne.stderr.contains("[key-error]"))
        let keysFile = cli.directory + "/waybill-data/keys.json"
        let mode = try FileManager.default.attributesOfItem(atPath: keysFile)[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)
    }
}
