public import WaybillCore

/// What the routing rules say of one recipient, asked at RCPT time: Waybill is never an open relay.
public enum RecipientDecision: Sendable, Equatable {
    case accept
    /// Refused with `550 5.1.1` and this text.
    case refuse(String)
}

/// What the server knows when a client names a recipient (RCPT TO), for the routing rules.
public struct RecipientContext: Sendable, Hashable {
    public var recipient: String
    /// The MAIL FROM reverse-path; empty for the null sender `<>`.
    public var sender: String
    /// The SMTP AUTH user of the session, nil if it did not authenticate.
    public var authenticatedUser: String?
    /// The client's IP address as the listener saw it (`10.0.0.5`, `::1`, `::ffff:10.0.0.5`).
    public var clientAddress: String?
    /// What `MAIL FROM:<…> SIZE=` declared (RFC 1870): a client's claim, checked again at the worker.
    public var declaredSize: Int?

    public init(recipient: String, sender: String, authenticatedUser: String? = nil, clientAddress: String? = nil, declaredSize: Int? = nil) {
        self.recipient = recipient
        self.sender = sender
        self.authenticatedUser = authenticatedUser
        self.clientAddress = clientAddress
        self.declaredSize = declaredSize
    }
}

/// One message's envelope, handed to the spool when DATA ends.
public struct SMTPEnvelope: Sendable, Equatable, Codable {
    public var helo: String
    /// Empty for the null reverse-path `<>` (bounces and notices).
    public var sender: String
    public var recipients: [String]
    public var declaredSize: Int?
    /// The AUTH user of the session (RFC 4954), nil if the client did not authenticate.
    public var authenticatedUser: String?
    /// The client's IP address, for the routing rules' network criteria at the worker. nil in
    /// envelopes spooled before it was recorded (decoded as absent) and when the listener did not know it.
    public var clientAddress: String?

    public init(
        helo: String, sender: String, recipients: [String], declaredSize: Int?, authenticatedUser: String? = nil,
        clientAddress: String? = nil
    ) {
        self.helo = helo
        self.sender = sender
        self.recipients = recipients
        self.declaredSize = declaredSize
        self.authenticatedUser = authenticatedUser
        self.clientAddress = clientAddress
    }
}

/// A reply line group: `250-…` continuation lines and a final `250 …`.
public struct SMTPReply: Sendable, Equatable {
    public var code: Int
    public var lines: [String]

    public init(_ code: Int, _ lines: String...) {
        self.code = code
        self.lines = lines
    }

    public init(_ code: Int, lines: [String]) {
        self.code = code
        self.lines = lines
    }

    /// The bytes on the wire, CRLF-terminated.
    public var wire: [UInt8] {
        var text = ""
        for (index, line) in lines.enumerated() {
            text += "\(code)\(index == lines.count - 1 ? " " : "-")\(line)\r\n"
        }
        return Array(text.utf8)
    }
}

extension SMTPReply {
    /// The kind of refusal this reply is, for `waybill_smtp_refusals_total`; nil below 400.
    /// Told apart by the reply code and, where one code has several causes, the enhanced status
    /// code (RFC 3463) or text that this server writes with it.
    public var refusal: Metrics.SMTPRefusal? {
        let first = lines.first ?? ""
        let enhanced = first.prefix { $0 != " " }
        switch code {
        case ..<400: return nil
        case 421 where enhanced == "4.4.2": return .timeout
        case 421 where first.contains("Too many connections"): return .tooManyConnections
        case 421: return .tooManyErrors
        case 451: return .spoolFailed
        case 452: return .tooManyRecipients
        case 530, 538: return .authRequired
        case 535: return .authFailed
        case 550: return .recipientRefused
        case 552: return .tooLarge
        case 554 where enhanced == "5.5.0": return .earlyTalker
        default: return .syntax
        }
    }
}

