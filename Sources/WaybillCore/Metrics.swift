import Foundation
import Synchronization

/// What this process did since it started, counted where it happens: SMTP connections, messages
/// and refusals, messages routed and quarantined, pages decoded and how long each took, delivery
/// attempts. `/metrics` writes them after the store's gauges (Prometheus text format 0.0.4).
///
/// A fixed catalogue, not a general registry: every family and every known label value is here,
/// so each series is written with 0 before its first event (rates work from the start) and no
/// label value comes from a client. One registry per `waybill serve`, passed to each service
/// (no global: the tests run many servers in one process); the default a component makes for
/// itself counts into a registry no one reads.
///
/// Thread rules: any thread. One `Mutex` around plain integers; each call holds it for a few
/// additions, so the SMTP event loops may call in.
public final class Metrics: Sendable {
    /// Why the SMTP server refused something, one label value per kind of refusal reply.
    /// A reply counts once: a `535` that is the last allowed failure counts `auth-failed`, and
    /// the `421` that closes the connection after it `too-many-errors`.
    public enum SMTPRefusal: String, Sendable, CaseIterable {
        /// `550 5.1.1`: the routing rules accept no action for this recipient.
        case recipientRefused = "recipient-refused"
        /// `452 4.5.3`: more recipients than `maximumRecipients`.
        case tooManyRecipients = "too-many-recipients"
        /// `552 5.3.4`: over `maximumMessageSize`, declared with SIZE or found at the end of DATA.
        case tooLarge = "too-large"
        /// `530` (MAIL without the AUTH that `require_auth` asks for) and `538` (AUTH without TLS).
        case authRequired = "auth-required"
        /// `535 5.7.8`: a user name and password that do not verify.
        case authFailed = "auth-failed"
        /// `421 4.7.0`: the connection closed after too many errors or failed authentications.
        case tooManyErrors = "too-many-errors"
        /// `421 4.7.0` at connect: over the total or per-address connection limit.
        case tooManyConnections = "too-many-connections"
        /// `421 4.4.2`: no command, stalled or too slow DATA within the timeouts.
        case timeout
        /// `554 5.5.0`: the client spoke before the greeting.
        case earlyTalker = "early-talker"
        /// `451 4.3.0`: the message could not be written to the spool.
        case spoolFailed = "spool-failed"
        /// Every other `5xx`: an unknown, malformed, unsupported or out-of-order command.
        case syntax
    }

    /// What became of a message whose DATA the SMTP server read to the end.
    public enum SMTPMessageOutcome: String, Sendable, CaseIterable {
        /// Spooled and fsynced, answered `250`.
        case accepted
        /// Too large, or the spool failed (also counted in the refusals).
        case refused
    }

    /// What the pipeline did with a message it routed.
    public enum RoutingOutcome: String, Sendable, CaseIterable {
        /// Every job accepted; its deliveries are done or queued.
        case delivered
        case quarantined
    }

    /// How one delivery attempt ended (`DeliveryAttemptResult`).
    public enum DeliveryOutcome: String, Sendable, CaseIterable {
        case delivered
        /// Failed for now; another attempt is scheduled.
        case retry
        /// Given up: a dead letter.
        case dead
    }

    /// The quarantine reasons the pipeline and batch planner give, written with 0 before they
    /// happen. A reason not listed here is counted all the same from its first event.
    public static let quarantineReasons = [
        "no-rule", "no-attachment", "unreadable-message", "unreadable-attachment", "no-sheet", "forged",
        "unknown-directive", "revoked", "expired", "used-up", "malformed-batch", "changed-batch", "worker-crash",
    ]

    /// Upper bounds of the page decode histogram's buckets, in seconds (5 ms to 5 s; `+Inf` follows).
    public static let decodeBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

    /// The counts at one moment.
    public struct Snapshot: Sendable, Equatable {
        public internal(set) var smtpConnections = 0
        public internal(set) var smtpMessages: [SMTPMessageOutcome: Int] = [:]
        public internal(set) var smtpRefusals: [SMTPRefusal: Int] = [:]
        public internal(set) var routed: [RoutingOutcome: Int] = [:]
        public internal(set) var quarantined: [String: Int] = [:]
        public internal(set) var pagesDecoded = 0
        /// Per bucket of `decodeBuckets` (not cumulative), then the count above the last bound.
        public internal(set) var decodeBucketCounts = [Int](repeating: 0, count: Metrics.decodeBuckets.count + 1)
        public internal(set) var decodeSeconds = 0.0
        public internal(set) var deliveryAttempts: [DeliveryKind: [DeliveryOutcome: Int]] = [:]

        /// Observations in the decode histogram.
        public var decodeCount: Int { decodeBucketCounts.reduce(0, +) }
    }

    private let state = Mutex(Snapshot())

    public init() {}

    public var snapshot: Snapshot { state.withLock { $0 } }

    /// A TCP connection reached the SMTP server (before any limit is checked).
    public func smtpConnectionOpened() {
        state.withLock { $0.smtpConnections += 1 }
    }

    public func smtpMessage(_ outcome: SMTPMessageOutcome) {
        state.withLock { $0.smtpMessages[outcome, default: 0] += 1 }
    }

    public func smtpRefused(_ reason: SMTPRefusal) {
        state.withLock { $0.smtpRefusals[reason, default: 0] += 1 }
    }

