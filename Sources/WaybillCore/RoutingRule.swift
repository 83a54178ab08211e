/// One routing rule (docs/rules.md): up to five criteria combined with AND (recipient pattern,
/// sender pattern, authenticated session or client network, has attachments, size), an action,
/// an optional failover action for when the action fails at the worker, and whether a match ends
/// the evaluation (`stop`, the default) or lets later rules add their actions too.
public struct RoutingRule: Sendable, Hashable, Codable {
    /// What happens to a message for the recipient. Encoded as its configuration spelling
    /// (`search`, `directive:ID`, `relay`, `deliver:URI`, `refuse:reason`).
    public enum Action: Sendable, Hashable, Codable, CustomStringConvertible {
        /// Search the message for routing sheets (the Embedded Directive Manager).
        case searchSheets
        /// Everything sent to the address goes to this directive; no sheet is needed.
        case applyDirective(DirectiveID)
        /// Relay the message as ordinary mail to the recipient through the smarthost (the mail-client flow).
        case relay
        /// Deliver the attachments to one destination: a one-off address, or a fixed `deliver:URI` rule.
        case deliverTo(Destination)
        /// Refused (at RCPT, or at the worker once the message is known) with this reason.
        case refuse(String)

        /// The configuration spelling, which `RoutingRule.action(_:)` reads back.
        public var spelling: String {
            switch self {
            case .searchSheets: "search"
            case .applyDirective(let id): "directive:\(id.display)"
            case .relay: "relay"
            case .deliverTo(let destination): "deliver:\(destination.uri)"
            case .refuse(let reason): "refuse:\(reason)"
            }
        }

        /// For people: "apply directive K7QM2-XR9PC".
        public var description: String {
            switch self {
            case .searchSheets: "search for routing sheets"
            case .applyDirective(let id): "apply directive \(id.display)"
            case .relay: "relay to the recipient through the smarthost"
            case .deliverTo(let destination): "deliver to \(destination.uri)"
            case .refuse(let reason): "refuse (\(reason))"
            }
        }

        public var isRefusal: Bool {
            if case .refuse = self { return true }
            return false
        }

        public init(from decoder: any Decoder) throws {
            let text = try decoder.singleValueContainer().decode(String.self)
            self = try RoutingRule.action(text)
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(spelling)
        }
    }

    /// The criteria besides the recipient pattern; nil or empty means "any". All given ones must hold.
    public struct Criteria: Sendable, Hashable, Codable {
        /// The envelope sender (MAIL FROM, not the From: header), same pattern syntax as recipients;
        /// `<>` matches the null sender of bounces. A sender pattern is a filter, never a
        /// credential: anyone can write any MAIL FROM.
        public var sender: String?
        /// true: only SMTP-AUTH sessions; false: only sessions that did not authenticate.
        public var authenticated: Bool?
        /// Client networks. With `authenticated: true` as well, either one satisfies the rule.
        public var networks: [IPNetwork]
        public var hasAttachments: Bool?
        /// Bounds in octets, inclusive: the message as received (MIME encoding included).
        public var minSize: Int?
        public var maxSize: Int?

        public init(
            sender: String? = nil, authenticated: Bool? = nil, networks: [IPNetwork] = [], hasAttachments: Bool? = nil,
            minSize: Int? = nil, maxSize: Int? = nil
        ) {
            self.sender = sender
            self.authenticated = authenticated
            self.networks = networks
            self.hasAttachments = hasAttachments
            self.minSize = minSize
            self.maxSize = maxSize
        }

        /// Whether the rule can only match a session that proved something about itself: SMTP AUTH
        /// or a configured client network. What a relay beyond the configured domains needs.
        public var requiresTrustedClient: Bool { authenticated == true || !networks.isEmpty }

        public var isEmpty: Bool { self == Criteria() }

        /// "from *@example.com", "authenticated or from 10.0.0.0/8", "with attachments", "size ≤ 10000000 bytes".
        public var descriptions: [String] {
            var parts: [String] = []
            if let sender { parts.append("from \(sender)") }
            let networkText = networks.map(\.text).joined(separator: ", ")
            switch (authenticated, networks.isEmpty) {
            case (true, true): parts.append("authenticated")
            case (true, false): parts.append("authenticated or client in \(networkText)")
            case (false, _): parts.append("not authenticated")
            case (nil, false): parts.append("client in \(networkText)")
            case (nil, true): break
            }
            if let hasAttachments { parts.append(hasAttachments ? "with attachments" : "without attachments") }
            switch (minSize, maxSize) {
            case (let min?, let max?): parts.append("size \(min)–\(max) bytes")
            case (let min?, nil): parts.append("size ≥ \(min) bytes")
            case (nil, let max?): parts.append("size ≤ \(max) bytes")
            case (nil, nil): break
            }
            return parts
        }
    }

