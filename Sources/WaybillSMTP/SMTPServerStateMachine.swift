/// Limits of the SMTP service, each with its RFC or house default.
public struct SMTPConfiguration: Sendable {
    /// Announced in the greeting and in EHLO.
    public var hostname: String
    /// Announced with SIZE (RFC 1870); larger messages get `552 5.3.4`.
    public var maximumMessageSize: Int
    /// More recipients get `452 4.5.3` (RFC 5321 §4.5.3.1.8 asks servers to take at least 100).
    public var maximumRecipients: Int
    /// Command lines, CRLF included (RFC 5321 §4.5.3.1.4).
    public var maximumCommandLength: Int
    /// Errors in one session before it is closed with `421`: a client that only says nonsense.
    public var maximumErrors: Int

    public init(
        hostname: String = "localhost", maximumMessageSize: Int = 50 * 1024 * 1024, maximumRecipients: Int = 100,
        maximumCommandLength: Int = 512, maximumErrors: Int = 20
    ) {
        self.hostname = hostname
        self.maximumMessageSize = maximumMessageSize
        self.maximumRecipients = maximumRecipients
        self.maximumCommandLength = maximumCommandLength
        self.maximumErrors = maximumErrors
    }
}

/// What the routing rules say of one recipient, asked at RCPT time: Waybill is never an open relay.
public enum RecipientDecision: Sendable, Equatable {
    case accept
    /// Refused with `550 5.1.1` and this text.
    case refuse(String)
}

/// One message's envelope, handed to the spool when DATA ends.
public struct SMTPEnvelope: Sendable, Equatable, Codable {
    public var helo: String
    /// Empty for the null reverse-path `<>` (bounces and notices).
    public var sender: String
    public var recipients: [String]
    public var declaredSize: Int?

    public init(helo: String, sender: String, recipients: [String], declaredSize: Int?) {
        self.helo = helo
        self.sender = sender
        self.recipients = recipients
        self.declaredSize = declaredSize
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

/// The server side of RFC 5321 as a value type: lines in, actions out. The channel handler
/// performs the actions (write, start reading DATA, spool, close); nothing here touches a socket,
/// a file or a clock, so every path is tested directly (../shared/STYLE.md, "thin handler").
public struct SMTPServerStateMachine: Sendable {
    public enum Action: Sendable, Equatable {
        case reply(SMTPReply)
        /// Switch the connection to the DATA decoder; the `354` has been queued before this.
        case receiveData(SMTPEnvelope)
        /// Spool the message durably, then call `spooled(id:)` or `spoolFailed(_:)`.
        case spool(SMTPEnvelope)
        /// Close the connection after the replies before it are flushed.
        case close
    }

    private enum State: Sendable {
        case connected
        case greeted(helo: String?, extended: Bool)
        case mail(SMTPEnvelope)
        case data(SMTPEnvelope)
        case spooling(SMTPEnvelope)
        case closed
    }

    public let configuration: SMTPConfiguration
    private let recipientPolicy: @Sendable (String) -> RecipientDecision
    private var state = State.connected
    private var errors = 0

    public init(configuration: SMTPConfiguration, recipientPolicy: @escaping @Sendable (String) -> RecipientDecision) {
        self.configuration = configuration
        self.recipientPolicy = recipientPolicy
    }

    /// The greeting, once the connection is accepted (and the client has not spoken first).
    public mutating func connected() -> [Action] {
        state = .greeted(helo: nil, extended: false)
        return [.reply(SMTPReply(220, "\(configuration.hostname) ESMTP Waybill"))]
    }

    /// A client that spoke before the greeting (RFC 5321 §4.3.1 forbids it; spam engines do it).
    public mutating func earlyTalker() -> [Action] {
        state = .closed
        return [.reply(SMTPReply(554, "5.5.0 You talked before the greeting; goodbye")), .close]
    }

    /// A decoded command line, or a line the decoder refused.
    public mutating func received(_ event: SMTPLineDecoder.Event) -> [Action] {
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
        case (_, .closed), (_, .connected), (_, .data), (_, .spooling):
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
            return [
                .reply(
                    SMTPReply(
                        250,
                        lines: [
                            "\(configuration.hostname) Hello \(argument)", "SIZE \(configuration.maximumMessageSize)",
                            "PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES",
                        ]))
            ]
        case ("MAIL", .greeted(let helo, _)):
            guard let helo else { return error(SMTPReply(503, "5.5.1 Say EHLO first")) }
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
            switch recipientPolicy(address) {
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
        case .connected, .closed: nil
        }
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
        state = .mail(SMTPEnvelope(helo: helo, sender: sender, recipients: [], declaredSize: declaredSize))
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
