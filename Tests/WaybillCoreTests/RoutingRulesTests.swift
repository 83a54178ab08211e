import Testing
import WaybillCore

@Suite struct RoutingRulesTests {
    @Test func withNoConfigurationScanAtLocalhostAndTheDomainsSearch() {
        let rules = RoutingRules(configured: [], domains: ["scan.example.com"])
        #expect(rules.match("scan@localhost")?.rule.action == .searchSheets)
        #expect(rules.match("SCAN@Scan.Example.com")?.rule.action == .searchSheets)
        #expect(rules.match("scan@localhost")?.rule.origin == "built-in")
        #expect(rules.accepts("victim@elsewhere.example").accepted == false)
        #expect(rules.accepts("scan@evil.example").accepted == false)
        #expect(rules.accepts("scan@localhost.evil.example").accepted == false)
    }

    @Test func exactDomainAndGlobPatternsInOrder() throws {
        let id = DirectiveID.random()
        let rules = RoutingRules(configured: [
            try RoutingRule(compact: "invoices@scan.example.com=directive:\(id.display)"),
            try RoutingRule(compact: "@spam.example=refuse:we do not take mail from there"),
            try RoutingRule(compact: "dept-*@scan.example.com=search"),
            try RoutingRule(compact: "*@scan.example.com=refuse"),
        ])
        #expect(rules.match("Invoices@scan.example.com")?.rule.action == .applyDirective(id))
        #expect(rules.match("invoices@scan.example.com")?.number == 1)
        #expect(rules.accepts("anyone@spam.example") == (false, "we do not take mail from there"))
        #expect(rules.match("dept-hr@scan.example.com")?.number == 3)
        #expect(rules.match("other@scan.example.com")?.number == 4)
        #expect(rules.accepts("other@scan.example.com").accepted == false)
        #expect(rules.match("scan@localhost")?.number == 5)
        // A domain rule is the domain, not a suffix of it.
        #expect(rules.match("a@notspam.example") == nil)
    }

    @Test func globIsLinearOnHostileInput() throws {
        let hostile = try RoutingRule(pattern: String(repeating: "*a", count: 40) + "b@x", action: .searchSheets)
        #expect(hostile.matches(String(repeating: "a", count: 300) + "@x") == false)
        #expect(try RoutingRule(pattern: "a?c*@*.com", action: .searchSheets).matches("abcdef@mail.example.com"))
    }

    @Test func badRulesAreNamedErrors() {
        for text in ["nonsense", "a@b=teleport", "a@b=directive:NOTANID", "=search", "no-at-sign=search", "a@b=directive"] {
            #expect(throws: WaybillError.self, "\(text)") { _ = try RoutingRule(compact: text) }
        }
    }
}

/// Evaluation order, stop and continue, failover, one-off addresses, the default recipient, the
/// RCPT-time answer while criteria are undecided, and the open-relay guarantees.
@Suite struct RoutingRulesDecisionTests {
    let policy = DestinationPolicy(folderRoots: ["archive": "/srv/archive", "Invoices": "/srv/invoices"], webhookPrefixes: [])

    func rules(
        _ setting: String, domains: [String] = ["scan.example.com"], defaultRecipient: RoutingRules.DefaultRecipient = .refuse,
        oneOff: Bool = false
    ) throws -> RoutingRules {
        try RoutingRules(
            configured: RoutingRule.rules(fromSetting: setting), domains: domains, defaultRecipient: defaultRecipient,
            oneOffAddresses: oneOff, policy: policy)
    }

    @Test func theFirstMatchingRuleDecidesAndLaterOnesAreNotConsidered() throws {
        let id = DirectiveID.random()
        let rules = try rules("invoices@scan.example.com=directive:\(id.display),@scan.example.com=search")
        let decision = rules.decide(RoutingContext(recipient: "invoices@scan.example.com", sender: "a@b.example"))
        #expect(decision.accepted && decision.mayAccept && decision.isComplete)
        #expect(decision.actions.map(\.action) == [.applyDirective(id)])
        #expect(decision.actions.first?.number == 1)
        #expect(decision.trail.count == 1 && decision.trail[0].effect == "decides")
        #expect(decision.notConsidered == rules.rules.count - 1)
        #expect(decision.reason == "rule 1 (invoices@scan.example.com): apply directive \(id.display)")
    }

