import Foundation
import Testing
import WaybillCLI
import WaybillCore

/// `waybill rules list|test` with criteria, failover, stop, one-off addresses and the default
/// recipient, through the real binary; and the settings that build the rules.
@Suite struct RulesCLITests {
    static let rules = """
        [{"match": "invoices@scan.example.com", "from": "*@example.com", "action": "search", "failover": "deliver:folder:archive/unsorted",
          "comment": "suppliers only"},
         {"match": "@scan.example.com", "attachments": true, "max_size": "10MB", "action": "search", "stop": false},
         {"match": "spam@scan.example.com", "action": "refuse:go away"}]
        """

    func cli() throws -> CLI {
        var cli = try CLI()
        cli.environment["WAYBILL_RULES"] = Self.rules
        cli.environment["WAYBILL_DOMAINS"] = "scan.example.com"
        return cli
    }

    @Test func testPrintsTheTrailAndExitsByTheRCPTAnswer() throws {
        let cli = try cli()
        let right = try cli.run(["rules", "test", "invoices@scan.example.com", "--from", "bob@example.com"])
        #expect(right.status == 0, "\(right.stderr)")
        let lines = right.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "invoices@scan.example.com: from bob@example.com, not authenticated, client not known, attachments not known, size not known")
        #expect(lines.contains {
            $0.hasPrefix("  rule 1  invoices@scan.example.com, from *@example.com → search for routing sheets; if that fails: deliver to folder:archive/unsorted: matched (")
                && $0.hasSuffix("; decides")
        }, "\(right.stdout)")
        #expect(lines.contains { $0.hasPrefix("  rules 2–") && $0.hasSuffix("not considered") }, "\(right.stdout)")
        #expect(right.stdout.contains("Decision: rule 1, invoices@scan.example.com (exact address match, configuration) → search for routing sheets; if that fails: deliver to folder:archive/unsorted"))
        #expect(right.stdout.contains("Accepted at RCPT."))

        // The wrong sender: rule 1 does not match, rule 2 is undecided (attachments), nothing else accepts.
        let wrong = try cli.run(["rules", "test", "invoices@scan.example.com", "--from", "mallory@evil.example"])
        #expect(wrong.status == 0, "the attachments rule may still match: \(wrong.stdout)")
        #expect(wrong.stdout.contains("rule 1  invoices@scan.example.com, from *@example.com → search for routing sheets; if that fails: deliver to folder:archive/unsorted: not matched (sender mallory@evil.example does not match *@example.com)"))
        #expect(wrong.stdout.contains(": undecided (recipient matches @scan.example.com; attachments not known until the message has arrived; size not known yet); may apply once the message is known"), "\(wrong.stdout)")
        #expect(wrong.stdout.contains("Accepted at RCPT; the worker decides once the message is known."))
        // Known to have no attachments: refused.
        let refused = try cli.run(["rules", "test", "invoices@scan.example.com", "--from", "mallory@evil.example", "--attachments", "no"])
        #expect(refused.status == 1)
        #expect(refused.stdout.contains("Decision: no rule matches; refused at RCPT with 550 5.1.1."), "\(refused.stdout)")
        // stop: false, then a refusal: the refusal wins.
        let spam = try cli.run(["rules", "test", "spam@scan.example.com", "--from", "a@b.example", "--attachments", "yes", "--size", "2MB"])
        #expect(spam.status == 1)
        #expect(spam.stdout.contains("; continues (stop: false)"), "\(spam.stdout)")
        #expect(spam.stdout.contains("Decision: refused by rule 3: go away") && spam.stdout.contains("550 5.1.1"))
        // Input errors are usage errors.
        #expect(try cli.run(["rules", "test", "a@scan.example.com", "--client", "10.0.0.999"]).status == 64)
        #expect(try cli.run(["rules", "test", "a@scan.example.com", "--size", "huge"]).status == 64)
        #expect(try cli.run(["rules", "test", "a@scan.example.com", "--attachments", "maybe"]).status == 64)
    }

    @Test func testJSON() throws {
        let cli = try cli()
        let object = try #require(
            try cli.json([
                "rules", "test", "docs@scan.example.com", "--from", "<>", "--auth", "alice", "--client", "::1", "--attachments", "yes",
                "--size", "1000", "--json",
            ]) as? [String: Any])
        #expect(object["accepted"] as? Bool == true)
        #expect(object["complete"] as? Bool == true)
        let context = try #require(object["context"] as? [String: Any])
        #expect(context["sender"] as? String == "" && context["authenticated_user"] as? String == "alice" && context["client"] as? String == "::1")
        #expect(context["size"] as? Int == 1000 && context["attachments"] as? Bool == true)
        let actions = try #require(object["actions"] as? [[String: Any]])
        #expect(actions.count == 1 && actions[0]["rule"] as? Int == 2 && actions[0]["action"] as? String == "search")
        let trail = try #require(object["trail"] as? [[String: Any]])
        #expect(trail.map { $0["outcome"] as? String } == ["not matched", "matched", "not matched", "not matched", "not matched"])
        #expect(trail[1]["effect"] as? String == "continues (stop: false)")
        #expect((object["rule"] as? [String: Any])?["number"] as? Int == 2)

        let refused = try cli.run(["rules", "test", "spam@scan.example.com", "--json"])
        #expect(refused.status == 1)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(refused.stdout.utf8)) as? [String: Any])
        #expect(json["accepted"] as? Bool == false && json["refusal"] as? String == "go away")
    }

    @Test func listShowsCriteriaFailoverAndStop() throws {
        var cli = try cli()
        cli.environment["WAYBILL_DEFAULT_RECIPIENT"] = "relay"
        cli.environment["WAYBILL_ONE_OFF_ADDRESSES"] = "on"
        let list = try cli.ok(["rules", "list"])
        #expect(list.contains("1. invoices@scan.example.com  (exact address, configuration)  → search for routing sheets\n     when from *@example.com\n     if that fails: deliver to folder:archive/unsorted\n     # suppliers only\n"), "\(list)")
        #expect(list.contains("2. @scan.example.com  (domain, configuration)  → search for routing sheets\n     when with attachments, size ≤ 10000000 bytes\n     then goes on to the next rules (stop: false)\n"))
        #expect(list.contains("4. folder.*@scan.example.com  (one-off addresses, one_off_addresses)  → deliver to the folder the address names (one-off address)"))
        #expect(list.contains("5. scan@localhost  (exact address, built-in)  → search for routing sheets"))
        #expect(list.contains("7. @scan.example.com  (domain, default_recipient)  → relay to the recipient through the smarthost\n     only when no earlier rule matched"))
        #expect(list.contains("Other addresses at scan.example.com are relayed (default_recipient relay)."))
        let json = try #require(try cli.json(["rules", "list", "--json"]) as? [[String: Any]])
        #expect(json[0]["from"] as? String == "*@example.com" && json[0]["failover"] as? String == "deliver:folder:archive/unsorted")
        #expect(json[1]["stop"] as? Bool == false && json[1]["attachments"] as? Bool == true && json[1]["max_size"] as? Int == 10_000_000)
        #expect(json[3]["action"] as? String == "one-off")
        #expect(json[6]["action"] as? String == "relay" && json[6]["fallback"] as? Bool == true)

        // One-off addresses and the default recipient through `rules test`.
        let folder = try cli.ok(["rules", "test", "folder.archive.2026@scan.example.com", "--from", "a@b.example"])
        #expect(folder.contains("deliver to folder:archive/2026"), "\(folder)")
        let unknown = try cli.run(["rules", "test", "folder.secret@scan.example.com", "--from", "a@b.example", "--attachments", "no"])
        #expect(unknown.status == 1 && unknown.stdout.contains("no folder root 'secret'; known roots: archive"), "\(unknown.stdout)")
        let colleague = try cli.ok(["rules", "test", "alice@scan.example.com", "--from", "a@b.example", "--attachments", "no"])
        #expect(colleague.contains("→ relay to the recipient through the smarthost"), "\(colleague)")
        let outside = try cli.run(["rules", "test", "victim@elsewhere.example", "--from", "a@b.example"])
        #expect(outside.status == 1 && outside.stdout.contains("no rule matches"))
    }

    @Test func configurationErrorsAreNamed() throws {
        var cli = try CLI()
        cli.environment["WAYBILL_DOMAINS"] = "scan.example.com"
        cli.environment["WAYBILL_RULES"] = #"[{"match": "a@scan.example.com", "form": "x@y", "action": "search"}]"#
        let badKey = try cli.run(["rules", "list"])
        #expect(badKey.status == 1 && badKey.stderr.contains("[config-error]") && badKey.stderr.contains("rule 1: unknown key 'form'"), "\(badKey.stderr)")
        cli.environment["WAYBILL_RULES"] = "*@*=relay"
        let relay = try cli.run(["rules", "list"])
        #expect(relay.status == 1 && relay.stderr.contains("never an open relay"), "\(relay.stderr)")
        cli.environment["WAYBILL_RULES"] = "@gmail.com=relay"
        #expect(try cli.run(["rules", "test", "bob@gmail.com"]).stderr.contains("never an open relay"))
        cli.environment["WAYBILL_RULES"] = nil
        cli.environment["WAYBILL_DEFAULT_RECIPIENT"] = "forward"
        #expect(try cli.run(["rules", "list"]).stderr.contains("default_recipient must be refuse or relay"))
    }

    /// A configuration file's rule objects pass through the settings as JSON text: booleans,
    /// numbers and lists must survive that.
    @Test func rulesFromAConfigurationFile() throws {
        let directory = NSTemporaryDirectory() + "waybill-rules-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let file = directory + "/waybill.json"
        try """
        {"domains": ["scan.example.com"], "default_recipient": "relay", "one_off_addresses": "on",
         "folder_roots": {"archive": "\(directory)/archive"},
         "rules": [{"match": "*@*", "authenticated": true, "network": ["10.0.0.0/8", "::1"], "attachments": false,
                    "min_size": 0, "max_size": 1048576, "action": "relay", "stop": false},
                   {"match": "*@*", "authenticated": true, "action": "search"}]}
        """.write(toFile: file, atomically: true, encoding: .utf8)
        let settings = try Settings(flags: [:], environment: [:], configFile: file)
        let rules = try settings.routingRules()
        let first = rules.rules[0]
        #expect(first.criteria.authenticated == true && first.criteria.hasAttachments == false && first.stop == false)
        #expect(first.criteria.networks.map(\.text) == ["10.0.0.0/8", "::1"] && first.criteria.minSize == 0 && first.criteria.maxSize == 1_048_576)
        #expect(rules.defaultRecipient == .relay && rules.oneOffAddresses && rules.domains == ["scan.example.com"])
        let decision = rules.decide(RoutingContext(recipient: "bob@gmail.com", sender: "a@b.example", clientAddress: "::1", hasAttachments: false, size: 10))
        #expect(decision.actions.map(\.action) == [.relay])
        #expect(throws: WaybillError.self) {
            try Settings(flags: [:], environment: ["WAYBILL_ONE_OFF_ADDRESSES": "maybe"], configFile: file).routingRules()
        }
    }
}
