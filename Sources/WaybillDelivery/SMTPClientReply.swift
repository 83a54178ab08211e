/// One reply of an SMTP server: a three-digit code and the text of each of its lines
/// (RFC 5321 §4.2). `250-first` … `250 last` is one reply of several lines.
struct SMTPClientReply: Sendable, Equatable {
    var code: Int
    /// The text after `250-` / `250 ` on each line, without the CRLF.
    var lines: [String]

    /// `451 4.3.0 try later`: the code and the lines joined, as a person reads it in a log.
    var summary: String {
        let text = lines.filter { !$0.isEmpty }.joined(separator: " ")
        return text.isEmpty ? "\(code)" : "\(code) \(text)"
    }

    /// The lines joined, without the code: the queue id of a `250 2.0.0 Ok: queued as ABC`.
    var text: String { lines.joined(separator: " ") }

    var isPositiveCompletion: Bool { (200..<300).contains(code) }
}

/// Splits what a server sends into replies, value type, no I/O (its tests need no sockets).
///
/// Lenient where servers differ harmlessly (a bare LF ends a line too), strict where a broken or
/// hostile server could hurt us: a line longer than `maximumLineLength` or a reply longer than
/// `maximumReplyLength` is an error as soon as it is seen, not when it ends, so garbage without
/// line ends cannot make us buffer without bound; a line that does not start with three digits
/// (RFC 5321 §4.2: `2yz`-`5yz`, `1yz` unused in SMTP) or a multi-line reply whose lines disagree
/// on the code is an error too.
struct SMTPClientReplyParser: Sendable {
    struct Limits: Sendable, Hashable {
        /// RFC 5321 §4.5.3.1.5 says 512 octets with the CRLF; real servers send longer texts, so
        /// there is room, but not much.
        var maximumLineLength = 2_048
        /// A whole reply (an EHLO list is the longest in practice, well under 4 KB).
        var maximumReplyLength = 65_536

        init() {}
    }

    enum Failure: Error, Equatable, CustomStringConvertible {
        case lineTooLong(limit: Int)
        case replyTooLong(limit: Int)
        case malformed(String)

        var description: String {
            switch self {
            case .lineTooLong(let limit): "sent a reply line longer than \(limit) bytes"
            case .replyTooLong(let limit): "sent a reply longer than \(limit) bytes"
            case .malformed(let line): "sent a malformed reply line '\(line)'"
            }
        }
    }

    let limits: Limits
    private var line: [UInt8] = []
    private var pendingCode: Int?
    private var pendingLines: [String] = []
    private var pendingLength = 0

    init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// True when bytes of an unfinished reply are buffered (checked after the reply to STARTTLS:
    /// nothing may follow it in clear).
    var hasPendingBytes: Bool { !line.isEmpty || pendingCode != nil }

    /// Feeds bytes as they arrive; returns the replies they complete, in order.
    mutating func feed(_ bytes: some Sequence<UInt8>) throws(Failure) -> [SMTPClientReply] {
        var replies: [SMTPClientReply] = []
        for byte in bytes {
            guard byte == UInt8(ascii: "\n") else {
                line.append(byte)
                if line.count > limits.maximumLineLength { throw .lineTooLong(limit: limits.maximumLineLength) }
                continue
            }
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            defer { line.removeAll(keepingCapacity: true) }
            if let reply = try endLine() { replies.append(reply) }
        }
        return replies
    }

    private mutating func endLine() throws(Failure) -> SMTPClientReply? {
        let printable = String(decoding: line.prefix(80), as: UTF8.self)
        guard line.count >= 3,
            (UInt8(ascii: "2")...UInt8(ascii: "5")).contains(line[0]),
            line[1...2].allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) })
        else { throw .malformed(printable) }
        let code = Int(line[0] - UInt8(ascii: "0")) * 100 + Int(line[1] - UInt8(ascii: "0")) * 10
            + Int(line[2] - UInt8(ascii: "0"))
        let isLast: Bool
        switch line.count > 3 ? line[3] : UInt8(ascii: " ") {
        case UInt8(ascii: " "): isLast = true
        case UInt8(ascii: "-"): isLast = false
        default: throw .malformed(printable)
        }
        if let pendingCode, pendingCode != code { throw .malformed(printable) }
        pendingLength += line.count + 2
        if pendingLength > limits.maximumReplyLength { throw .replyTooLong(limit: limits.maximumReplyLength) }
        pendingCode = code
        pendingLines.append(String(decoding: line.dropFirst(4), as: UTF8.self))
        guard isLast else { return nil }
        defer {
            pendingCode = nil
            pendingLines = []
            pendingLength = 0
        }
        return SMTPClientReply(code: code, lines: pendingLines)
    }
}

/// What a server offers in its EHLO reply (RFC 5321 §4.1.1.1), the parts this client uses.
struct SMTPClientCapabilities: Sendable, Equatable {
    /// RFC 2920.
    var pipelining = false
    /// RFC 3207.
    var startTLS = false
    /// RFC 1870: nil when not offered; 0 when offered without a limit.
    var size: Int?
    /// RFC 4954 mechanisms, upper-cased.
    var authMechanisms: Set<String> = []
    /// RFC 6531.
    var smtpUTF8 = false

    init() {}

    /// From a 250 reply to EHLO: the first line is the server's name, each later one a keyword
    /// with parameters. Unknown keywords are ignored.
    init(ehlo reply: SMTPClientReply) {
        for line in reply.lines.dropFirst() {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "=" }).map { $0.uppercased() }
            guard let keyword = words.first else { continue }
            switch keyword {
            case "PIPELINING": pipelining = true
            case "STARTTLS": startTLS = true
            case "SIZE": size = words.count > 1 ? Int(words[1]) ?? 0 : 0
            // `AUTH=LOGIN PLAIN` is the pre-RFC spelling some servers still send beside `AUTH`.
            case "AUTH": authMechanisms.formUnion(words.dropFirst())
            case "SMTPUTF8": smtpUTF8 = true
            default: break
            }
        }
    }
}
