public import Foundation
public import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// What one delivery through the smarthost achieved.
public struct SMTPSendResult: Sendable {
    /// The recipients the server took responsibility for.
    public var accepted: [String]
    /// The recipients it refused at RCPT, each with the reason (temporary for a 4xx: retry them).
    public var refused: [String: DeliveryFailure]
    /// The text of the final 250 without the code: `2.0.0 Ok: queued as ABC`.
    public var reply: String

    public init(accepted: [String], refused: [String: DeliveryFailure], reply: String) {
        self.accepted = accepted
        self.refused = refused
        self.reply = reply
    }
}

/// Sends messages through a smarthost, one SMTP session per message (RFC 5321, with STARTTLS
/// RFC 3207, AUTH RFC 4954, PIPELINING RFC 2920, SIZE RFC 1870).
///
/// Every failure is a `DeliveryFailure`: temporary for 4xx replies, timeouts, lost connections,
/// TLS failures and anything else that may go away; permanent for 5xx replies and messages or
/// addresses that can never be sent. Credentials never leave over an unencrypted connection
/// unless the smarthost is `.none`, and never appear in logs.
public struct SMTPClient: Sendable {
    public let smarthost: Smarthost
    public let logger: Logger
    /// How much of the message file is read and sent at a time.
    var chunkSize = 65_536
    var replyLimits = SMTPClientReplyParser.Limits()

    public init(smarthost: Smarthost, logger: Logger = Logger(label: "waybill.smtp-client")) {
        self.smarthost = smarthost
        var logger = logger
        logger[metadataKey: "smarthost"] = "\(smarthost.host):\(smarthost.port)"
        self.logger = logger
    }

    /// One session: connect, EHLO (HELO if EHLO is refused), STARTTLS when `.starttls`, AUTH when
    /// there are credentials, MAIL FROM (`<>` for an empty `from`), RCPT TO each recipient, DATA
    /// with `message` (a complete RFC 5322 message; bare LFs become CRLF, dots are doubled),
    /// QUIT.
    ///
    /// Returns when the server has taken the message for at least one recipient; throws
    /// `DeliveryFailure` when it has taken it for none.
    public func send(from: String, to recipients: [String], message: URL) async throws -> SMTPSendResult {
        do {
            let result = try await deliver(from: from, to: recipients, message: message)
            logger.debug(
                "sent", metadata: ["accepted": "\(result.accepted.count)", "refused": "\(result.refused.count)",
                                   "reply": "\(result.reply)"])
            return result
        } catch {
            logger.debug("not sent", metadata: ["failure": "\(error)"])
            throw error
        }
    }

    private func deliver(from: String, to recipients: [String], message: URL) async throws(DeliveryFailure)
        -> SMTPSendResult
    {
        try Self.check(address: from, allowEmpty: true)
        guard !recipients.isEmpty else { throw .permanent("no recipients to send to") }
        for recipient in recipients { try Self.check(address: recipient, allowEmpty: false) }

        let file: FileHandle
        let size: Int
        do {
            file = try FileHandle(forReadingFrom: message)
            size = Int(try file.seekToEnd())
            try file.seek(toOffset: 0)
        } catch {
            throw .permanent("cannot read the message \(message.path): \(error.localizedDescription)")
        }
        defer { try? file.close() }

        let tlsContext: NIOSSLContext?
        do {
            tlsContext = smarthost.security == .none ? nil : try makeTLSContext()
        } catch {
            throw .temporary("cannot set up TLS for \(smarthost.host): \(error)")
        }
        let connection: SMTPClientConnection
        do {
            connection = try await SMTPClientConnection.connect(
                host: smarthost.host, port: smarthost.port, tls: smarthost.security == .tls ? tlsContext : nil,
                serverHostname: serverHostname, replyLimits: replyLimits, timeout: smarthost.connectTimeout)
        } catch {
            throw Self.failure(error, host: smarthost.host, during: "connecting to port \(smarthost.port)")
        }
        logger.debug("connected")

        var session = SMTPClientSession(
            smarthost: smarthost, connection: connection, tlsContext: tlsContext, serverHostname: serverHostname,
            logger: logger, chunkSize: chunkSize)
        let result = await withTaskCancellationHandler {
            let result: Result<SMTPSendResult, DeliveryFailure>
            do throws(DeliveryFailure) {
                result = .success(try await session.run(from: from, to: recipients, file: file, size: size))
            } catch {
                result = .failure(error)
            }
            await session.quit()
            return result
        } onCancel: {
            connection.closeNow()
        }
        return try result.get()
    }

