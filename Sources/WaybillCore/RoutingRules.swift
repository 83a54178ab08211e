/// The ordered rule list (docs/rules.md): the configured rules, then the built-in ones.
///
/// 1. configured rules, in order;
/// 2. with `one_off_addresses` on, `folder.*@DOMAIN` one-off rules for each configured domain;
/// 3. `scan@localhost` and `scan@DOMAIN` for each configured domain: search for routing sheets,
///    so Waybill works with no configuration at all;
/// 4. with `default_recipient` = `relay`, `@DOMAIN` relay rules for each configured domain,
///    considered only when no earlier rule matched.
///
/// An address no rule accepts is refused at RCPT time. Waybill is never an open relay: a relay
/// rule whose recipients may be outside the configured domains must require an authenticated
/// session or a client network (the throwing initializer refuses it; `decide` refuses such a relay
/// even for rules built without that check).
public struct RoutingRules: Sendable, Hashable {
    /// What an address at a configured domain that no rule matches means.
    public enum DefaultRecipient: String, Sendable, Hashable, Codable, CaseIterable {
        case refuse
        /// An ordinary email recipient: relayed through the smarthost.
        case relay
    }

    public let rules: [RoutingRule]
    /// The configured domains, lower-cased: one-off addresses and the default recipient apply only
    /// to them, and relaying to them needs no trusted client.
    public let domains: [String]
    public let defaultRecipient: DefaultRecipient
    public let oneOffAddresses: Bool
    /// The destination policy's parts (nil: none given; one-off addresses then resolve to nothing).
    let folderRoots: [String: String]?
    let webhookPrefixes: [String]

    /// The configured rules and the built-in `scan@` ones; no one-off addresses, default refuse,
    /// no configuration-time checks (a relay rule that could make an open relay still refuses at `decide`).
    public init(configured: [RoutingRule], domains: [String] = []) {
        let domains = Self.normalized(domains)
        self.init(
            rules: configured + Self.builtIn(domains: domains, oneOffAddresses: false, defaultRecipient: .refuse), domains: domains,
            defaultRecipient: .refuse, oneOffAddresses: false, folderRoots: nil, webhookPrefixes: [])
    }

    /// The full configuration, checked: domain names, `deliver:` destinations against the policy
    /// (folder roots, webhook allow-list), and no relay rule that could relay for anyone anywhere.
    public init(
        configured: [RoutingRule], domains: [String], defaultRecipient: DefaultRecipient = .refuse, oneOffAddresses: Bool = false,
        policy: DestinationPolicy
    ) throws(WaybillError) {
        let domains = Self.normalized(domains)
        for domain in domains where !Destination.isValidEmail("x@\(domain)") {
            throw WaybillError(.configError, "domains: '\(domain)' is not a domain name (such as scan.example.com)")
        }
        if domains.isEmpty, defaultRecipient == .relay {
            throw WaybillError(
                .configError, "default_recipient relay applies to the configured domains, and there are none: set domains")
        }
        if domains.isEmpty, oneOffAddresses {
            throw WaybillError(.configError, "one_off_addresses are recognised at the configured domains, and there are none: set domains")
        }
        for (index, rule) in configured.enumerated() {
            try Self.check(rule, number: index + 1, domains: domains, policy: policy)
        }
        self.init(
            rules: configured + Self.builtIn(domains: domains, oneOffAddresses: oneOffAddresses, defaultRecipient: defaultRecipient),
            domains: domains, defaultRecipient: defaultRecipient, oneOffAddresses: oneOffAddresses, folderRoots: policy.folderRoots,
            webhookPrefixes: policy.webhookPrefixes)
    }

    private init(
        rules: [RoutingRule], domains: [String], defaultRecipient: DefaultRecipient, oneOffAddresses: Bool,
        folderRoots: [String: String]?, webhookPrefixes: [String]
    ) {
        self.rules = rules
        self.domains = domains
        self.defaultRecipient = defaultRecipient
        self.oneOffAddresses = oneOffAddresses
        self.folderRoots = folderRoots
        self.webhookPrefixes = webhookPrefixes
    }