    @Test func stopFalseCollectsActionsUpToTheFirstRuleThatStops() throws {
        let audit = DirectiveID.random()
        let rules = try rules(
            """
            [{"match": "@scan.example.com", "action": "directive", "directive": "\(audit.display)", "stop": false},
             {"match": "hr@scan.example.com", "action": "search"},
             {"match": "@scan.example.com", "action": "refuse:never reached"}]
            """)
        let hr = rules.decide(RoutingContext(recipient: "hr@scan.example.com", sender: "x@y.example"))
        #expect(hr.actions.map(\.action) == [.applyDirective(audit), .searchSheets])
        #expect(hr.actions.map(\.number) == [1, 2])
        #expect(hr.trail.map(\.effect) == ["continues (stop: false)", "decides"])
        #expect(hr.reason.contains("; rule 2 (hr@scan.example.com)"))
        // A refusal ends the evaluation and refuses the recipient, whatever earlier rules added.
        let other = rules.decide(RoutingContext(recipient: "other@scan.example.com", sender: "x@y.example"))
        #expect(!other.accepted && !other.mayAccept)
        #expect(other.refusal == "never reached" && other.refusingRule == 3)
        #expect(other.trail.map(\.outcome) == [.matched, .notMatched, .matched])
        // Only non-stop rules matched: their actions are the decision.
        let tail = try self.rules(#"[{"match": "@scan.example.com", "action": "search", "stop": false}]"#)
        #expect(tail.decide(RoutingContext(recipient: "x@scan.example.com")).actions.map(\.number) == [1])
    }

    @Test func failoverIsParsedAndCarried() throws {
        let id = DirectiveID.random()
        let rules = try rules(
            """
            [{"match": "@scan.example.com", "from": "*@example.com", "action": "search", "failover": "directive:\(id.display)"},
             {"match": "@scan.example.com", "action": "search", "failover": "deliver:folder:archive/unsorted"},
             {"match": "x@scan.example.com", "action": "search", "failover": "refuse", "reason": "no sheet"}]
            """)
        #expect(rules.rules[0].failover == .applyDirective(id))
        #expect(rules.rules[1].failover == .deliverTo(.folder(root: "archive", path: ["unsorted"])))
        #expect(rules.rules[2].failover == .refuse("no sheet"))
        let decision = rules.decide(RoutingContext(recipient: "a@scan.example.com", sender: "bob@example.com"))
        #expect(decision.actions.first?.failover == .applyDirective(id))
        #expect(decision.actions.first?.failoverDescription == "apply directive \(id.display)")
        #expect(decision.trail[0].action == "search for routing sheets; if that fails: apply directive \(id.display)")
        for bad in [
            #"[{"match": "a@scan.example.com", "action": "refuse", "failover": "search"}]"#,
            #"[{"match": "a@scan.example.com", "action": "search", "failover": "one-off"}]"#,
            #"[{"match": "a@scan.example.com", "action": "search", "failover": "teleport"}]"#,
            #"[{"match": "a@scan.example.com", "action": "search", "failover": "deliver:folder:nowhere/x"}]"#,
            #"[{"match": "a@scan.example.com", "action": "refuse", "stop": false}]"#,
        ] {
            #expect(throws: WaybillError.self, "\(bad)") { try self.rules(bad) }
        }
    }

    @Test func oneOffAddressesNameAFolder() throws {
        let rules = try rules("", oneOff: true)
        #expect(rules.rules.first?.pattern == "folder.*@scan.example.com")
        #expect(rules.rules.first?.origin == "one_off_addresses")
        let good = rules.decide(RoutingContext(recipient: "folder.archive.2026.march@scan.example.com"))
        #expect(good.actions.map(\.action) == [.deliverTo(.folder(root: "archive", path: ["2026", "march"]))])
        #expect(good.actions.first?.actionDescription == "deliver to folder:archive/2026/march")
        // Root names compare case-insensitively and keep their configured spelling.
        #expect(try rules.oneOffDestination(for: "FOLDER.INVOICES.Q1@scan.example.com") == .folder(root: "Invoices", path: ["q1"]))
        #expect(try rules.oneOffDestination(for: "folder.archive@scan.example.com") == .folder(root: "archive", path: []))
        #expect(rules.match("folder.archive.x@scan.example.com")?.rule.action == .deliverTo(.folder(root: "archive", path: ["x"])))

        let unknown = rules.decide(RoutingContext(recipient: "folder.secret.x@scan.example.com"))
        #expect(!unknown.mayAccept)
        #expect(unknown.refusal == "no folder root 'secret'; known roots: Invoices, archive")
        #expect(rules.accepts("folder.secret.x@scan.example.com") == (false, "no folder root 'secret'; known roots: Invoices, archive"))
        for bad in [
            "folder.archive..x@scan.example.com", "folder.archive.x.@scan.example.com", "folder.@scan.example.com",
            "folder..archive@scan.example.com", "folder.archive.a/b@scan.example.com", "folder.archive.a%2f..@scan.example.com",
            "\"folder.archive.a b\"@scan.example.com",
        ] {
            let decision = rules.decide(RoutingContext(recipient: bad))
            #expect(!decision.mayAccept, "\(bad)")
            #expect(throws: WaybillError.self, "\(bad)") { try rules.oneOffDestination(for: bad) }
        }
        #expect(rules.decide(RoutingContext(recipient: "folder.archive..x@scan.example.com")).refusal?.contains("empty folder name") == true)
        // Not at a configured domain: not a one-off address.
        #expect(!rules.decide(RoutingContext(recipient: "folder.archive.x@elsewhere.example")).mayAccept)
        #expect(throws: WaybillError.self) { try rules.oneOffDestination(for: "folder.archive.x@elsewhere.example") }
        // Off (the default): an ordinary address that no rule accepts.
        let off = try self.rules("")
        #expect(off.decide(RoutingContext(recipient: "folder.archive.x@scan.example.com")).refusal == "no routing rule accepts this address")
    }

    @Test func oneOffRulesComposeWithCriteria() throws {
        let rules = try rules(#"[{"match": "folder.*@scan.example.com", "network": "10.0.0.0/8", "action": "one-off"}]"#)
        let inside = rules.decide(RoutingContext(recipient: "folder.archive.x@scan.example.com", clientAddress: "10.1.1.1"))
        #expect(inside.actions.map(\.action) == [.deliverTo(.folder(root: "archive", path: ["x"]))])
        #expect(!rules.decide(RoutingContext(recipient: "folder.archive.x@scan.example.com", clientAddress: "192.0.2.1")).mayAccept)
        #expect(throws: WaybillError.self) { try self.rules("", domains: [], oneOff: true) }
    }

    @Test func defaultRecipientRefuseOrRelay() throws {
        let refuse = try rules("")
        #expect(refuse.decide(RoutingContext(recipient: "alice@scan.example.com")).refusal == "no routing rule accepts this address")
        let relay = try rules("", defaultRecipient: .relay)
        let alice = relay.decide(RoutingContext(recipient: "alice@scan.example.com"))
        #expect(alice.actions.map(\.action) == [.relay])
        #expect(alice.actions.first?.rule.origin == "default_recipient")
        // Built-in rules still come first, and other domains are still refused.
        #expect(relay.decide(RoutingContext(recipient: "scan@scan.example.com")).actions.map(\.action) == [.searchSheets])
        #expect(!relay.decide(RoutingContext(recipient: "victim@elsewhere.example")).mayAccept)
        #expect(!relay.decide(RoutingContext(recipient: "alice@sub.scan.example.com")).mayAccept)
        // The default applies only when no earlier rule matched, even one that does not stop.
        let audit = try rules(#"[{"match": "@scan.example.com", "action": "search", "stop": false}]"#, defaultRecipient: .relay)
        let decision = audit.decide(RoutingContext(recipient: "bob@scan.example.com"))
        #expect(decision.actions.map(\.action) == [.searchSheets])
        #expect(decision.trail.last?.outcome == .skipped)
        #expect(throws: WaybillError.self) { try self.rules("", domains: [], defaultRecipient: .relay) }
    }

    /// An open relay cannot be configured: a relay rule whose recipients may be anywhere must
    /// require SMTP AUTH or a client network.
    @Test func openRelayConfigurationsAreRefused() throws {
        for setting in [
            "*@*=relay", "@gmail.com=relay", "*@*.example.com=relay", "*@scan.example.*=relay",
            #"[{"match": "*@*", "action": "relay"}]"#,
            #"[{"match": "*@*", "from": "*@scan.example.com", "action": "relay"}]"#,
            #"[{"match": "@gmail.com", "authenticated": false, "action": "relay"}]"#,
            #"[{"match": "*@*", "action": "search", "failover": "relay"}]"#,
        ] {
            #expect(throws: WaybillError.self, "\(setting)") { try self.rules(setting) }
        }
        do {
            _ = try rules("*@*=relay")
        } catch let error as WaybillError {
            #expect(error.code == .configError)
            #expect(error.message.contains("rule 1 (*@*)") && error.message.contains("never an open relay"), "\(error.message)")
        }
        // Allowed: the configured domains, or a trusted client.
        _ = try rules("@scan.example.com=relay,*@scan.example.com=relay")
        let trusted = try rules(
            #"[{"match": "*@*", "authenticated": true, "action": "relay"}, {"match": "*@*", "network": "10.0.0.0/8", "action": "relay"}]"#)
        let colleague = RoutingContext(recipient: "bob@gmail.com", authenticatedUser: "alice")
        #expect(trusted.decide(colleague).actions.map(\.action) == [.relay])
        #expect(trusted.decide(RoutingContext(recipient: "bob@gmail.com", clientAddress: "10.0.0.9")).actions.map(\.action) == [.relay])
        #expect(!trusted.decide(RoutingContext(recipient: "bob@gmail.com", clientAddress: "192.0.2.1")).mayAccept)
    }

    /// Rules built without the configuration checks still never relay for anyone anywhere.
    @Test func anUncheckedRelayRuleRefusesAtDecide() throws {
        let rules = RoutingRules(configured: [try RoutingRule(pattern: "*@*", action: .relay)], domains: ["scan.example.com"])
        let decision = rules.decide(RoutingContext(recipient: "victim@elsewhere.example", sender: "spam@x.example"))
        #expect(!decision.mayAccept)
        #expect(decision.refusal == "relaying to elsewhere.example needs an authenticated session or a trusted client network")
        #expect(rules.decide(RoutingContext(recipient: "alice@scan.example.com")).actions.map(\.action) == [.relay])
        // Routing written into the local part would let a server behind the smarthost relay onwards.
        let relay = try self.rules("", defaultRecipient: .relay)
        for routed in ["victim%evil.example@scan.example.com", "evil.example!victim@scan.example.com", "\"victim@evil.example\"@scan.example.com"] {
            let decision = relay.decide(RoutingContext(recipient: routed))
            #expect(!decision.mayAccept, "\(routed)")
            #expect(decision.refusal?.contains("sender-specified routing") == true, "\(routed)")
        }
        // A trusted client may.
        let trusted = try self.rules(#"[{"match": "@scan.example.com", "authenticated": true, "action": "relay"}]"#)
        let authenticated = RoutingContext(recipient: "victim%evil.example@scan.example.com", authenticatedUser: "alice")
        #expect(trusted.decide(authenticated).actions.map(\.action) == [.relay])
    }

    /// At RCPT the attachments are unknown: a rule that needs them does not refuse the address,
    /// and the worker decides with the message in hand.
    @Test func undecidedCriteriaDoNotRefuseAtRCPT() throws {
        let rules = try rules(#"[{"match": "docs@scan.example.com", "attachments": true, "action": "search"}]"#)
        let rcpt = rules.decide(RoutingContext(recipient: "docs@scan.example.com", sender: "a@b.example"))
        #expect(rcpt.mayAccept && !rcpt.accepted && !rcpt.isComplete)
        #expect(rcpt.trail.first?.outcome == .undecided)
        #expect(rcpt.trail.first?.effect == "may apply once the message is known")
        #expect(rcpt.reason.contains("may match once the message is known") && rcpt.reason.contains("attachments not known"))
        #expect(rules.accepts("docs@scan.example.com").accepted)
        let with = rules.decide(RoutingContext(recipient: "docs@scan.example.com", sender: "a@b.example", hasAttachments: true))
        #expect(with.accepted && with.isComplete)
        let without = rules.decide(RoutingContext(recipient: "docs@scan.example.com", sender: "a@b.example", hasAttachments: false))
        #expect(!without.accepted && !without.mayAccept)

        // An undecided refusal before an acceptance: the address may be accepted.
        let gate = try self.rules(
            #"[{"match": "@scan.example.com", "max_size": "1MB", "action": "refuse:too small"}, {"match": "@scan.example.com", "action": "search"}]"#)
        let unknownSize = gate.decide(RoutingContext(recipient: "a@scan.example.com"))
        #expect(unknownSize.mayAccept && unknownSize.accepted)
        #expect(unknownSize.trail.first?.effect == "may refuse once the message is known")
        #expect(!gate.decide(RoutingContext(recipient: "a@scan.example.com", size: 500)).mayAccept)
        // Every possible outcome a refusal: refused at RCPT already.
        let allRefuse = try self.rules(#"[{"match": "x@scan.example.com", "attachments": true, "action": "refuse:no"}]"#)
        #expect(!allRefuse.decide(RoutingContext(recipient: "x@scan.example.com")).mayAccept)
        // An undecided non-stop rule before a stopping one.
        let chain = try self.rules(
            #"[{"match": "@scan.example.com", "attachments": true, "action": "search", "stop": false}, {"match": "@scan.example.com", "action": "refuse"}]"#)
        #expect(!chain.decide(RoutingContext(recipient: "a@scan.example.com")).mayAccept)
    }

    @Test func jsonErrorsNameTheRuleAndTheKey() throws {
        func message(_ setting: String) -> String {
            do {
                _ = try rules(setting)
                return "no error"
            } catch {
                return (error as? WaybillError)?.message ?? "\(error)"
            }
        }
        #expect(message(#"[{"match": "a@scan.example.com", "action": "search"}, {"match": "b@x", "form": "c@d", "action": "search"}]"#).hasPrefix(
            "rules: rule 2: unknown key 'form'"))
        #expect(message(#"[{"match": "a@x", "action": "search", "authenticated": "yes"}]"#) == "rules: rule 1: \"authenticated\" must be true or false")
        #expect(message(#"[{"match": "a@x", "action": "search", "attachments": 1}]"#).contains("\"attachments\" must be true or false"))
        #expect(message(#"[{"action": "search"}]"#).contains("\"match\""))
        #expect(message(#"[{"match": "a@x"}]"#).contains("\"action\" is missing"))
        #expect(message(#"[{"match": "a@x", "action": "search", "network": "10.0.0.0/33"}]"#).contains("\"network\""))
        #expect(message(#"[{"match": "a@x", "action": "search", "network": ["10.0.0.0/8", "bogus"]}]"#).contains("'bogus'"))
        #expect(message(#"[{"match": "a@x", "action": "search", "min_size": "big"}]"#).contains("\"min_size\""))
        #expect(message(#"[{"match": "a@x", "action": "search", "directive": "K7QM2-XR9PC"}]"#).contains("\"directive\" is given"))
        #expect(message(#"[{"match": "a@x", "action": "search", "reason": "why"}]"#).contains("\"reason\" is given"))
        #expect(message(#"[{"match": "a@x", "action": "search", "stop": "no"}]"#).contains("\"stop\" must be true or false"))
        #expect(message(#"["a@x=search"]"#).contains("rule 1: a rule must be an object"))
        #expect(message(#"[{"match": "a@x", "action": "search""#).hasPrefix("rules must be a JSON list"))
        #expect(message("a@x=search,b@x=teleport").hasPrefix("rules: rule 2: unknown routing rule action 'teleport'"))
    }

    @Test func jsonRulesCarryEveryKey() throws {
        let rules = try rules(
            """
            [{"match": "Scan-*@scan.example.com", "from": "*@example.com", "authenticated": true, "network": "10.0.0.0/8, fd00::/8",
              "attachments": true, "min_size": 1, "max_size": "10MB", "action": "relay", "failover": "refuse:sorry",
              "stop": false, "comment": "mail-client flow"}]
            """)
        let rule = rules.rules[0]
        #expect(rule.pattern == "scan-*@scan.example.com")
        #expect(rule.criteria.sender == "*@example.com")
        #expect(rule.criteria.authenticated == true)
        #expect(rule.criteria.networks.map(\.text) == ["10.0.0.0/8", "fd00::/8"])
        #expect(rule.criteria.hasAttachments == true && rule.criteria.minSize == 1 && rule.criteria.maxSize == 10_000_000)
        #expect(rule.action == .relay && rule.failover == .refuse("sorry") && !rule.stop && rule.comment == "mail-client flow")
        #expect(rule.summary == "scan-*@scan.example.com, from *@example.com, authenticated or client in 10.0.0.0/8, fd00::/8, with attachments, size 1–10000000 bytes")
    }

    @Test func deliverRulesAreCheckedAgainstThePolicy() throws {
        let rules = try rules("invoices@scan.example.com=deliver:folder:Invoices/in")
        #expect(rules.match("invoices@scan.example.com")?.rule.action == .deliverTo(.folder(root: "Invoices", path: ["in"])))
        #expect(throws: WaybillError.self) { try self.rules("a@scan.example.com=deliver:folder:nowhere/in") }
        #expect(throws: WaybillError.self) { try self.rules("a@scan.example.com=deliver:https://hooks.example.com/x") }
        #expect(throws: WaybillError.self) { try self.rules("a@scan.example.com=deliver:folder:archive/../etc") }
        #expect(throws: WaybillError.self) { try self.rules("", domains: ["*.example.com"]) }
    }

    @Test func actionsRoundTripThroughTheirSpelling() throws {
        let id = DirectiveID.random()
        let actions: [RoutingRule.Action] = [
            .searchSheets, .applyDirective(id), .relay, .deliverTo(.folder(root: "archive", path: ["a"])), .refuse("why: because"),
        ]
        for action in actions {
            #expect(try RoutingRule.action(action.spelling) == action)
        }
    }
}
