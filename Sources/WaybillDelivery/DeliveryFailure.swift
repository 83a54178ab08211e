/// Why one attempt to deliver failed, and whether trying again later can help: the one error
/// type every transport (SMTP smarthost, webhook, folder) throws, so the delivery queue can
/// decide between a retry with backoff and a dead letter without knowing the transport.
public struct DeliveryFailure: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable, Codable {
        /// Try again later: 4xx SMTP replies, HTTP 408/429/5xx, timeouts, refused connections.
        case temporary
        /// Trying again cannot help: 5xx SMTP replies, other HTTP 4xx, a destination refused by policy.
        case permanent
    }

    public var kind: Kind
    /// What a person reads in `waybill queue show`: the peer's own words where there are any
    /// (`smtp.example.com said 550 5.1.1 <bob@example.com>: user unknown`).
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public static func temporary(_ message: String) -> DeliveryFailure { DeliveryFailure(.temporary, message) }
    public static func permanent(_ message: String) -> DeliveryFailure { DeliveryFailure(.permanent, message) }

    public var description: String { "\(kind.rawValue): \(message)" }
}