    private static func normalized(_ domains: [String]) -> [String] {
        var seen: Set<String> = []
        return domains.map { $0.trimmingSpaces().lowercased() }.filter { !$0.isEmpty && seen.insert($0).inserted }
    }

    private static func builtIn(domains: [String], oneOffAddresses: Bool, defaultRecipient: DefaultRecipient) -> [RoutingRule] {
        var rules: [RoutingRule] = []
        if oneOffAddresses {
            for domain in domains {
                if let rule = try? RoutingRule(oneOffPattern: "folder.*@\(domain)", origin: "one_off_addresses") { rules.append(rule) }
            }
        }
        for domain in ["localhost"] + domains.filter({ $0 != "localhost" }) {
            if let rule = try? RoutingRule(pattern: "scan@\(domain)", action: .searchSheets, origin: "built-in") { rules.append(rule) }
        }
        if defaultRecipient == .relay {
            for domain in domains {
                if var rule = try? RoutingRule(pattern: "@\(domain)", action: .relay, origin: "default_recipient") {
                    rule.fallback = true
                    rules.append(rule)
                }
            }
        }
        return rules
    }

    /// Configuration-time checks of one configured rule.
    private static func check(_ rule: RoutingRule, number: Int, domains: [String], policy: DestinationPolicy) throws(WaybillError) {
        let name = "rule \(number) (\(rule.pattern))"
        for action in [rule.oneOff ? nil : rule.action, rule.failover].compactMap({ $0 }) {
            switch action {
            case .relay:
                guard !rule.criteria.requiresTrustedClient else { continue }
                if let domain = rule.recipientDomain, domains.contains(domain) { continue }
                let configured = domains.isEmpty ? "none are configured" : domains.joined(separator: ", ")
                throw WaybillError(
                    .configError,
                    """
                    \(name): relay to addresses outside the configured domains (\(configured)) needs "authenticated": true \
                    or a "network" of trusted clients; Waybill is never an open relay
                    """)
            case .deliverTo(let destination):
                do { try policy.check(destination) } catch { throw WaybillError(error.code, "\(name): \(error.message)") }
            case .searchSheets, .applyDirective, .refuse:
                continue
            }
        }
    }

    public func isConfiguredDomain(of address: String) -> Bool {
        guard let at = address.lastIndex(of: "@") else { return false }
        return domains.contains(address[address.index(after: at)...].lowercased())
    }

    /// The destination a one-off address names: `folder.ROOT.SUB.SUB@DOMAIN` is the folder
    /// `ROOT/SUB/SUB` under the configured root ROOT (matched case-insensitively; sub-folders are
    /// lower-case, as addresses compare). Only at a configured domain; segments are letters,
    /// digits, `-` and `_`, none empty, so `..` and `/` cannot occur; checked against the policy.
    public func oneOffDestination(for address: String) throws(WaybillError) -> Destination {
        let address = address.lowercased()
        guard let at = address.lastIndex(of: "@") else {
            throw WaybillError(.invalidDestination, "'\(address)' is not an address")
        }
        let local = address[..<at]
        let domain = String(address[address.index(after: at)...])
        guard domains.contains(domain) else {
            let known = domains.isEmpty ? "none are configured" : domains.joined(separator: ", ")
            throw WaybillError(.invalidDestination, "one-off addresses are recognised only at the configured domains (\(known))")
        }
        guard let folderRoots else {
            throw WaybillError(.configError, "one-off addresses are not configured (no folder roots were given to the rules)")
        }
        let segments = local.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard segments.first == "folder", segments.count >= 2 else {
            throw WaybillError(.invalidDestination, "'\(local)' is not a one-off address: write folder.ROOT.SUB@\(domain)")
        }
        for segment in segments.dropFirst() {
            guard !segment.isEmpty else {
                throw WaybillError(.pathEscape, "one-off address \(address) has an empty folder name (two dots in a row, or a dot at the end)")
            }
            guard segment.utf8.allSatisfy({ Destination.isRootNameByte($0) }) else {
                throw WaybillError(
                    .invalidDestination, "one-off address \(address): folder name '\(segment)' may hold only letters, digits, '-' and '_'")
            }
        }
        let name = segments[1]
        let root = folderRoots[name] != nil ? name : folderRoots.keys.sorted().first { $0.lowercased() == name }
        guard let root else {
            let known = folderRoots.keys.sorted().joined(separator: ", ")
            throw WaybillError(.unknownFolderRoot, "no folder root '\(name)'; known roots: \(known.isEmpty ? "none" : known)")
        }
        let destination = Destination.folder(root: root, path: Array(segments.dropFirst(2)))
        try DestinationPolicy(folderRoots: folderRoots, webhookPrefixes: webhookPrefixes).check(destination)
        return destination
    }