/// The server side of RFC 5321 as a value type: lines in, actions out. The channel handler
/// performs the actions (write, start reading DATA, spool, start TLS, check a password, close);
/// nothing here touches a socket, a file or a clock, so every path is tested directly
/// (../shared/STYLE.md, "thin handler"). STARTTLS is RFC 3207, AUTH PLAIN and LOGIN RFC 4954.
public struct SMTPServerStateMachine: Sendable {
    public enum Action: Sendable, Equatable {
        case reply(SMTPReply)
        /// Switch the connection to the DATA decoder; the `354` has been queued before this.
        case receiveData(SMTPEnvelope)
        /// Spool the message durably, then call `spooled(id:)` or `spoolFailed(_:)`.
        case spool(SMTPEnvelope)
        /// Write this reply in clear, then start TLS; discard every byte received before the
        /// handshake (RFC 3207 §4.2; CVE-2011-0411), then call `tlsStarted()`.
        case startTLS(SMTPReply)
        /// Check the password off the event loop, then call `authenticationChecked(valid:)`.
        case authenticate(user: String, password: String)
        /// Close the connection after the replies before it are flushed.
        case close
    }

    private enum SASLStep: Sendable {
        case plain
        case loginUser
        case loginPassword(user: String)
        case verifying(user: String)
    }

    private enum State: Sendable {
        case connected
        case greeted(helo: String?, extended: Bool)
        case mail(SMTPEnvelope)
        case data(SMTPEnvelope)
        case spooling(SMTPEnvelope)
        case startingTLS
        case authenticating(helo: String, step: SASLStep)
        case closed
    }

    public let configuration: SMTPConfiguration
    private let recipientPolicy: @Sendable (RecipientContext) -> RecipientDecision
    /// The client's IP address, recorded in every envelope and given to the recipient policy.
    public let clientAddress: String?
    private var state = State.connected
    private var errors = 0
    private var authenticationFailures = 0
    /// True once TLS is up (after STARTTLS).
    public private(set) var isSecure = false
    /// Set by a successful AUTH; kept for the session, cleared by STARTTLS.
    public private(set) var authenticatedUser: String?
    /// True once the client has sent a complete line: a TLS ClientHello can only come before.
    public private(set) var hasReceivedCommand = false

    public init(
        configuration: SMTPConfiguration, clientAddress: String? = nil,
        recipientPolicy: @escaping @Sendable (RecipientContext) -> RecipientDecision
    ) {
        self.configuration = configuration
        self.clientAddress = clientAddress
        self.recipientPolicy = recipientPolicy
    }

    /// A policy that looks at the recipient address only.
    @_disfavoredOverload
    public init(
        configuration: SMTPConfiguration, clientAddress: String? = nil, recipientPolicy: @escaping @Sendable (String) -> RecipientDecision
    ) {
        self.init(configuration: configuration, clientAddress: clientAddress) { recipientPolicy($0.recipient) }
    }

    /// The greeting, once the connection is accepted (and the client has not spoken first).
    public mutating func connected() -> [Action] {
        state = .greeted(helo: nil, extended: false)
        return [.reply(Self.greeting(configuration))]
    }

    /// The `220` a connection opens with.
    static func greeting(_ configuration: SMTPConfiguration) -> SMTPReply {
        SMTPReply(220, "\(configuration.hostname) ESMTP Waybill")
    }

    /// A client that spoke before the greeting (RFC 5321 §4.3.1 forbids it; spam engines do it).
    public mutating func earlyTalker() -> [Action] {
        state = .closed
        return [.reply(SMTPReply(554, "5.5.0 You talked before the greeting; goodbye")), .close]
    }

    /// A decoded command line, or a line the decoder refused.
    public mutating func received(_ event: SMTPLineDecoder.Event) -> [Action] {
        hasReceivedCommand = true
        if case .authenticating(let helo, let step) = state {
            return saslResponse(event, helo: helo, step: step)
        }
        switch event {
        case .tooLong: return error(SMTPReply(500, "5.5.6 Line too long (at most \(configuration.maximumCommandLength - 2) octets)"))
        case .bareLineFeed: return error(SMTPReply(500, "5.5.2 Line ends must be CRLF, not a bare LF"))
        case .line(let bytes): return command(String(decoding: bytes, as: UTF8.self))
        }
    }

