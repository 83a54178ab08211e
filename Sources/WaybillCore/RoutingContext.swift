/// What is known of a message when the routing rules are asked about one of its recipients.
/// nil means "not known yet": at RCPT time the attachments are unknown and the size is only what
/// the client declared with `MAIL FROM:<…> SIZE=`; the worker asks again with everything known.
public struct RoutingContext: Sendable, Hashable {
    public var recipient: String
    /// The envelope sender (MAIL FROM); "" is the null sender `<>`; nil: not known.
    public var sender: String?
    /// The SMTP AUTH user; nil: the session did not authenticate (always known).
    public var authenticatedUser: String?
    /// The client's IP address as the listener saw it; nil: not known (a folder ingest, an old envelope).
    public var clientAddress: String?
    public var hasAttachments: Bool?
    /// Octets: the declared size at RCPT time, the real one at the worker.
    public var size: Int?

    public init(
        recipient: String, sender: String? = nil, authenticatedUser: String? = nil, clientAddress: String? = nil,
        hasAttachments: Bool? = nil, size: Int? = nil
    ) {
        self.recipient = recipient
        self.sender = sender
        self.authenticatedUser = authenticatedUser
        self.clientAddress = clientAddress
        self.hasAttachments = hasAttachments
        self.size = size
    }
}

extension RoutingRule {
    /// The rule's criteria against a context, three-valued: a criterion that needs something not
    /// known yet is undecided. Not matched if any criterion fails (with every failing reason),
    /// undecided if none fails but one is undecided, matched if all hold.
    public func evaluate(_ context: RoutingContext) -> (outcome: RoutingDecision.TrailStep.Outcome, reasons: [String]) {
        let recipient = context.recipient.lowercased()
        guard matches(recipient) else { return (.notMatched, ["recipient \(recipient) does not match \(pattern)"]) }
        var held = ["recipient matches \(pattern)"]
        var failed: [String] = []
        var unknown: [String] = []
        func record(_ result: Bool?, _ text: String) {
            switch result {
            case true?: held.append(text)
            case false?: failed.append(text)
            case nil: unknown.append(text)
            }
        }
        if let pattern = criteria.sender {
            if let sender = context.sender?.lowercased() {
                let shown = sender.isEmpty ? "<>" : sender
                let matched = pattern == "<>" ? sender.isEmpty : !sender.isEmpty && Self.matches(pattern: pattern, sender)
                record(matched, "sender \(shown) \(matched ? "matches" : "does not match") \(pattern)")
            } else {
                record(nil, "sender not known")
            }
        }
        switch (criteria.authenticated, criteria.networks.isEmpty) {
        case (false, _):
            if let user = context.authenticatedUser {
                record(false, "the session is authenticated (as \(user))")
            } else {
                record(true, "the session is not authenticated")
            }
        case (true, true):
            if let user = context.authenticatedUser {
                record(true, "authenticated as \(user)")
            } else {
                record(false, "the session is not authenticated")
            }
        case (let authenticated, false):
            if authenticated == true, let user = context.authenticatedUser {
                record(true, "authenticated as \(user)")
            } else {
                let prefix = authenticated == true ? "not authenticated, and " : ""
                let networks = criteria.networks.map(\.text).joined(separator: ", ")
                if let client = context.clientAddress {
                    if let network = criteria.networks.first(where: { $0.contains(client) }) {
                        record(true, "client \(client) is in \(network.text)")
                    } else {
                        record(false, "\(prefix)client \(client) is not in \(networks)")
                    }
                } else {
                    record(nil, "\(prefix)client address not known")
                }
            }
        case (nil, true):
            break
        }
        if let wanted = criteria.hasAttachments {
            if let has = context.hasAttachments {
                record(has == wanted, has ? "the message has attachments" : "the message has no attachments")
            } else {
                record(nil, "attachments not known until the message has arrived")
            }
        }
        if criteria.minSize != nil || criteria.maxSize != nil {
            if let size = context.size {
                if let min = criteria.minSize, size < min {
                    record(false, "size \(size) bytes is below \(min)")
                } else if let max = criteria.maxSize, size > max {
                    record(false, "size \(size) bytes is above \(max)")
                } else {
                    record(true, "size \(size) bytes is within bounds")
                }
            } else {
                record(nil, "size not known yet")
            }
        }
        if !failed.isEmpty { return (.notMatched, failed) }
        if !unknown.isEmpty { return (.undecided, held + unknown) }
        return (.matched, held)
    }
}