    /// The rule's action and failover for this recipient: a one-off address resolved, and a relay
    /// the rule may not make (outside the configured domains without a trusted client) refused.
    private func resolve(_ rule: RoutingRule, for recipient: String) -> (action: RoutingRule.Action, failover: RoutingRule.Action?) {
        var action = rule.action
        var failover = rule.failover
        if rule.oneOff {
            do { action = .deliverTo(try oneOffDestination(for: recipient)) } catch { return (.refuse(error.message), nil) }
        }
        if !rule.criteria.requiresTrustedClient, let why = Self.untrustedRelayRefusal(recipient, domains: domains) {
            let refusal = RoutingRule.Action.refuse(why)
            if action == .relay { return (refusal, nil) }
            if failover == .relay { failover = refusal }
        }
        return (action, failover)
    }

    /// Why a relay for an untrusted client (no AUTH, no trusted network) may not go to this
    /// recipient, or nil if it may: only to the configured domains, and never with routing the
    /// sender wrote into the local part (`user%host@`, `host!user@`, `user@host@`), which a mail
    /// server behind the smarthost could act on (Postfix's `allow_untrusted_routing = no`).
    static func untrustedRelayRefusal(_ recipient: String, domains: [String]) -> String? {
        guard let at = recipient.lastIndex(of: "@") else { return "'\(recipient)' is not an address" }
        let domain = recipient[recipient.index(after: at)...].lowercased()
        guard domains.contains(domain) else {
            return "relaying to \(domain) needs an authenticated session or a trusted client network"
        }
        if recipient[..<at].contains(where: { $0 == "%" || $0 == "!" || $0 == "@" }) {
            return "sender-specified routing (%, ! or @ in the local part) is relayed only for authenticated or trusted clients"
        }
        return nil
    }

