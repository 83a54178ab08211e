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