    /// The name for SNI and for checking the certificate; nil for an address, whose certificate
    /// NIOSSL checks against the address connected to.
    private var serverHostname: String? {
        (try? SocketAddress(ipAddress: smarthost.host, port: 0)) == nil ? smarthost.host : nil
    }

    private func makeTLSContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let trustRoots = smarthost.trustRoots { configuration.trustRoots = .file(trustRoots) }
        if !smarthost.verifyHostname { configuration.certificateVerification = .noHostnameVerification }
        return try NIOSSLContext(configuration: configuration)
    }

    /// Refuses what would break the command line it goes in (CR, LF, other controls, `<>`): an
    /// address is the one thing from outside that we put into SMTP commands.
    static func check(address: String, allowEmpty: Bool) throws(DeliveryFailure) {
        guard allowEmpty || !address.isEmpty else { throw .permanent("an empty recipient address") }
        for scalar in address.unicodeScalars
        where scalar.value < 0x21 || scalar.value == 0x7F || scalar == "<" || scalar == ">" {
            throw .permanent("the address '\(address.debugDescription.dropFirst().dropLast())' cannot be sent in SMTP")
        }
    }

    static func failure(_ error: SMTPClientConnectionError, host: String, during what: String) -> DeliveryFailure {
        switch error {
        case .cannotConnect(let error): .temporary("cannot connect to \(host): \(error)")
        case .timedOut: .temporary("\(host) timed out \(what)")
        case .closed: .temporary("\(host) closed the connection \(what)")
        case .badReply(let failure): .temporary("\(host) \(failure) \(what)")
        case .tls(let error): .temporary("TLS with \(host) failed: \(error)")
        case .plaintextAfterSTARTTLS: .temporary("\(host) sent data in clear after its reply to STARTTLS")
        case .io(let error): .temporary("\(host): \(error) \(what)")
        }
    }
}

/// The dialog of one session, over one connection. Not a state machine of its own: the order of
/// commands is fixed, so it reads best as the sequence it is; the parsing, the encoding of the
/// message and the connection's waits are the separate, tested parts.
struct SMTPClientSession {
    let smarthost: Smarthost
    let connection: SMTPClientConnection
    let tlsContext: NIOSSLContext?
    let serverHostname: String?
    let logger: Logger
    let chunkSize: Int
    private(set) var capabilities = SMTPClientCapabilities()
    private(set) var encrypted = false
    /// Set once the connection has failed: then there is no point in a QUIT.
    private var broken = false

    init(
        smarthost: Smarthost, connection: SMTPClientConnection, tlsContext: NIOSSLContext?, serverHostname: String?,
        logger: Logger, chunkSize: Int
    ) {
        self.smarthost = smarthost
        self.connection = connection
        self.tlsContext = tlsContext
        self.serverHostname = serverHostname
        self.logger = logger
        self.chunkSize = chunkSize
        self.encrypted = smarthost.security == .tls
    }

    private var host: String { smarthost.host }

    mutating func run(from: String, to recipients: [String], file: FileHandle, size: Int)
        async throws(DeliveryFailure) -> SMTPSendResult
    {
        let greeting = try await read(waitingFor: "the greeting")
        try expect(greeting, 220, inReplyTo: "the connection")
        try await hello()
        if smarthost.security == .starttls {
            guard capabilities.startTLS else {
                throw .temporary("\(host) does not offer STARTTLS, which this smarthost requires")
            }
            try expect(try await command("STARTTLS"), 220, inReplyTo: "STARTTLS")
            guard let tlsContext else { throw .temporary("no TLS configuration for \(host)") }
            do {
                try await connection.startTLS(context: tlsContext, serverHostname: serverHostname)
            } catch {
                broken = true
                throw SMTPClient.failure(error, host: host, during: "after STARTTLS")
            }
            encrypted = true
            // RFC 3207 §4.2: forget what was learnt in clear, ask again.
            try await hello()
        }
        if let username = smarthost.username, let password = smarthost.password {
            try await authenticate(username: username, password: password)
        }
        return try await transaction(from: from, to: recipients, file: file, size: size)
    }

    /// EHLO, or HELO if the server refuses EHLO with a 5xx (RFC 5321 §4.1.4: a server that knows
    /// no extensions).
    private mutating func hello() async throws(DeliveryFailure) {
        let reply = try await command("EHLO \(smarthost.heloName)")
        if reply.isPositiveCompletion {
            capabilities = SMTPClientCapabilities(ehlo: reply)
            return
        }
        guard reply.code / 100 == 5 else { throw failure(reply, inReplyTo: "EHLO") }
        try expect(try await command("HELO \(smarthost.heloName)"), 250, inReplyTo: "HELO")
        capabilities = SMTPClientCapabilities()
    }