    /// The end of DATA: `size` octets were read. The channel holds back any pipelined input
    /// until `spooled` or `spoolFailed` answers; commands fed meanwhile are ignored.
    public mutating func dataEnded(size: Int) -> [Action] {
        guard case .data(let envelope) = state else { return [] }
        if size > configuration.maximumMessageSize {
            state = .greeted(helo: envelope.helo, extended: true)
            return error(SMTPReply(552, "5.3.4 Message too big: the limit is \(configuration.maximumMessageSize) octets"))
        }
        state = .spooling(envelope)
        return [.spool(envelope)]
    }

    /// The message is on disk and fsynced: only now does the client hear 250 (DESIGN.md, durability).
    public mutating func spooled(id: String) -> [Action] {
        guard case .spooling(let envelope) = state else { return [] }
        state = .greeted(helo: envelope.helo, extended: true)
        return [.reply(SMTPReply(250, "2.0.0 Ok: queued as \(id)"))]
    }

    public mutating func spoolFailed(_ reason: String) -> [Action] {
        guard case .spooling(let envelope) = state else { return [] }
        state = .greeted(helo: envelope.helo, extended: true)
        return [.reply(SMTPReply(451, "4.3.0 Could not store the message (\(reason)); please try again later"))]
    }

    /// TLS is up: the client starts again from EHLO, and nothing it said before counts
    /// (RFC 3207 §4.2).
    public mutating func tlsStarted() -> [Action] {
        guard case .startingTLS = state else { return [] }
        isSecure = true
        authenticatedUser = nil
        state = .greeted(helo: nil, extended: false)
        return []
    }

    /// The answer to `.authenticate`.
    public mutating func authenticationChecked(valid: Bool) -> [Action] {
        guard case .authenticating(let helo, .verifying(let user)) = state else { return [] }
        state = .greeted(helo: helo, extended: true)
        if valid {
            authenticatedUser = user
            return [.reply(SMTPReply(235, "2.7.0 Authentication successful"))]
        }
        authenticationFailures += 1
        let refused = SMTPReply(535, "5.7.8 Authentication credentials invalid")
        guard let maximum = configuration.authentication?.maximumFailures, authenticationFailures >= maximum else {
            return [.reply(refused)]
        }
        state = .closed
        return [.reply(refused), .reply(SMTPReply(421, "4.7.0 Too many failed authentication attempts; closing the connection")), .close]
    }

    /// Whether AUTH is offered now: configured, and over TLS unless plaintext is allowed.
    public var offersAuthentication: Bool {
        configuration.authentication != nil && (isSecure || configuration.allowPlaintextAuthentication)
    }

    public var isReceivingData: Bool {
        if case .data = state { return true }
        return false
    }

    private mutating func error(_ reply: SMTPReply) -> [Action] {
        errors += 1
        guard errors < configuration.maximumErrors else {
            state = .closed
            return [.reply(reply), .reply(SMTPReply(421, "4.7.0 Too many errors; closing the connection")), .close]
        }
        return [.reply(reply)]
    }