    /// The recipient: `alice@example.com` (exact), `@example.com` (any address at the domain) or a
    /// glob with `*` and `?` (`scan-*@example.com`). Compared case-insensitively.
    public var pattern: String
    public var criteria: Criteria
    /// For a one-off rule, `.refuse(…)`: code that reads it without resolving the address refuses.
    public var action: Action
    /// A one-off rule (`"action": "one-off"`): the recipient's local part names the destination
    /// (`folder.ROOT.SUB@domain`); `RoutingRules.decide` resolves it to `deliverTo` or a refusal.
    public var oneOff: Bool
    /// What the worker does when the action fails (a search finds no sheet, a directive is
    /// expired, a delivery is refused); nil: the message goes to quarantine.
    public var failover: Action?
    /// true (the default): a match ends the evaluation. false: later matching rules add their actions.
    public var stop: Bool
    /// Free text from the configuration, shown by `waybill rules list`.
    public var comment: String?
    /// Where the rule came from, for `waybill rules list` ("configuration", "built-in", "one_off_addresses",
    /// "default_recipient").
    public var origin: String
    /// Considered only when no earlier rule matched: the `default_recipient` rules.
    public internal(set) var fallback = false

    public init(
        pattern: String, criteria: Criteria = Criteria(), action: Action, failover: Action? = nil, stop: Bool = true,
        comment: String? = nil, origin: String = "configuration"
    ) throws {
        try self.init(
            pattern: pattern, criteria: criteria, action: action, oneOff: false, failover: failover, stop: stop, comment: comment,
            origin: origin)
    }

    /// A one-off rule: for recipients matching `pattern`, the address names the destination.
    public init(
        oneOffPattern pattern: String, criteria: Criteria = Criteria(), failover: Action? = nil, stop: Bool = true,
        comment: String? = nil, origin: String = "configuration"
    ) throws {
        try self.init(
            pattern: pattern, criteria: criteria, action: .refuse("one-off address not resolved"), oneOff: true, failover: failover,
            stop: stop, comment: comment, origin: origin)
    }

    private init(
        pattern: String, criteria: Criteria, action: Action, oneOff: Bool, failover: Action?, stop: Bool, comment: String?,
        origin: String
    ) throws(WaybillError) {
        self.pattern = try Self.validatedPattern(pattern, what: "routing rule pattern")
        var criteria = criteria
        if let sender = criteria.sender {
            let trimmed = sender.trimmingSpaces()
            criteria.sender = trimmed == "<>" ? trimmed : try Self.validatedPattern(sender, what: "routing rule \(self.pattern): sender pattern")
        }
        self.criteria = criteria
        self.action = action
        self.oneOff = oneOff
        self.failover = failover
        self.stop = stop
        self.comment = comment
        self.origin = origin
        try validate()
    }

    private func validate() throws(WaybillError) {
        let name = "routing rule \(pattern)"
        if criteria.authenticated == false && !criteria.networks.isEmpty {
            throw WaybillError(
                .configError, "\(name): \"authenticated\": false cannot be combined with \"network\" (with true, either one satisfies the rule)")
        }
        if let min = criteria.minSize, min < 0 { throw WaybillError(.configError, "\(name): min_size must not be negative") }
        if let max = criteria.maxSize, max < 0 { throw WaybillError(.configError, "\(name): max_size must not be negative") }
        if let min = criteria.minSize, let max = criteria.maxSize, min > max {
            throw WaybillError(.configError, "\(name): min_size (\(min)) is larger than max_size (\(max))")
        }
        if case .refuse = action, !oneOff {
            if failover != nil { throw WaybillError(.configError, "\(name): a refusal cannot fail, so it takes no failover") }
            if !stop { throw WaybillError(.configError, "\(name): a refusal always stops; remove \"stop\": false") }
        }
    }

    static func validatedPattern(_ pattern: String, what: String) throws(WaybillError) -> String {
        let trimmed = pattern.trimmingSpaces().lowercased()
        guard !trimmed.isEmpty, trimmed.count <= 320, trimmed.allSatisfy({ $0.isASCII && !$0.isWhitespace }),
            trimmed.contains("@")
        else {
            throw WaybillError(.configError, "\(what) '\(pattern)' must be an address, @domain or a pattern like *@domain")
        }
        return trimmed
    }

    /// How the pattern matches, in words, for `waybill rules test`.
    public var kind: String {
        if oneOff { return "one-off addresses" }
        return Self.kind(of: pattern)
    }