    /// AUTH PLAIN if offered, else LOGIN (RFC 4954; LOGIN is the old draft many servers keep).
    private mutating func authenticate(username: String, password: String) async throws(DeliveryFailure) {
        guard encrypted || smarthost.security == .none else {
            throw .temporary("refusing to send credentials to \(host) over an unencrypted connection")
        }
        func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
        if capabilities.authMechanisms.contains("PLAIN") {
            let credentials = base64("\0\(username)\0\(password)")
            var reply = try await command("AUTH PLAIN \(credentials)", logged: "AUTH PLAIN <credentials>")
            // A server that ignores the initial response asks for it with an empty 334.
            if reply.code == 334 { reply = try await command(credentials, logged: "<credentials>") }
            try expect(reply, 235, inReplyTo: "AUTH PLAIN")
        } else if capabilities.authMechanisms.contains("LOGIN") {
            try expect(try await command("AUTH LOGIN"), 334, inReplyTo: "AUTH LOGIN")
            try expect(try await command(base64(username), logged: "<user name>"), 334, inReplyTo: "AUTH LOGIN")
            try expect(try await command(base64(password), logged: "<password>"), 235, inReplyTo: "AUTH LOGIN")
        } else {
            let offered = capabilities.authMechanisms.sorted().joined(separator: " ")
            throw .temporary(
                "\(host) offers no AUTH mechanism this client has (PLAIN, LOGIN); it offers '\(offered)'")
        }
        logger.debug("authenticated", metadata: ["user": "\(username)"])
    }

    private mutating func transaction(from: String, to recipients: [String], file: FileHandle, size: Int)
        async throws(DeliveryFailure) -> SMTPSendResult
    {
        var parameters = ""
        if let limit = capabilities.size {
            if limit > 0 && size > limit {
                throw .permanent("the message (\(size) bytes) is larger than \(host) accepts (\(limit) bytes)")
            }
            parameters += " SIZE=\(size)"
        }
        if !(from + recipients.joined()).utf8.allSatisfy({ $0 < 0x80 }) {
            guard capabilities.smtpUTF8 else {
                throw .permanent("\(host) does not offer SMTPUTF8, which the non-ASCII addresses need")
            }
            parameters += " SMTPUTF8"
        }
        let mail = "MAIL FROM:<\(from)>\(parameters)"
        let rcpts = recipients.map { "RCPT TO:<\($0)>" }

        let mailReply: SMTPClientReply
        var rcptReplies: [SMTPClientReply] = []
        let dataReply: SMTPClientReply?
        if capabilities.pipelining {
            // RFC 2920 §3.1: MAIL, the RCPTs and DATA in one write; the replies come in order.
            let commands = [mail] + rcpts + ["DATA"]
            logger.trace("pipelining", metadata: ["commands": "\(commands)"])
            try await write(Array(commands.map { $0 + "\r\n" }.joined().utf8), during: "sending MAIL FROM")
            mailReply = try await read(waitingFor: "the reply to MAIL FROM")
            for rcpt in rcpts { rcptReplies.append(try await read(waitingFor: "the reply to \(rcpt)")) }
            dataReply = try await read(waitingFor: "the reply to DATA")
        } else {
            mailReply = try await command(mail)
            guard mailReply.isPositiveCompletion else { throw failure(mailReply, inReplyTo: "MAIL FROM:<\(from)>") }
            for rcpt in rcpts { rcptReplies.append(try await command(rcpt)) }
            dataReply = rcptReplies.contains(where: \.isPositiveCompletion) ? try await command("DATA") : nil
        }

        var accepted: [String] = []
        var refused: [String: DeliveryFailure] = [:]
        for (recipient, reply) in zip(recipients, rcptReplies) {
            if reply.isPositiveCompletion {
                accepted.append(recipient)
            } else {
                refused[recipient] = failure(reply, inReplyTo: "RCPT TO:<\(recipient)>")
            }
        }
        guard mailReply.isPositiveCompletion, !accepted.isEmpty, let dataReply, dataReply.code == 354 else {
            // A server that said 354 all the same waits for a message: give it an empty one
            // (RFC 2920 §3.1), then forget whatever it says.
            if dataReply?.code == 354 {
                try await write(Array(".\r\n".utf8), during: "ending an empty message")
                _ = try await read(waitingFor: "the reply to an empty message")
            }
            if !mailReply.isPositiveCompletion { throw failure(mailReply, inReplyTo: "MAIL FROM:<\(from)>") }
            if accepted.isEmpty { throw Self.allRefused(refused, recipients: recipients) }
            throw failure(dataReply ?? mailReply, inReplyTo: "DATA")
        }

        try await sendMessage(file)
        let final = try await read(waitingFor: "the reply to the end of the message", timeout: smarthost.dataTimeout)
        guard final.isPositiveCompletion else { throw failure(final, inReplyTo: "the end of the message") }
        return SMTPSendResult(accepted: accepted, refused: refused, reply: final.text)
    }