    private mutating func command(_ line: String) -> [Action] {
        let verb = line.prefix { $0 != " " }.uppercased()
        let argument = line.dropFirst(verb.count).drop { $0 == " " }
        switch (verb, state) {
        case (_, .closed), (_, .connected), (_, .data), (_, .spooling), (_, .startingTLS), (_, .authenticating):
            return []
        case ("QUIT", _):
            state = .closed
            return [.reply(SMTPReply(221, "2.0.0 Bye")), .close]
        case ("NOOP", _):
            return [.reply(SMTPReply(250, "2.0.0 Ok"))]
        case ("RSET", _):
            state = .greeted(helo: currentHelo, extended: true)
            return [.reply(SMTPReply(250, "2.0.0 Ok"))]
        case ("VRFY", _):
            // RFC 5321 §3.5.3: say neither yes nor no.
            return [.reply(SMTPReply(252, "2.5.2 Cannot verify the user; send the message and it will be routed"))]
        case ("HELP", _):
            return [.reply(SMTPReply(214, "2.0.0 Waybill accepts scans: EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT"))]
        case ("EHLO", _), ("HELO", _):
            guard !argument.isEmpty else { return error(SMTPReply(501, "5.5.4 \(verb) needs your host name")) }
            state = .greeted(helo: String(argument), extended: verb == "EHLO")
            if verb == "HELO" { return [.reply(SMTPReply(250, "\(configuration.hostname) Hello \(argument)"))] }
            var lines = [
                "\(configuration.hostname) Hello \(argument)", "SIZE \(configuration.maximumMessageSize)",
                "PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES",
            ]
            if configuration.tls != nil && !isSecure { lines.append("STARTTLS") }
            if offersAuthentication { lines.append("AUTH PLAIN LOGIN") }
            return [.reply(SMTPReply(250, lines: lines))]
        case ("STARTTLS", _) where configuration.tls != nil:
            return startTLS(argument)
        case ("AUTH", _) where configuration.authentication != nil:
            return auth(argument)
        case ("MAIL", .greeted(let helo, _)):
            guard let helo else { return error(SMTPReply(503, "5.5.1 Say EHLO first")) }
            if configuration.requireAuthentication && authenticatedUser == nil {
                return error(SMTPReply(530, "5.7.0 Authentication required"))
            }
            return mail(argument, helo: helo)
        case ("MAIL", _):
            return error(SMTPReply(503, "5.5.1 Nested MAIL command"))
        case ("RCPT", .mail(var envelope)):
            guard let (address, parameters) = Self.path(argument, prefix: "TO:"), !address.isEmpty else {
                return error(SMTPReply(501, "5.1.3 Syntax: RCPT TO:<address>"))
            }
            guard parameters.isEmpty else { return error(SMTPReply(555, "5.5.4 Unsupported RCPT parameters")) }
            guard envelope.recipients.count < configuration.maximumRecipients else {
                return [.reply(SMTPReply(452, "4.5.3 Too many recipients (at most \(configuration.maximumRecipients))"))]
            }
            let context = RecipientContext(
                recipient: address, sender: envelope.sender, authenticatedUser: envelope.authenticatedUser,
                clientAddress: clientAddress, declaredSize: envelope.declaredSize)
            switch recipientPolicy(context) {
            case .accept:
                envelope.recipients.append(address)
                state = .mail(envelope)
                return [.reply(SMTPReply(250, "2.1.5 Ok"))]
            case .refuse(let why):
                return error(SMTPReply(550, "5.1.1 <\(address)>: \(why)"))
            }
        case ("RCPT", _):
            return error(SMTPReply(503, "5.5.1 Need MAIL before RCPT"))
        case ("DATA", .mail(let envelope)):
            guard argument.isEmpty else { return error(SMTPReply(501, "5.5.4 DATA takes no arguments")) }
            guard !envelope.recipients.isEmpty else { return error(SMTPReply(554, "5.5.1 No valid recipients")) }
            state = .data(envelope)
            return [.reply(SMTPReply(354, "End data with <CR><LF>.<CR><LF>")), .receiveData(envelope)]
        case ("DATA", _):
            return error(SMTPReply(503, "5.5.1 Need RCPT before DATA"))
        case ("STARTTLS", _), ("AUTH", _), ("BDAT", _), ("ETRN", _), ("EXPN", _), ("TURN", _):
            return error(SMTPReply(502, "5.5.1 \(verb) is not available"))
        default:
            return error(SMTPReply(500, "5.5.2 Unknown command"))
        }
    }

    private var currentHelo: String? {
        switch state {
        case .greeted(let helo, _): helo
        case .mail(let envelope), .data(let envelope), .spooling(let envelope): envelope.helo
        case .authenticating(let helo, _): helo
        case .connected, .closed, .startingTLS: nil
        }
    }