    static func kind(of pattern: String) -> String {
        if pattern.hasPrefix("@") { return "domain" }
        if pattern.contains("*") || pattern.contains("?") { return "pattern" }
        return "exact address"
    }

    /// Whether the recipient pattern matches the address (the other criteria aside).
    public func matches(_ address: String) -> Bool {
        Self.matches(pattern: pattern, address)
    }

    static func matches(pattern: String, _ address: String) -> Bool {
        let address = address.lowercased()
        if pattern.hasPrefix("@") { return address.hasSuffix(pattern) && address.count > pattern.count }
        return glob(Array(pattern.utf8)[...], Array(address.utf8)[...])
    }

    /// The domain every address the pattern matches is at, if the pattern pins one down: the part
    /// after its last `@` holds no wildcard. (`*@scan.example.com` → `scan.example.com`; `*@*` → nil.)
    public var recipientDomain: String? {
        guard let at = pattern.lastIndex(of: "@") else { return nil }
        let domain = pattern[pattern.index(after: at)...]
        guard !domain.isEmpty, !domain.contains("*"), !domain.contains("?") else { return nil }
        return String(domain)
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
    /// `PATTERN=directive:K7QM2-XR9PC`, `PATTERN=relay`, `PATTERN=deliver:folder:archive/in`,
    /// `PATTERN=one-off`, `PATTERN=refuse` or `PATTERN=refuse:reason`. Criteria need the JSON form.
    public init(compact text: String, origin: String = "configuration") throws {
        let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2 else {
            throw WaybillError(
                .configError,
                "routing rule '\(text)' must be PATTERN=ACTION (search, directive:ID, relay, deliver:URI, one-off or refuse[:reason])")
        }
        if Self.isOneOff(parts[1]) {
            try self.init(oneOffPattern: parts[0], origin: origin)
        } else {
            try self.init(pattern: parts[0], action: try Self.action(parts[1]), origin: origin)
        }
    }

    static func isOneOff(_ text: String) -> Bool {
        ["one-off", "oneoff", "one_off"].contains(text.trimmingSpaces().lowercased())
    }

    /// Reads an action: `search`, `directive:ID` (or `directive` with `directive`), `relay`,
    /// `deliver:URI` (`deliver:folder:archive/in`, `deliver:mailto:…`, `deliver:https://…`),
    /// `refuse` or `refuse:reason` (or `refuse` with `reason`). `one-off` is a rule, not an action:
    /// see `init(oneOffPattern:)`.
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
        case "relay":
            return .relay
        case "deliver", "deliver-to":
            guard parts.count == 2, !parts[1].trimmingSpaces().isEmpty else {
                throw WaybillError(
                    .configError, "routing rule action 'deliver' needs a destination (deliver:folder:ROOT/PATH, deliver:mailto:…, deliver:https://…)")
            }
            return .deliverTo(try Destination(uri: parts[1]))
        case "refuse", "reject":
            let given = parts.count == 2 ? parts[1].trimmingSpaces() : reason
            return .refuse(given.flatMap { $0.isEmpty ? nil : $0 } ?? "no routing rule accepts this address")
        case let word? where isOneOff(word):
            throw WaybillError(.configError, "'one-off' is a rule's action only: it cannot be a failover")
        default:
            throw WaybillError(
                .configError, "unknown routing rule action '\(text)': use search, directive:ID, relay, deliver:URI, one-off or refuse[:reason]")
        }
    }

    public var actionDescription: String {
        oneOff ? "deliver to the folder the address names (one-off address)" : action.description
    }

    /// "search for routing sheets; if that fails: apply directive K7QM2-XR9PC".
    public var failoverDescription: String? { failover.map(\.description) }

    /// The rule in one line: pattern and criteria. "@scan.example.com, from *@example.com, with attachments".
    public var summary: String {
        ([pattern] + criteria.descriptions).joined(separator: ", ")
    }

    /// Octets from `1048576`, `500KB`, `10MB`, `1.5GB` (1000-based) or `10MiB` (1024-based).
    public static func byteCount(_ text: String) -> Int? {
        let trimmed = text.trimmingSpaces().lowercased()
        let number = trimmed.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
        let unit = trimmed.dropFirst(number.count).trimmingSpaces()
        let multipliers: [String: Double] = [
            "": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9,
            "kib": 1024, "mib": 1_048_576, "gib": 1_073_741_824,
        ]
        guard !number.isEmpty, number.filter({ $0 == "." }).count <= 1, let value = Double(number),
            let multiplier = multipliers[unit]
        else { return nil }
        let bytes = (value * multiplier).rounded()
        guard bytes >= 0, bytes < 1e15 else { return nil }
        if unit.isEmpty || unit == "b", number.contains(".") { return nil }
        return Int(bytes)
    }
}
