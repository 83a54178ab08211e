import Foundation
import Testing
import WaybillCore

@Suite struct DirectiveCLITests {
    let base = ["--title", "Invoices 2026", "--owner", "ap@example.com"]

    @Test func createShowListRevoke() throws {
        let cli = try CLI()
        let created = try #require(
            try cli.json(
                ["directive", "create"] + base + [
                    "--to", "mailto:invoices@example.com", "--to", "folder:archive/invoices/2026", "--expires", "30d",
                    "--max-uses", "50", "--visibility", "shared", "--json",
                ]) as? [String: Any])
        let id = try #require(created["id"] as? String)
        #expect(DirectiveID(id)?.rawValue == id)
        #expect(created["title"] as? String == "Invoices 2026")
        #expect(created["owner"] as? String == "ap@example.com")
        #expect(created["destinations"] as? [String] == ["mailto:invoices@example.com", "folder:archive/invoices/2026"])
        #expect(created["max_uses"] as? Int == 50)
        #expect(created["use_count"] as? Int == 0)
        #expect(created["expires"] is String)
        #expect(created["visibility"] as? String == "shared")
        let token = try #require(created["token"] as? String)
        #expect(token.hasPrefix("WB1:K1:\(id):"))

        let shown = try #require(try cli.json(["directive", "show", id, "--json"]) as? [String: Any])
        #expect(shown["token"] as? String == token)
        // Ids are typed by people: the display form and lower case work too.
        let display = "\(id.prefix(5))-\(id.dropFirst(5))".lowercased()
        #expect(try cli.ok(["directive", "show", display]).contains("Invoices 2026"))

        let listed = try #require(try cli.json(["directive", "list", "--json"]) as? [[String: Any]])
        #expect(listed.map { $0["id"] as? String } == [id])
        #expect(listed.first?["expires"] != nil && listed.first?["revoked"] is NSNull)

        #expect(try cli.ok(["directive", "revoke", id]).contains("Revoked"))
        let revoked = try #require(try cli.json(["directive", "show", id, "--json"]) as? [String: Any])
        #expect(revoked["status"] as? String == "revoked")
        // The database is a real SQLite file in the default data directory.
        #expect(cli.exists("waybill-data/waybill.sqlite"))
    }

    @Test(arguments: [
        (["--to", "gopher://x"], "invalid-destination"),
        (["--to", "mailto:not-an-address"], "invalid-email"),
        (["--to", "folder:nowhere/x"], "unknown-folder-root"),
        (["--to", "folder:archive/../../etc"], "path-escape"),
        (["--to", "folder:/etc"], "path-escape"),
        (["--to", "https://evil.example.org/hook"], "webhook-not-allowed"),
        (["--to", "mailto:a@example.com", "--expires", "2001-01-01"], "invalid-expiry"),
        (["--to", "mailto:a@example.com", "--expires", "someday"], "invalid-expiry"),
        (["--to", "mailto:a@example.com", "--max-uses", "0"], "invalid-max-uses"),
        (["--to", "mailto:a@example.com", "--max-uses=-2"], "invalid-max-uses"),
        ([] as [String], "invalid-destination"),
    ])
    func badInputIsRefusedAndNothingIsStored(extra: [String], code: String) throws {
        let cli = try CLI()
        let result = try cli.run(["directive", "create"] + base + extra)
        #expect(result.status != 0)
        #expect(result.stderr.contains("[\(code)]"), "\(result.stderr)")
        let list = try cli.run(["directive", "list", "--json"])
        #expect(list.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[]")
    }

    @Test func symlinkOutOfAFolderRootIsRefused() throws {
        let cli = try CLI()
        let root = cli.directory + "/root"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: root + "/out", withDestinationPath: "/etc")
        let roots = ["--folder-roots", "docs=\(root)"]
        let inside = try cli.run(["directive", "create"] + base + roots + ["--to", "folder:docs/in/x"])
        #expect(inside.status == 0, "\(inside.stderr)")
        let escape = try cli.run(["directive", "create"] + base + roots + ["--to", "folder:docs/out/x"])
        #expect(escape.status != 0)
        #expect(escape.stderr.contains("[path-escape]"))
    }

    @Test func webhookAllowListFromFlagEnvironmentAndFile() throws {
        var cli = try CLI()
        let hook = ["--to", "https://hooks.example.com/in"]
        #expect(try cli.run(["directive", "create"] + base + hook).status != 0)
        #expect(try cli.run(["directive", "create"] + base + hook + ["--allow-webhook", "https://hooks.example.com/"]).status == 0)
        try #"{"allow_webhook": ["https://hooks.example.com"]}"#.write(
            toFile: cli.directory + "/waybill.json", atomically: true, encoding: .utf8)
        #expect(try cli.run(["directive", "create"] + base + hook).status == 0)
        // The environment beats the file, and a flag beats the environment.
        cli.environment["WAYBILL_ALLOW_WEBHOOK"] = "https://other.example.com/"
        #expect(try cli.run(["directive", "create"] + base + hook).status != 0)
        #expect(try cli.run(["directive", "create"] + base + hook + ["--allow-webhook", "https://hooks.example.com"]).status == 0)
    }

    @Test func dataDirectoryPrecedence() throws {
        var cli = try CLI()
        try #"{"data_dir": "from-file"}"#.write(toFile: cli.directory + "/settings.json", atomically: true, encoding: .utf8)
        let create = ["directive", "create"] + base + ["--to", "mailto:a@example.com"]
        _ = try cli.ok(create + ["--config", "settings.json"])
        #expect(cli.exists("from-file/waybill.sqlite"))
        cli.environment["WAYBILL_CONFIG"] = "settings.json"
        cli.environment["WAYBILL_DATA_DIR"] = "from-env"
        _ = try cli.ok(create)
        #expect(cli.exists("from-env/waybill.sqlite"))
        _ = try cli.ok(create + ["--data-dir", "from-flag"])
        #expect(cli.exists("from-flag/waybill.sqlite"))
        #expect(!cli.exists("waybill-data"))
    }

    @Test func badConfigurationFileIsNamed() throws {
        let cli = try CLI()
        try #"{"data_dirr": "x"}"#.write(toFile: cli.directory + "/waybill.json", atomically: true, encoding: .utf8)
        let result = try cli.run(["directive", "list"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("waybill.json") && result.stderr.contains("data_dirr"))
    }

    @Test func unknownAndMalformedIds() throws {
        let cli = try CLI()
        let unknown = try cli.run(["directive", "show", DirectiveID.random().rawValue])
        #expect(unknown.status != 0 && unknown.stderr.contains("[unknown-directive]"))
        let malformed = try cli.run(["directive", "show", "HELLO"])
        #expect(malformed.status != 0 && malformed.stderr.contains("[invalid-directive-id]"))
        let revoke = try cli.run(["directive", "revoke", DirectiveID.random().rawValue])
        #expect(revoke.status != 0 && revoke.stderr.contains("[unknown-directive]"))
    }

    @Test func argumentErrorsExitWithUsage() throws {
        let cli = try CLI()
        let missing = try cli.run(["directive", "create", "--title", "x"])
        #expect(missing.status == 64)
        let badVisibility = try cli.run(["directive", "create"] + base + ["--to", "mailto:a@example.com", "--visibility", "secret"])
        #expect(badVisibility.status == 64)
    }
}