    private mutating func startTLS(_ argument: Substring) -> [Action] {
        guard argument.isEmpty else { return error(SMTPReply(501, "5.5.4 STARTTLS takes no arguments")) }
        guard !isSecure else { return error(SMTPReply(503, "5.5.1 TLS is already active")) }
        guard case .greeted = state else {
            return error(SMTPReply(503, "5.5.1 STARTTLS is not allowed inside a mail transaction"))
        }
        state = .startingTLS
        return [.startTLS(SMTPReply(220, "2.0.0 Ready to start TLS"))]
    }

    /// `AUTH mechanism [initial-response]` (RFC 4954 §4).
    private mutating func auth(_ argument: Substring) -> [Action] {
        guard case .greeted(let helo, _) = state else {
            return error(SMTPReply(503, "5.5.1 AUTH is not allowed inside a mail transaction"))
        }
        guard let helo else { return error(SMTPReply(503, "5.5.1 Say EHLO first")) }
        guard offersAuthentication else {
            return error(SMTPReply(538, "5.7.11 Encryption required for requested authentication mechanism; use STARTTLS"))
        }
        guard authenticatedUser == nil else { return error(SMTPReply(503, "5.5.1 Already authenticated")) }
        let words = argument.split(separator: " ")
        guard words.count == 1 || words.count == 2 else { return error(SMTPReply(501, "5.5.4 Syntax: AUTH mechanism [response]")) }
        let initial = words.count == 2 ? words[1] : nil
        switch words[0].uppercased() {
        case "PLAIN":
            state = .authenticating(helo: helo, step: .plain)
            // "=" is an empty initial response (RFC 4954 §4); without one, ask with an empty 334.
            guard let initial else { return [.reply(SMTPReply(334, ""))] }
            return saslResponse(.line(Array(initial.utf8)), helo: helo, step: .plain)
        case "LOGIN":
            state = .authenticating(helo: helo, step: .loginUser)
            guard let initial else { return [.reply(SMTPReply(334, "VXNlcm5hbWU6"))] }  // "Username:"
            return saslResponse(.line(Array(initial.utf8)), helo: helo, step: .loginUser)
        default:
            return error(SMTPReply(504, "5.5.4 Unrecognized authentication type; use PLAIN or LOGIN"))
        }
    }

    /// A line answering a 334 challenge: base64, or `*` to cancel.
    private mutating func saslResponse(_ event: SMTPLineDecoder.Event, helo: String, step: SASLStep) -> [Action] {
        if case .verifying = step { return [] }
        state = .greeted(helo: helo, extended: true)
        guard case .line(let bytes) = event else { return error(SMTPReply(500, "5.5.6 Authentication line too long or malformed")) }
        let text = String(decoding: bytes, as: UTF8.self)
        if text == "*" { return error(SMTPReply(501, "5.0.0 Authentication cancelled")) }
        guard let decoded = text == "=" ? [] : Self.base64(text) else {
            return error(SMTPReply(501, "5.5.2 Cannot decode the response (base64 expected)"))
        }
        switch step {
        case .plain:
            // authzid NUL authcid NUL passwd (RFC 4616); an authzid other than the user is refused.
            let parts = decoded.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { return error(SMTPReply(501, "5.5.2 Malformed PLAIN response")) }
            let authzid = String(decoding: parts[0], as: UTF8.self)
            let user = String(decoding: parts[1], as: UTF8.self)
            guard authzid.isEmpty || authzid == user else {
                state = .authenticating(helo: helo, step: .verifying(user: user))
                return authenticationChecked(valid: false)
            }
            state = .authenticating(helo: helo, step: .verifying(user: user))
            return [.authenticate(user: user, password: String(decoding: parts[2], as: UTF8.self))]
        case .loginUser:
            state = .authenticating(helo: helo, step: .loginPassword(user: String(decoding: decoded, as: UTF8.self)))
            return [.reply(SMTPReply(334, "UGFzc3dvcmQ6"))]  // "Password:"
        case .loginPassword(let user):
            state = .authenticating(helo: helo, step: .verifying(user: user))
            return [.authenticate(user: user, password: String(decoding: decoded, as: UTF8.self))]
        case .verifying:
            return []
        }
    }