    /// Streams the file, `chunkSize` bytes at a time, read off the cooperative pool.
    private mutating func sendMessage(_ file: FileHandle) async throws(DeliveryFailure) {
        var encoder = SMTPClientDataEncoder()
        var output: [UInt8] = []
        output.reserveCapacity(chunkSize * 2 + 8)
        var sent = 0
        while true {
            let chunk: Data
            do {
                let chunkSize = self.chunkSize
                chunk = try await NIOThreadPool.singleton.runIfActive { try file.read(upToCount: chunkSize) ?? Data() }
            } catch {
                throw .temporary("cannot read the message: \(error)")
            }
            output.removeAll(keepingCapacity: true)
            if chunk.isEmpty {
                encoder.finish(into: &output)
            } else {
                encoder.encode(chunk, into: &output)
            }
            try await write(output, during: "sending the message")
            sent += output.count
            if chunk.isEmpty { break }
        }
        logger.trace("message sent", metadata: ["bytes": "\(sent)"])
    }

    static func allRefused(_ refused: [String: DeliveryFailure], recipients: [String]) -> DeliveryFailure {
        let failures = recipients.compactMap { refused[$0] }
        if failures.count == 1 { return failures[0] }
        let kind: DeliveryFailure.Kind = failures.allSatisfy { $0.kind == .permanent } ? .permanent : .temporary
        let reasons = recipients.compactMap { recipient in refused[recipient].map { "\(recipient): \($0.message)" } }
        return DeliveryFailure(kind, "all \(recipients.count) recipients refused: " + reasons.joined(separator: "; "))
    }

    /// QUIT and close; a failed or silent QUIT changes nothing (the message is sent or not).
    mutating func quit() async {
        if !broken {
            let quitTimeout = min(smarthost.commandTimeout, .seconds(10))
            if (try? await connection.write(Array("QUIT\r\n".utf8), timeout: quitTimeout)) != nil {
                _ = try? await connection.readReply(timeout: quitTimeout)
            }
        }
        await connection.close()
    }

    // MARK: - Commands and replies

    private mutating func command(_ line: String, logged: String? = nil) async throws(DeliveryFailure)
        -> SMTPClientReply
    {
        let shown = logged ?? line
        logger.trace("C: \(shown)")
        try await write(Array((line + "\r\n").utf8), during: "sending \(shown)")
        // Name the command in messages, but never the arguments of AUTH.
        let name = logged == nil ? line : shown
        return try await read(waitingFor: "the reply to \(name)")
    }

    private mutating func write(_ bytes: [UInt8], during what: String) async throws(DeliveryFailure) {
        do {
            try await connection.write(bytes, timeout: smarthost.commandTimeout)
        } catch {
            broken = true
            throw SMTPClient.failure(error, host: host, during: what)
        }
    }

    private mutating func read(waitingFor what: String, timeout: Duration? = nil) async throws(DeliveryFailure)
        -> SMTPClientReply
    {
        do {
            let reply = try await connection.readReply(timeout: timeout ?? smarthost.commandTimeout)
            logger.trace("S: \(reply.summary)")
            return reply
        } catch {
            broken = true
            throw SMTPClient.failure(error, host: host, during: "waiting for \(what)")
        }
    }

    private func expect(_ reply: SMTPClientReply, _ code: Int, inReplyTo what: String) throws(DeliveryFailure) {
        guard reply.code == code else { throw failure(reply, inReplyTo: what) }
    }

    /// RFC 5321 §4.2.1: 5yz is permanent, everything else unexpected (4yz, and a 2yz or 3yz where
    /// another was due) is worth another try.
    private func failure(_ reply: SMTPClientReply, inReplyTo what: String) -> DeliveryFailure {
        DeliveryFailure(
            reply.code / 100 == 5 ? .permanent : .temporary, "\(host) said \(reply.summary) (in reply to \(what))")
    }
}