    /// Evaluates the rules in order for one recipient (docs/rules.md, "Evaluation").
    ///
    /// A matching rule adds its action; with `stop` (the default) evaluation ends there, without
    /// it later matching rules add theirs, up to and including the first matching rule that stops.
    /// A matching refusal ends the evaluation and refuses the recipient, whatever earlier rules
    /// added. A fallback (default-recipient) rule applies only when no earlier rule matched.
    ///
    /// Undecided rules (criteria needing what is not known yet) count as not met for `actions`; for
    /// `mayAccept` both ways are followed. The states of every path are just "has an action been
    /// collected?", so this is one pass, not one per combination.
    public func decide(_ context: RoutingContext) -> RoutingDecision {
        let recipient = context.recipient
        var trail: [RoutingDecision.TrailStep] = []
        var actions: [RoutingDecision.Step] = []
        var refusal: (reason: String, rule: Int?)?
        var definiteDone = false
        var open: Set<Bool> = [false]
        var mayAccept = false
        var isComplete = true
        var firstMayApply: RoutingDecision.TrailStep?
        var considered = 0
        for (index, rule) in rules.enumerated() {
            if definiteDone && open.isEmpty { break }
            considered = index + 1
            let number = index + 1
            let (outcome, reasons) = rule.evaluate(context)
            // Resolved (one-off address, relay guard) only for a rule that matches or may match.
            let (action, failover) = outcome == .notMatched ? (rule.action, rule.failover) : resolve(rule, for: recipient)
            var described =
                switch (outcome, rule.oneOff) {
                case (.notMatched, _): rule.actionDescription
                case (_, true): "\(rule.actionDescription): \(action.description)"
                case (_, false): action.description
                }
            if let failover { described += "; if that fails: \(failover.description)" }
            var step = RoutingDecision.TrailStep(
                number: number, rule: rule.summary, origin: rule.origin, outcome: outcome, reasons: reasons, action: described, effect: nil)
            func applies(_ collected: Bool) -> Bool { !rule.fallback || !collected }

            // Every path.
            if outcome != .notMatched {
                var next: Set<Bool> = outcome == .undecided ? open : []
                for collected in open {
                    if !applies(collected) {
                        next.insert(collected)
                    } else if action.isRefusal {
                        continue
                    } else if rule.stop {
                        mayAccept = true
                    } else {
                        next.insert(true)
                    }
                }
                open = next
            }

            // The definite path.
            if outcome == .undecided {
                isComplete = false
                if !definiteDone {
                    step.effect = action.isRefusal ? "may refuse once the message is known" : "may apply once the message is known"
                    if !action.isRefusal, firstMayApply == nil { firstMayApply = step }
                }
            } else if outcome == .matched, !definiteDone {
                if !applies(!actions.isEmpty) {
                    step.outcome = .skipped
                    step.reasons.append("a default rule applies only when no earlier rule matched")
                } else if case .refuse(let reason) = action {
                    refusal = (reason, number)
                    actions = []
                    definiteDone = true
                    step.effect = "refuses"
                } else {
                    actions.append(RoutingDecision.Step(number: number, rule: rule, action: action, failover: failover))
                    definiteDone = rule.stop
                    step.effect = rule.stop ? "decides" : "continues (stop: false)"
                }
            }
            trail.append(step)
        }
        if open.contains(true) { mayAccept = true }
        if !definiteDone && actions.isEmpty { refusal = ("no routing rule accepts this address", nil) }
        if !actions.isEmpty { refusal = nil }

        let reason: String
        if !actions.isEmpty {
            reason = actions.map { "rule \($0.number) (\($0.rule.pattern)): \($0.actionDescription)" }.joined(separator: "; ")
        } else if mayAccept, let step = firstMayApply {
            let unknown = step.reasons.filter { $0.contains("not known") }.joined(separator: ", ")
            reason = "rule \(step.number) (\(step.rule)) may match once the message is known (\(unknown))"
        } else {
            reason = refusal?.reason ?? "no routing rule accepts this address"
        }
        return RoutingDecision(
            recipient: recipient, actions: actions, refusal: refusal?.reason, refusingRule: refusal?.rule, mayAccept: mayAccept,
            isComplete: isComplete, trail: trail, notConsidered: rules.count - considered, reason: reason)
    }

    public struct Match: Sendable, Hashable {
        /// 1-based position in `rules`, as `waybill rules list` numbers them.
        public var number: Int
        /// The rule, its `action` resolved for the address (a one-off address's destination, or a refusal).
        public var rule: RoutingRule
    }

    /// The rule that decides an address when only the address is known (criteria that need more
    /// count as not met): its first action, or the refusing rule; nil when no rule matches.
    public func match(_ address: String) -> Match? {
        let decision = decide(RoutingContext(recipient: address))
        if let first = decision.actions.first {
            var rule = first.rule
            rule.action = first.action
            rule.failover = first.failover
            rule.oneOff = false
            return Match(number: first.number, rule: rule)
        }
        if let number = decision.refusingRule, let reason = decision.refusal {
            var rule = rules[number - 1]
            rule.action = .refuse(reason)
            rule.failover = nil
            rule.oneOff = false
            return Match(number: number, rule: rule)
        }
        return nil
    }

    /// Accepts or refuses at RCPT when only the address is known.
    public func accepts(_ address: String) -> (accepted: Bool, reason: String) {
        let decision = decide(RoutingContext(recipient: address))
        return (decision.mayAccept, decision.reason)
    }
}
