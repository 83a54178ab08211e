import Testing
import WaybillCore

/// Each criterion of a rule: matched, not matched, and undecided while what it needs is unknown.
@Suite struct RoutingRulesCriteriaTests {
    typealias Outcome = RoutingDecision.TrailStep.Outcome

    func rule(_ criteria: RoutingRule.Criteria) throws -> RoutingRule {
        try RoutingRule(pattern: "@scan.example.com", criteria: criteria, action: .searchSheets)
    }

    func outcome(_ rule: RoutingRule, _ context: RoutingContext) -> Outcome { rule.evaluate(context).outcome }

    let to = "docs@scan.example.com"

    @Test func recipientPattern() throws {
        let rule = try rule(.init())
        #expect(outcome(rule, RoutingContext(recipient: "Docs@Scan.Example.com")) == .matched)
        let (result, reasons) = rule.evaluate(RoutingContext(recipient: "docs@other.example"))
        #expect(result == .notMatched)
        #expect(reasons == ["recipient docs@other.example does not match @scan.example.com"])
    }

    @Test func senderPattern() throws {
        let rule = try rule(.init(sender: "*@Example.com"))
        #expect(rule.criteria.sender == "*@example.com")
        #expect(outcome(rule, RoutingContext(recipient: to, sender: "Bob@example.com")) == .matched)
        let (result, reasons) = rule.evaluate(RoutingContext(recipient: to, sender: "bob@evil.example"))
        #expect(result == .notMatched)
        #expect(reasons == ["sender bob@evil.example does not match *@example.com"])
        #expect(outcome(rule, RoutingContext(recipient: to, sender: "")) == .notMatched)
        #expect(outcome(rule, RoutingContext(recipient: to)) == .undecided)
        // <> is the null sender of bounces, and only that.
        let bounces = try self.rule(.init(sender: "<>"))
        #expect(outcome(bounces, RoutingContext(recipient: to, sender: "")) == .matched)
        #expect(outcome(bounces, RoutingContext(recipient: to, sender: "a@b.example")) == .notMatched)
        #expect(throws: WaybillError.self) { try self.rule(.init(sender: "no-at-sign")) }
    }

    @Test func authenticatedSessions() throws {
        let only = try rule(.init(authenticated: true))
        #expect(outcome(only, RoutingContext(recipient: to, authenticatedUser: "alice")) == .matched)
        #expect(outcome(only, RoutingContext(recipient: to)) == .notMatched)
        let never = try rule(.init(authenticated: false))
        #expect(outcome(never, RoutingContext(recipient: to)) == .matched)
        #expect(outcome(never, RoutingContext(recipient: to, authenticatedUser: "alice")) == .notMatched)
        #expect(throws: WaybillError.self) { try self.rule(.init(authenticated: false, networks: [try IPNetwork("10.0.0.0/8")])) }
    }

    @Test func clientNetworks() throws {
        let office = try rule(.init(networks: [try IPNetwork("10.0.0.0/8"), try IPNetwork("2001:db8::/32")]))
        #expect(outcome(office, RoutingContext(recipient: to, clientAddress: "10.1.2.3")) == .matched)
        #expect(outcome(office, RoutingContext(recipient: to, clientAddress: "::ffff:10.0.0.5")) == .matched)
        #expect(outcome(office, RoutingContext(recipient: to, clientAddress: "2001:db8:1::7")) == .matched)
        let (result, reasons) = office.evaluate(RoutingContext(recipient: to, clientAddress: "192.0.2.1"))
        #expect(result == .notMatched)
        #expect(reasons == ["client 192.0.2.1 is not in 10.0.0.0/8, 2001:db8::/32"])
        #expect(outcome(office, RoutingContext(recipient: to)) == .undecided)
        // Authenticated or from the network: either one.
        let either = try rule(.init(authenticated: true, networks: [try IPNetwork("10.0.0.0/8")]))
        #expect(outcome(either, RoutingContext(recipient: to, authenticatedUser: "alice", clientAddress: "192.0.2.1")) == .matched)
        #expect(outcome(either, RoutingContext(recipient: to, clientAddress: "10.9.9.9")) == .matched)
        #expect(outcome(either, RoutingContext(recipient: to, clientAddress: "192.0.2.1")) == .notMatched)
        #expect(outcome(either, RoutingContext(recipient: to)) == .undecided)
    }

    @Test func attachments() throws {
        let with = try rule(.init(hasAttachments: true))
        #expect(outcome(with, RoutingContext(recipient: to, hasAttachments: true)) == .matched)
        #expect(outcome(with, RoutingContext(recipient: to, hasAttachments: false)) == .notMatched)
        #expect(outcome(with, RoutingContext(recipient: to)) == .undecided)
        let without = try rule(.init(hasAttachments: false))
        #expect(outcome(without, RoutingContext(recipient: to, hasAttachments: false)) == .matched)
    }

