/// What the routing rules decide for one recipient, and why (`waybill rules test` prints `trail`).
///
/// Two answers, which differ only while something is unknown (see `RoutingContext`):
/// - `actions` / `accepted`: the outcome with every undecided criterion counted as not met. With
///   everything known (the worker) this is the decision; a criterion still unknown then (a network
///   rule for a message from a folder) is not met.
/// - `mayAccept`: whether some way the unknowns could turn out ends in an accepting outcome. The
///   SMTP server answers RCPT with this, so a message is refused at RCPT only when every possible
///   outcome is a refusal, and the worker decides again once the message is known.
public struct RoutingDecision: Sendable, Hashable {
    /// One action to carry out, from one matching rule.
    public struct Step: Sendable, Hashable {
        /// 1-based position in `RoutingRules.rules`, as `waybill rules list` numbers them.
        public var number: Int
        public var rule: RoutingRule
        /// Resolved for this recipient: never a refusal (a refusal empties `actions`); for a
        /// one-off rule, `deliverTo` the destination the address names.
        public var action: RoutingRule.Action
        /// What to do if `action` fails at the worker; nil: quarantine.
        public var failover: RoutingRule.Action?

        public var actionDescription: String { action.description }
        public var failoverDescription: String? { failover?.description }
    }

    /// One rule considered, in order.
    public struct TrailStep: Sendable, Hashable {
        public enum Outcome: String, Sendable, Hashable, Codable {
            case matched
            case notMatched = "not matched"
            /// A criterion needs something not known yet (attachments, size, sender, client).
            case undecided
            /// Matched, but the rule applies only when no earlier rule matched (a default-recipient rule).
            case skipped
        }

        public var number: Int
        /// The rule in one line: pattern and criteria.
        public var rule: String
        public var origin: String
        public var outcome: Outcome
        /// Why: "sender bob@evil.example does not match *@example.com", "attachments not known …".
        public var reasons: [String]
        /// What the rule does for this recipient, failover included.
        public var action: String
        /// What its match did to the evaluation: "decides", "refuses", "continues (stop: false)",
        /// "may apply once the message is known"; nil when it did not match.
        public var effect: String?
    }

    public var recipient: String
    /// In order; empty when refused. More than one when rules with `stop: false` matched.
    public var actions: [Step]
    /// Why the message is refused (nil when `actions` is not empty).
    public var refusal: String?
    /// The rule that refused, if a rule did (nil: no rule accepted the address).
    public var refusingRule: Int?
    /// Some outcome accepts: what RCPT answers. Equals `accepted` when `isComplete`.
    public var mayAccept: Bool
    /// No undecided criterion was met on the way.
    public var isComplete: Bool
    public var trail: [TrailStep]
    /// Rules after the trail's last step that were not considered (an earlier rule decided).
    public var notConsidered: Int

    /// The outcome with what is known now: `actions` is not empty.
    public var accepted: Bool { !actions.isEmpty }

    /// One line: the actions ("rule 2 (@scan.example.com): search for routing sheets"), the refusal,
    /// or, when RCPT accepts on an undecided rule, that rule.
    public var reason: String
}
