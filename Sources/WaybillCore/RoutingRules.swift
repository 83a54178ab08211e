/// Routing rules: per recipient address, what happens to a message (DESIGN.md, "The pipeline").
/// Ordered; the first rule whose pattern matches decides. An address no rule matches is refused
/// at RCPT time, so Waybill is never an open relay.
public struct RoutingRule: Sendable, Hashable, Codable {
    public enum Action: Sendable, Hashable, Codable {
        /// Search the message for routing sheets (the Embedded Directive Manager).
        case searchSheets
        /// Everything sent to the address goes to this directive; no sheet is needed.
        case applyDirective(DirectiveID)
        /// Refused at RCPT with this reason.
        case refuse(String)
    }

    /// `alice@example.com` (exact), `@example.com` (any address at the domain) or a glob with `*`
    /// and `?` (`scan-*@example.com`). Compared case-insensitively.
    public var pattern: String
    public var action: Action
    /// Where the rule came from, for `waybill rules list` ("configuration", "built-in").
    public var origin: String

    public init(pattern: String, action: Action, origin: String = "configuration") throws {
        let trimmed = pattern.trimmingSpaces().lowercased()
        guard !trimmed.isEmpty, trimmed.count <= 320, trimmed.allSatisfy({ $0.isASCII && !$0.isWhitespace }),
            trimmed.contains("@")
        else {
            throw WaybillError(.configError, "routing rule pattern '\(pattern)' must be an address, @domain or a pattern like *@domain")
        }
        self.pattern = trimmed
        self.action = action
        self.origin = origin
    }

    /// How the pattern matches, in words, for `waybill rules test`.
    public var kind: String {
        if pattern.hasPrefix("@") { return "domain" }
        if pattern.contains("*") || pattern.contains("?") { return "pattern" }
        return "exact address"
    }

    public func matches(_ address: String) -> Bool {
        let address = address.lowercased()
        if pattern.hasPrefix("@") { return address.hasSuffix(pattern) && address.count > pattern.count }
        return Self.glob(Array(pattern.utf8)[...], Array(address.utf8)[...])
    }

    /// Iterative glob with single backtrack point: linear in practice, never exponential.
    static func glob(_ pattern: ArraySlice<UInt8>, _ text: ArraySlice<UInt8>) -> Bool {
        var p = pattern.startIndex
        var t = text.startIndex
        var star: Int?
        var resume = t
        while t < text.endIndex {
            if p < pattern.endIndex, pattern[p] == UInt8(ascii: "?") || pattern[p] == text[t] {
                p += 1
                t += 1
            } else if p < pattern.endIndex, pattern[p] == UInt8(ascii: "*") {
                star = p
                p += 1
                resume = t
            } else if let star {
                p = star + 1
                resume += 1
                t = resume
            } else {
                return false
            }
        }
        while p < pattern.endIndex, pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.endIndex
    }

    /// The compact spelling used in flags and the environment: `PATTERN=search`,
    /// `PATTERN=directive:K7QM2-XR9PC`, `PATTERN=refuse` or `PATTERN=refuse:reason`.
    public init(compact text: String, origin: String = "configuration") throws {
        let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2 else {
            throw WaybillError(.configError, "routing rule '\(text)' must be PATTERN=ACTION (search, directive:ID or refuse[:reason])")
        }
        try self.init(pattern: parts[0], action: try Self.action(parts[1]), origin: origin)
    }

    public static func action(_ text: String, directive: String? = nil, reason: String? = nil) throws -> Action {
        let parts = text.trimmingSpaces().split(separator: ":", maxSplits: 1).map(String.init)
        switch parts.first?.lowercased() {
        case "search", "search-sheets", "sheets":
            return .searchSheets
        case "directive", "apply-directive":
            guard let text = parts.count == 2 ? parts[1] : directive else {
                throw WaybillError(.configError, "routing rule action 'directive' needs a directive id (directive:K7QM2-XR9PC)")
            }
            guard let id = DirectiveID(text) else {
                throw WaybillError(.configError, "routing rule: '\(text)' is not a directive id (10 characters with a check character)")
            }
            return .applyDirective(id)
        case "refuse", "reject":
            return .refuse(parts.count == 2 ? parts[1] : reason ?? "no routing rule accepts this address")
        default:
            throw WaybillError(.configError, "unknown routing rule action '\(text)': use search, directive:ID or refuse")
        }
    }

    public var actionDescription: String {
        switch action {
        case .searchSheets: "search for routing sheets"
        case .applyDirective(let id): "apply directive \(id.display)"
        case .refuse(let reason): "refuse (\(reason))"
        }
    }
}

/// The ordered rule list with the built-in default at its end: `scan@localhost` and `scan@` each
/// configured domain search for routing sheets, so Waybill works with no configuration at all.
public struct RoutingRules: Sendable, Hashable {
    public let rules: [RoutingRule]

    public init(configured: [RoutingRule], domains: [String] = []) {
        var rules = configured
        for domain in ["localhost"] + domains.map({ $0.lowercased() }) where !domain.isEmpty {
            if let rule = try? RoutingRule(pattern: "scan@\(domain)", action: .searchSheets, origin: "built-in") {
                rules.append(rule)
            }
        }
        self.rules = rules
    }

    public struct Match: Sendable, Hashable {
        /// 1-based position in `rules`, as `waybill rules list` numbers them.
        public var number: Int
        public var rule: RoutingRule
    }

    public func match(_ address: String) -> Match? {
        for (index, rule) in rules.enumerated() where rule.matches(address) {
            return Match(number: index + 1, rule: rule)
        }
        return nil
    }

    /// Accepts or refuses at RCPT: what the SMTP server asks.
    public func accepts(_ address: String) -> (accepted: Bool, reason: String) {
        guard let match = match(address) else { return (false, "no routing rule accepts this address") }
        if case .refuse(let reason) = match.rule.action { return (false, reason) }
        return (true, "rule \(match.number) (\(match.rule.pattern)): \(match.rule.actionDescription)")
    }
}