    @Test func sizeBounds() throws {
        let bounded = try rule(.init(minSize: 1000, maxSize: 10_000_000))
        #expect(outcome(bounded, RoutingContext(recipient: to, size: 1000)) == .matched)
        #expect(outcome(bounded, RoutingContext(recipient: to, size: 10_000_000)) == .matched)
        #expect(outcome(bounded, RoutingContext(recipient: to, size: 999)) == .notMatched)
        #expect(outcome(bounded, RoutingContext(recipient: to, size: 10_000_001)) == .notMatched)
        #expect(outcome(bounded, RoutingContext(recipient: to)) == .undecided)
        #expect(throws: WaybillError.self) { try self.rule(.init(minSize: 10, maxSize: 5)) }
    }

    @Test func sizesAreReadWithUnits() {
        #expect(RoutingRule.byteCount("1048576") == 1_048_576)
        #expect(RoutingRule.byteCount("10MB") == 10_000_000)
        #expect(RoutingRule.byteCount("10 mb") == 10_000_000)
        #expect(RoutingRule.byteCount("500KB") == 500_000)
        #expect(RoutingRule.byteCount("1.5GB") == 1_500_000_000)
        #expect(RoutingRule.byteCount("10MiB") == 10_485_760)
        for bad in ["", "MB", "ten", "1.2.3MB", "-5", "5TB", "1.5"] {
            #expect(RoutingRule.byteCount(bad) == nil, "\(bad)")
        }
    }

    @Test func everyCriterionMustHold() throws {
        let rule = try rule(.init(sender: "*@example.com", hasAttachments: true, maxSize: 1000))
        let good = RoutingContext(recipient: to, sender: "a@example.com", hasAttachments: true, size: 10)
        #expect(outcome(rule, good) == .matched)
        var bad = good
        bad.size = 5000
        #expect(outcome(rule, bad) == .notMatched)
        // One failure outweighs an unknown: not matched, not undecided.
        var mixed = bad
        mixed.hasAttachments = nil
        #expect(outcome(rule, mixed) == .notMatched)
    }
}

@Suite struct RoutingRulesNetworkTests {
    @Test func ipv4() throws {
        let network = try IPNetwork("192.168.1.0/24")
        #expect(network.contains("192.168.1.200"))
        #expect(!network.contains("192.168.2.1"))
        // Host bits past the prefix are cleared.
        #expect(try IPNetwork("192.168.1.77/24").address == IPNetwork("192.168.1.0/24").address)
        let host = try IPNetwork("127.0.0.1")
        #expect(host.contains("127.0.0.1") && !host.contains("127.0.0.2"))
        #expect(try IPNetwork("0.0.0.0/0").contains("203.0.113.9"))
        #expect(try IPNetwork("10.0.0.0/9").contains("10.127.255.255"))
        #expect(try !IPNetwork("10.0.0.0/9").contains("10.128.0.0"))
        #expect(!network.contains("not an address"))
    }

    @Test func ipv6AndMappedIPv4() throws {
        let network = try IPNetwork("2001:db8::/32")
        #expect(network.contains("2001:DB8:ffff::1"))
        #expect(!network.contains("2001:db9::1"))
        #expect(try IPNetwork("::1").contains("::1"))
        #expect(try IPNetwork("::1").contains("[::1]"))
        #expect(try IPNetwork("fe80::/10").contains("fe80::1%eth0"))
        // A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d; IPv4 networks match them.
        let office = try IPNetwork("10.0.0.0/8")
        #expect(office.contains("::ffff:10.0.0.5"))
        #expect(office.contains("::FFFF:a00:5"))
        #expect(!office.contains("::ffff:11.0.0.5"))
        #expect(!office.contains("::10.0.0.5"))  // IPv4-compatible (deprecated), not mapped
        #expect(try IPNetwork("::ffff:0:0/96").contains("198.51.100.4"))
        #expect(try IPNetwork("::ffff:10.0.0.0/104").contains("10.3.3.3"))
        #expect(try IPNetwork("::/0").contains("10.3.3.3"))
        #expect(try IPNetwork("1:2:3:4:5:6:7:8").contains("1:2:3:4:5:6:7:8"))
    }

    @Test func badNetworksAreErrors() {
        for bad in [
            "", "10.0.0", "10.0.0.256", "10.0.0.1/33", "10.0.0.01", "::1/129", "1::2::3", "1:2:3:4:5:6:7:8:9", "12345::", "g::1",
            "10.0.0.0/x", "10.0.0.0/", "example.com", "1:2:3:4:5:6:7::8:9",
        ] {
            #expect(throws: WaybillError.self, "\(bad)") { try IPNetwork(bad) }
        }
    }
}