    /// Strict base64 (RFC 4648 §4, padding required): nil for anything else.
    public static func base64(_ text: String) -> [UInt8]? {
        let bytes = Array(text.utf8)
        guard bytes.count % 4 == 0 else { return nil }
        func value(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): byte - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): byte - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0") + 52
            case UInt8(ascii: "+"): 62
            case UInt8(ascii: "/"): 63
            default: nil
            }
        }
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count / 4 * 3)
        var index = 0
        while index < bytes.count {
            let last = index + 4 == bytes.count
            let padding = last ? bytes[index..<index + 4].reversed().prefix { $0 == UInt8(ascii: "=") }.count : 0
            guard padding <= 2 else { return nil }
            var quad: UInt32 = 0
            for offset in 0..<4 {
                let byte = bytes[index + offset]
                let sextet: UInt8
                if offset >= 4 - padding {
                    sextet = 0
                } else if let decoded = value(byte) {
                    sextet = decoded
                } else {
                    return nil
                }
                quad = quad << 6 | UInt32(sextet)
            }
            output.append(UInt8(quad >> 16 & 0xFF))
            if padding < 2 { output.append(UInt8(quad >> 8 & 0xFF)) }
            if padding < 1 { output.append(UInt8(quad & 0xFF)) }
            index += 4
        }
        return output
    }

    private mutating func mail(_ argument: Substring, helo: String) -> [Action] {
        guard let (sender, parameters) = Self.path(argument, prefix: "FROM:") else {
            return error(SMTPReply(501, "5.1.7 Syntax: MAIL FROM:<address>"))
        }
        var declaredSize: Int?
        for parameter in parameters {
            let parts = parameter.split(separator: "=", maxSplits: 1).map(String.init)
            switch parts[0].uppercased() {
            case "SIZE":
                guard parts.count == 2, let size = Int(parts[1]), size >= 0 else {
                    return error(SMTPReply(501, "5.5.4 SIZE needs a number"))
                }
                guard size <= configuration.maximumMessageSize else {
                    return error(SMTPReply(552, "5.3.4 Message too big: the limit is \(configuration.maximumMessageSize) octets"))
                }
                declaredSize = size
            case "BODY":
                guard parts.count == 2, ["7BIT", "8BITMIME"].contains(parts[1].uppercased()) else {
                    return error(SMTPReply(555, "5.5.4 BODY must be 7BIT or 8BITMIME"))
                }
            default:
                return error(SMTPReply(555, "5.5.4 Unsupported MAIL parameter \(parts[0])"))
            }
        }
        state = .mail(
            SMTPEnvelope(
                helo: helo, sender: sender, recipients: [], declaredSize: declaredSize, authenticatedUser: authenticatedUser,
                clientAddress: clientAddress))
        return [.reply(SMTPReply(250, "2.1.0 Ok"))]
    }

    /// `FROM:<a@b> SIZE=1` → ("a@b", ["SIZE=1"]). Lenient about a space after the colon and a
    /// missing pair of angle brackets, as old scanners send them.
    static func path(_ argument: Substring, prefix: String) -> (String, [String])? {
        guard argument.uppercased().hasPrefix(prefix) else { return nil }
        let rest = argument.dropFirst(prefix.count).drop { $0 == " " }
        let address: Substring
        let tail: Substring
        if rest.hasPrefix("<") {
            guard let close = rest.firstIndex(of: ">") else { return nil }
            address = rest[rest.index(after: rest.startIndex)..<close]
            tail = rest[rest.index(after: close)...]
        } else {
            address = rest.prefix { $0 != " " }
            tail = rest.dropFirst(address.count)
        }
        guard !address.contains(where: { $0 == " " || $0 == "<" || $0 == ">" }) else { return nil }
        return (String(address), tail.split(separator: " ").map(String.init))
    }
}