    public func messageDelivered() {
        state.withLock { $0.routed[.delivered, default: 0] += 1 }
    }

    public func messageQuarantined(reason: String) {
        state.withLock {
            $0.routed[.quarantined, default: 0] += 1
            $0.quarantined[reason, default: 0] += 1
        }
    }

    /// One page read by the decoder, in `duration`.
    public func pageDecoded(in duration: Duration) {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        let bucket = Self.decodeBuckets.firstIndex { seconds <= $0 } ?? Self.decodeBuckets.count
        state.withLock {
            $0.pagesDecoded += 1
            $0.decodeBucketCounts[bucket] += 1
            $0.decodeSeconds += seconds
        }
    }

    public func deliveryAttempt(kind: DeliveryKind, outcome: DeliveryOutcome) {
        state.withLock { $0.deliveryAttempts[kind, default: [:]][outcome, default: 0] += 1 }
    }

    /// The families in Prometheus text format 0.0.4: `# HELP`, `# TYPE`, then the samples.
    public func render() -> String {
        let counts = snapshot
        var text = PrometheusWriter()
        text.family(
            "waybill_smtp_connections_total", .counter, "SMTP connections accepted, those refused at once included.")
        text.sample("waybill_smtp_connections_total", [], counts.smtpConnections)
        text.family(
            "waybill_smtp_messages_total", .counter, "Messages whose DATA the SMTP server read to the end, by outcome.")
        for outcome in SMTPMessageOutcome.allCases {
            text.sample(
                "waybill_smtp_messages_total", [("outcome", outcome.rawValue)], counts.smtpMessages[outcome] ?? 0)
        }
        text.family("waybill_smtp_refusals_total", .counter, "SMTP refusal replies (4xx and 5xx), by reason.")
        for reason in SMTPRefusal.allCases.sorted(by: { $0.rawValue < $1.rawValue }) {
            text.sample("waybill_smtp_refusals_total", [("reason", reason.rawValue)], counts.smtpRefusals[reason] ?? 0)
        }
        text.family("waybill_messages_routed_total", .counter, "Messages the pipeline routed, by outcome.")
        for outcome in RoutingOutcome.allCases {
            text.sample("waybill_messages_routed_total", [("outcome", outcome.rawValue)], counts.routed[outcome] ?? 0)
        }
        text.family("waybill_messages_quarantined_total", .counter, "Messages the pipeline quarantined, by reason.")
        for reason in Set(Self.quarantineReasons).union(counts.quarantined.keys).sorted() {
            text.sample("waybill_messages_quarantined_total", [("reason", reason)], counts.quarantined[reason] ?? 0)
        }
        text.family("waybill_pages_decoded_total", .counter, "Pages the scan decoder read.")
        text.sample("waybill_pages_decoded_total", [], counts.pagesDecoded)
        text.family(
            "waybill_page_decode_seconds", .histogram,
            "Time the decoder took per page (rasterizing and barcode search; a file's first page includes opening it).")
        var cumulative = 0
        for (index, bound) in Self.decodeBuckets.enumerated() {
            cumulative += counts.decodeBucketCounts[index]
            text.sample("waybill_page_decode_seconds_bucket", [("le", PrometheusWriter.number(bound))], cumulative)
        }
        text.sample("waybill_page_decode_seconds_bucket", [("le", "+Inf")], counts.decodeCount)
        text.sample("waybill_page_decode_seconds_sum", [], PrometheusWriter.number(counts.decodeSeconds))
        text.sample("waybill_page_decode_seconds_count", [], counts.decodeCount)
        text.family("waybill_delivery_attempts_total", .counter, "Delivery attempts, by kind and outcome.")
        for kind in DeliveryKind.allCases {
            for outcome in DeliveryOutcome.allCases {
                text.sample(
                    "waybill_delivery_attempts_total", [("kind", kind.rawValue), ("outcome", outcome.rawValue)],
                    counts.deliveryAttempts[kind]?[outcome] ?? 0)
            }
        }
        return text.output
    }
}

/// Writes Prometheus text format 0.0.4
/// (https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format).
public struct PrometheusWriter: Sendable {
    public enum Kind: String, Sendable {
        case counter, gauge, histogram
    }

    public private(set) var output = ""

    public init() {}

    /// The `# HELP` and `# TYPE` lines that open a family.
    public mutating func family(_ name: String, _ kind: Kind, _ help: String) {
        output += "# HELP \(name) \(Self.escapeHelp(help))\n# TYPE \(name) \(kind.rawValue)\n"
    }

    public mutating func sample(_ name: String, _ labels: [(String, String)], _ value: Int) {
        sample(name, labels, String(value))
    }

    public mutating func sample(_ name: String, _ labels: [(String, String)], _ value: String) {
        let pairs = labels.map { "\($0.0)=\"\(Self.escapeLabel($0.1))\"" }
        let set = labels.isEmpty ? "" : "{" + pairs.joined(separator: ",") + "}"
        output += "\(name)\(set) \(value)\n"
    }

    /// Label values escape backslash, double quote and line feed.
    public static func escapeLabel(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }

    /// Help text escapes backslash and line feed.
    public static func escapeHelp(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }

    /// A float as Go's `ParseFloat` reads it: `0.005`, `1`, `2.5`, `+Inf`.
    public static func number(_ value: Double) -> String {
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value.isNaN { return "NaN" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}
