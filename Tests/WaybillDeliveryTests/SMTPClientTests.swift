import Dispatch
import Foundation
import Testing
import WaybillCore
@testable import WaybillDelivery

// MARK: - The parts without sockets

@Suite struct SMTPClientReplyParserTests {
    @Test func singleAndMultiLineRepliesAcrossReads() throws {
        var parser = SMTPClientReplyParser()
        #expect(try parser.feed(Array("220 smarthost.test ESMTP\r\n250-smart".utf8)) == [
            SMTPClientReply(code: 220, lines: ["smarthost.test ESMTP"])
        ])
        #expect(parser.hasPendingBytes)
        #expect(try parser.feed(Array("host.test\r\n250-PIPELINING\r\n250 SIZE 1000\r\n".utf8)) == [
            SMTPClientReply(code: 250, lines: ["smarthost.test", "PIPELINING", "SIZE 1000"])
        ])
        #expect(!parser.hasPendingBytes)
        // A bare LF ends a line too; a code alone is a reply.
        #expect(try parser.feed(Array("354\n".utf8)) == [SMTPClientReply(code: 354, lines: [""])])
    }

    @Test func pipelinedRepliesInOneRead() throws {
        var parser = SMTPClientReplyParser()
        let replies = try parser.feed(Array("250 2.1.0 Ok\r\n550 5.1.1 no such user\r\n354 go ahead\r\n".utf8))
        #expect(replies.map(\.code) == [250, 550, 354])
        #expect(replies[1].summary == "550 5.1.1 no such user")
    }

    @Test(arguments: ["hello there\r\n", "25 short\r\n", "250x no separator\r\n", "099 low\r\n", "650 high\r\n"])
    func garbageIsMalformed(_ text: String) {
        var parser = SMTPClientReplyParser()
        #expect(throws: SMTPClientReplyParser.Failure.self) { try parser.feed(Array(text.utf8)) }
    }

    @Test func linesOfOneReplyMustAgreeOnTheCode() {
        var parser = SMTPClientReplyParser()
        #expect(throws: SMTPClientReplyParser.Failure.self) { try parser.feed(Array("250-a\r\n220 b\r\n".utf8)) }
    }

    @Test func endlessLineFailsAtTheLimitNotAtTheEnd() {
        var parser = SMTPClientReplyParser()
        let megabyte = [UInt8](repeating: UInt8(ascii: "x"), count: 1 << 20)
        #expect(throws: SMTPClientReplyParser.Failure.lineTooLong(limit: 2_048)) { try parser.feed(megabyte) }
    }

    @Test func endlessMultiLineReplyFailsAtTheLimit() {
        var parser = SMTPClientReplyParser()
        let line = Array(("250-" + String(repeating: "y", count: 200) + "\r\n").utf8)
        #expect(throws: SMTPClientReplyParser.Failure.replyTooLong(limit: 65_536)) {
            for _ in 0..<1_000 { _ = try parser.feed(line) }
        }
    }

    @Test func capabilitiesFromEHLO() {
        let reply = SMTPClientReply(
            code: 250,
            lines: ["smarthost.test", "PIPELINING", "SIZE 10240000", "STARTTLS", "AUTH LOGIN PLAIN", "AUTH=CRAM-MD5",
                    "8BITMIME", "SMTPUTF8"])
        let capabilities = SMTPClientCapabilities(ehlo: reply)
        #expect(capabilities.pipelining && capabilities.startTLS && capabilities.smtpUTF8)
        #expect(capabilities.size == 10_240_000)
        #expect(capabilities.authMechanisms == ["LOGIN", "PLAIN", "CRAM-MD5"])
        #expect(SMTPClientCapabilities(ehlo: SMTPClientReply(code: 250, lines: ["x", "SIZE"])).size == 0)
        #expect(SMTPClientCapabilities(ehlo: SMTPClientReply(code: 250, lines: ["x"])) == SMTPClientCapabilities())
    }
}

@Suite struct SMTPClientDataEncoderTests {
    func encode(_ chunks: [String]) -> String {
        var encoder = SMTPClientDataEncoder()
        var output: [UInt8] = []
        for chunk in chunks { encoder.encode(Array(chunk.utf8), into: &output) }
        encoder.finish(into: &output)
        return String(decoding: output, as: UTF8.self)
    }

    @Test func dotsAreDoubledAtLineStartsOnly() {
        #expect(encode([".a\r\nb.c\r\n.\r\n..d\r\n"]) == "..a\r\nb.c\r\n..\r\n...d\r\n.\r\n")
        #expect(encode([".first"]) == "..first\r\n.\r\n")
    }

    @Test func bareLineEndsBecomeCRLF() {
        #expect(encode(["a\nb\rc\r\nd"]) == "a\r\nb\r\nc\r\nd\r\n.\r\n")
        #expect(encode(["a\r\r\nb"]) == "a\r\n\r\nb\r\n.\r\n")
    }

    @Test func lineEndsAndDotsSplitAcrossChunks() {
        #expect(encode(["a\r", "\n.b\r", "", "\n", ".", "c\n"]) == "a\r\n..b\r\n..c\r\n.\r\n")
        #expect(encode(["x\r"]) == "x\r\n.\r\n")
    }

    @Test func emptyMessageAndFinalLineEnd() {
        #expect(encode([]) == ".\r\n")
        #expect(encode(["a\r\n"]) == "a\r\n.\r\n")
    }
}

@Suite struct SMTPClientSmarthostTests {
    @Test func parsing() throws {
        let implicit = try Smarthost(parsing: "smtp.example.com:465", heloName: "waybill.example.com")
        #expect(implicit.host == "smtp.example.com" && implicit.port == 465 && implicit.security == .tls)
        let submission = try Smarthost(parsing: " mail.example.net:587 ", heloName: "w")
        #expect(submission.port == 587 && submission.security == .starttls)
        #expect(try Smarthost(parsing: "mail.example.net", heloName: "w").port == 587)
        #expect(try Smarthost(parsing: "mail.example.net", security: .tls, heloName: "w").port == 465)
        let relay = try Smarthost(parsing: "[::1]:2525", security: Smarthost.Security.none, heloName: "w")
        #expect(relay.host == "::1" && relay.port == 2525 && relay.security == .none)
        #expect(relay.description == "[::1]:2525 (none)")
    }

    @Test(arguments: ["", ":25", "host:", "host:x", "host:0", "host:70000", "::1:25", "[::1", "[::1]x", "a b:25"])
    func badSmarthosts(_ text: String) {
        #expect(throws: WaybillError.self) { try Smarthost(parsing: text, heloName: "w") }
    }

    @Test func credentialsComeInPairsAndThePasswordIsNeverShown() throws {
        #expect(throws: WaybillError.self) { try Smarthost(parsing: "h:25", username: "u", heloName: "w") }
        #expect(throws: WaybillError.self) { try Smarthost(parsing: "h:25", heloName: "bad name") }
        let smarthost = try Smarthost(parsing: "h:587", username: "alice", password: "s3cret-pw", heloName: "w")
        #expect(smarthost.description == "h:587 (starttls, user alice)")
        #expect(!"\(smarthost)".contains("s3cret-pw") && !String(reflecting: smarthost).contains("s3cret-pw"))
        var dumped = ""
        dump(smarthost, to: &dumped)
        #expect(dumped.contains("alice") && !dumped.contains("s3cret-pw"))
    }

    @Test func addressesThatWouldBreakTheCommandAreRefused() {
        for address in ["a@b\r\nRCPT TO:<evil@x>", "a b@c", "<a@b>", "a@b>", "\u{7F}@x"] {
            #expect(throws: DeliveryFailure.permanent("the address '\(address.debugDescription.dropFirst().dropLast())' cannot be sent in SMTP")) {
                try SMTPClient.check(address: address, allowEmpty: false)
            }
        }
        #expect(throws: Never.self) { try SMTPClient.check(address: "", allowEmpty: true) }
    }

    @Test func allRecipientsRefused() {
        let bob = DeliveryFailure.permanent("h said 550 5.1.1 no")
        let carol = DeliveryFailure.temporary("h said 451 4.3.0 later")
        #expect(SMTPClientSession.allRefused(["bob@x": bob], recipients: ["bob@x"]) == bob)
        let both = SMTPClientSession.allRefused(["bob@x": bob, "carol@x": carol], recipients: ["bob@x", "carol@x"])
        #expect(both.kind == .temporary)
        #expect(both.message.contains("bob@x: h said 550") && both.message.contains("carol@x: h said 451"))
        let permanent = SMTPClientSession.allRefused(["bob@x": bob, "carol@x": bob], recipients: ["bob@x", "carol@x"])
        #expect(permanent.kind == .permanent)
    }
}

// MARK: - Against a real smarthost (aiosmtpd)

/// The tests' own smarthost: `Peers/smarthost.py` in a child process, on a port of its choosing.
final class SmarthostPeer: Sendable {
    let directory: URL
    let port: Int
    private let pid: Int32
    /// The peer's stdin: it exits when this closes, which the kernel does if the test run dies.
    private let lifeline: FileHandle

    private init(directory: URL, port: Int, pid: Int32, lifeline: FileHandle) {
        self.directory = directory
        self.port = port
        self.pid = pid
        self.lifeline = lifeline
    }

    var out: URL { directory.appending(path: "out") }

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appending(path: "Peers/smarthost.py")

    /// Starts the peer and waits for its `READY <port>`. Process work (spawning, blocking reads)
    /// runs on a Dispatch thread: blocking the cooperative pool can hang the test run.
    static func start(_ arguments: [String] = [], in directory: URL) async throws -> SmarthostPeer {
        try await offPool {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = [script.path, "--out", directory.appending(path: "out").path, "--exit-on-eof"] + arguments
            let stdout = Pipe()
            let stdin = Pipe()
            process.standardOutput = stdout
            process.standardInput = stdin
            _ = FileManager.default.createFile(atPath: directory.appending(path: "peer.stderr").path, contents: nil)
            process.standardError = try FileHandle(forWritingTo: directory.appending(path: "peer.stderr"))
            try process.run()
            var line = Data()
            while !line.contains(UInt8(ascii: "\n")) {
                // read(2), not FileHandle.availableData: that one traps on EINTR (SIGCHLD of a
                // parallel test's child).
                var buffer = [UInt8](repeating: 0, count: 256)
                let count = buffer.withUnsafeMutableBytes { read(stdout.fileHandleForReading.fileDescriptor, $0.baseAddress, 256) }
                if count < 0 && errno == EINTR { continue }
                line.append(contentsOf: buffer.prefix(max(0, count)))
                if count <= 0 {
                    let stderr = (try? String(contentsOf: directory.appending(path: "peer.stderr"), encoding: .utf8)) ?? ""
                    throw PeerError(message: "the smarthost peer did not start: \(stderr)")
                }
            }
            let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard text.hasPrefix("READY "), let port = Int(text.dropFirst(6)) else {
                throw PeerError(message: "the smarthost peer said '\(text)'")
            }
            return SmarthostPeer(
                directory: directory, port: port, pid: process.processIdentifier, lifeline: stdin.fileHandleForWriting)
        }
    }

    func stop() async {
        let pid = self.pid
        try? lifeline.close()
        _ = try? await offPool {
            // SIGKILL: a child spawned from a Dispatch thread inherits its blocked signals, SIGTERM too.
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
    }

    struct Envelope: Decodable {
        var mail_from: String
        var mail_options: [String]
        var rcpt_tos: [String]
        var ehlo: String?
        var helo: String?
        var tls: Bool
        var auth_mechanism: String?
        var auth_login: String?
        var pipelined: Bool?
    }

    func envelope(_ number: Int = 1) throws -> Envelope {
        try JSONDecoder().decode(Envelope.self, from: Data(contentsOf: out.appending(path: "\(number).json")))
    }

    func message(_ number: Int = 1) throws -> Data {
        try Data(contentsOf: out.appending(path: "\(number).eml"))
    }

    var deliveredCount: Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: out.path)) ?? []).filter { $0.hasSuffix(".eml") }.count
    }

    /// The command lines the client sent, as aiosmtpd logged them (AUTH arguments masked).
    var transcript: String {
        (try? String(contentsOf: out.appending(path: "transcript.log"), encoding: .utf8)) ?? ""
    }
}

struct PeerError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
    }
}

/// A fresh directory for one test, removed afterwards.
func withTemporaryDirectory<T>(_ body: (URL) async throws -> T) async throws -> T {
    let directory = FileManager.default.temporaryDirectory.appending(path: "waybill-smtpc-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try await body(directory)
}

func writeRandomFile(_ url: URL, size: Int) throws {
    var generator = SystemRandomNumberGenerator()
    var data = Data(count: size)
    data.withUnsafeMutableBytes { bytes in
        for index in 0..<bytes.count { bytes[index] = UInt8(truncatingIfNeeded: generator.next() as UInt64) }
    }
    try data.write(to: url)
}

/// A self-signed certificate for `localhost` and 127.0.0.1: (certificate, key) paths.
func makeCertificate(in directory: URL) async throws -> (String, String) {
    let certificate = directory.appending(path: "cert.pem").path
    let key = directory.appending(path: "key.pem").path
    let status = try await offPool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", certificate,
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
    #expect(status == 0)
    return (certificate, key)
}

/// The live tests: each starts its own peer, so they run in parallel; timeouts are generous
/// (a loaded two-core machine) except where a timeout is what is tested.
@Suite(.timeLimit(.minutes(3))) struct SMTPClientTests {
    static let message = """
        From: sender@waybill.test
        To: alice@example.test
        Subject: dots and line ends

        .leading dot
        ..two dots
        .
        a bare LF line\nthen a CRLF line\r
        the end without a line break
        """

    /// What `message` must look like at the server: CRLF throughout, dots as written.
    static let arrived = """
        From: sender@waybill.test\r
        To: alice@example.test\r
        Subject: dots and line ends\r
        \r
        .leading dot\r
        ..two dots\r
        .\r
        a bare LF line\r
        then a CRLF line\r
        the end without a line break\r

        """

    func smarthost(_ peer: SmarthostPeer, _ security: Smarthost.Security = .none, host: String = "127.0.0.1")
        -> Smarthost
    {
        var smarthost = Smarthost(host: host, port: peer.port, security: security, heloName: "waybill.test")
        smarthost.connectTimeout = .seconds(60)
        smarthost.commandTimeout = .seconds(60)
        smarthost.dataTimeout = .seconds(60)
        return smarthost
    }

    func writeMessage(in directory: URL, _ text: String = Self.message) throws -> URL {
        let url = directory.appending(path: "message.eml")
        try Data(text.utf8).write(to: url)
        return url
    }

    /// Runs `body` with a peer started with `arguments`, stopping it whatever happens.
    func withPeer<T>(
        _ arguments: [String] = [], certificate: Bool = false,
        _ body: (SmarthostPeer, URL, (String, String)?) async throws -> T
    ) async throws -> T {
        try await withTemporaryDirectory { directory in
            let pair = certificate ? try await makeCertificate(in: directory) : nil
            let arguments = arguments.map { $0 == "CERT" ? pair!.0 : $0 == "KEY" ? pair!.1 : $0 }
            let peer = try await SmarthostPeer.start(arguments, in: directory)
            do {
                let result = try await body(peer, directory, pair)
                await peer.stop()
                return result
            } catch {
                await peer.stop()
                throw error
            }
        }
    }

    /// The failure `send` throws; fails the test if it throws none or another error.
    func failure(
        _ client: SMTPClient, to recipients: [String] = ["alice@example.test"], message: URL,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async -> DeliveryFailure? {
        do {
            let result = try await client.send(from: "sender@waybill.test", to: recipients, message: message)
            Issue.record("sent, expected a failure: \(result)", sourceLocation: sourceLocation)
            return nil
        } catch let failure as DeliveryFailure {
            return failure
        } catch {
            Issue.record("threw \(error), expected a DeliveryFailure", sourceLocation: sourceLocation)
            return nil
        }
    }

    @Test func plainDeliveryPipelined() async throws {
        try await withPeer { peer, directory, _ in
            var client = SMTPClient(smarthost: smarthost(peer))
            client.chunkSize = 7  // line ends and dots fall across chunk boundaries
            let message = try writeMessage(in: directory)
            let result = try await client.send(
                from: "sender@waybill.test", to: ["alice@example.test", "bob@example.test"], message: message)
            #expect(result.accepted == ["alice@example.test", "bob@example.test"])
            #expect(result.refused.isEmpty)
            #expect(result.reply == "2.0.0 Ok: queued as Q1")
            #expect(String(decoding: try peer.message(), as: UTF8.self) == Self.arrived)
            let envelope = try peer.envelope()
            #expect(envelope.mail_from == "sender@waybill.test")
            #expect(envelope.rcpt_tos == ["alice@example.test", "bob@example.test"])
            #expect(envelope.mail_options == ["SIZE=\(Self.message.utf8.count)"])
            #expect(envelope.ehlo == "waybill.test")
            #expect(envelope.pipelined == true)
            #expect(envelope.tls == false)
            #expect(peer.transcript.contains("b'QUIT'"))
        }
    }

    @Test func withoutPipeliningOneCommandAtATime() async throws {
        try await withPeer(["--no-pipelining"]) { peer, directory, _ in
            let client = SMTPClient(smarthost: smarthost(peer))
            let result = try await client.send(
                from: "", to: ["alice@example.test", "bob@example.test"], message: try writeMessage(in: directory))
            #expect(result.accepted.count == 2)
            let envelope = try peer.envelope()
            #expect(envelope.pipelined == false)
            #expect(envelope.mail_from == "<>")
            #expect(String(decoding: try peer.message(), as: UTF8.self) == Self.arrived)
        }
    }

    @Test func heloWhenEHLOIsRefused() async throws {
        try await withPeer(["--no-ehlo"]) { peer, directory, _ in
            let client = SMTPClient(smarthost: smarthost(peer))
            _ = try await client.send(from: "s@waybill.test", to: ["a@example.test"], message: try writeMessage(in: directory))
            let envelope = try peer.envelope()
            #expect(envelope.helo == "waybill.test")
            #expect(envelope.mail_options.isEmpty)  // no SIZE without EHLO
            #expect(envelope.pipelined == false)
        }
    }

    @Test func startTLSWithAuthPlain() async throws {
        try await withPeer(["--starttls", "CERT", "KEY", "--auth", "alice:s3cret"], certificate: true) {
            peer, directory, pair in
            var smarthost = smarthost(peer, .starttls, host: "localhost")
            smarthost.trustRoots = pair!.0
            smarthost.username = "alice"
            smarthost.password = "s3cret"
            let result = try await SMTPClient(smarthost: smarthost).send(
                from: "s@waybill.test", to: ["a@example.test"], message: try writeMessage(in: directory))
            #expect(result.accepted == ["a@example.test"])
            let envelope = try peer.envelope()
            #expect(envelope.tls)
            #expect(envelope.auth_mechanism == "PLAIN")
            #expect(envelope.auth_login == "alice")
            #expect(envelope.pipelined == true)
            #expect(String(decoding: try peer.message(), as: UTF8.self) == Self.arrived)
            // EHLO twice: RFC 3207 §4.2, what was said in clear is forgotten.
            #expect(peer.transcript.components(separatedBy: "b'EHLO waybill.test'").count == 3)
        }
    }

    @Test func startTLSWithAnUntrustedCertificateSendsNothing() async throws {
        try await withPeer(["--starttls", "CERT", "KEY", "--auth", "alice:s3cret"], certificate: true) {
            peer, directory, _ in
            var smarthost = smarthost(peer, .starttls, host: "localhost")
            smarthost.username = "alice"
            smarthost.password = "s3cret"
            let failure = await failure(SMTPClient(smarthost: smarthost), message: try writeMessage(in: directory))
            #expect(failure?.kind == .temporary)
            #expect(failure?.message.contains("TLS") == true)
            #expect(!peer.transcript.contains("AUTH") && !peer.transcript.contains("MAIL"))
        }
    }

    @Test func startTLSRequiredButNotOfferedSendsNoCredentials() async throws {
        // This peer offers AUTH in clear and no STARTTLS: a client that gives in leaks the password.
        try await withPeer(["--auth", "alice:s3cret"]) { peer, directory, _ in
            var smarthost = smarthost(peer, .starttls)
            smarthost.username = "alice"
            smarthost.password = "s3cret"
            let failure = await failure(SMTPClient(smarthost: smarthost), message: try writeMessage(in: directory))
            #expect(failure?.kind == .temporary)
            #expect(failure?.message.contains("STARTTLS") == true)
            #expect(peer.transcript.contains("EHLO"))
            #expect(!peer.transcript.contains("AUTH") && !peer.transcript.contains("MAIL"))
        }
    }

    @Test func implicitTLSCheckedAgainstTheAddress() async throws {
        try await withPeer(["--implicit-tls", "CERT", "KEY", "--auth", "alice:s3cret", "--auth-mechanisms", "LOGIN"],
                           certificate: true) { peer, directory, pair in
            var smarthost = try Smarthost(
                parsing: "127.0.0.1:\(peer.port)", security: .tls, username: "alice", password: "s3cret",
                heloName: "waybill.test")
            smarthost.trustRoots = pair!.0
            _ = try await SMTPClient(smarthost: smarthost).send(
                from: "s@waybill.test", to: ["a@example.test"], message: try writeMessage(in: directory))
            let envelope = try peer.envelope()
            #expect(envelope.tls)
            #expect(envelope.auth_mechanism == "LOGIN")
            #expect(String(decoding: try peer.message(), as: UTF8.self) == Self.arrived)
        }
    }

    @Test(arguments: ["PLAIN", "LOGIN"])
    func authOverAPlainRelay(_ mechanism: String) async throws {
        try await withPeer(["--auth", "alice:s3cret", "--auth-mechanisms", mechanism]) { peer, directory, _ in
            var smarthost = smarthost(peer)
            smarthost.username = "alice"
            smarthost.password = "s3cret"
            _ = try await SMTPClient(smarthost: smarthost).send(
                from: "s@waybill.test", to: ["a@example.test"], message: try writeMessage(in: directory))
            #expect(try peer.envelope().auth_mechanism == mechanism)
            #expect(try peer.envelope().auth_login == "alice")
        }
    }

    @Test(arguments: ["PLAIN", "LOGIN"])
    func wrongPasswordIsPermanent(_ mechanism: String) async throws {
        try await withPeer(["--auth", "alice:s3cret", "--auth-mechanisms", mechanism]) { peer, directory, _ in
            var smarthost = smarthost(peer)
            smarthost.username = "alice"
            smarthost.password = "wrong-password"
            let failure = await failure(SMTPClient(smarthost: smarthost), message: try writeMessage(in: directory))
            #expect(failure?.kind == .permanent)
            #expect(failure?.message.contains("said 535 5.7.8") == true)
            #expect(failure?.message.contains("wrong-password") == false)
            #expect(!peer.transcript.contains("MAIL"))
        }
    }

    @Test(arguments: [
        (["--rcpt-reply", "alice@example.test=450 4.2.0 mailbox busy"], DeliveryFailure.Kind.temporary, "450 4.2.0 mailbox busy"),
        (["--rcpt-reply", "alice@example.test=550 5.1.1 no such user"], .permanent, "550 5.1.1 no such user"),
        (["--data-reply", "451 4.3.0 try later"], .temporary, "451 4.3.0 try later"),
        (["--data-reply", "554 5.6.0 message refused"], .permanent, "554 5.6.0 message refused"),
        (["--mail-reply", "553 5.7.1 sender refused"], .permanent, "553 5.7.1 sender refused"),
        (["--mail-reply", "421 4.7.0 closing"], .temporary, "421 4.7.0 closing"),
        (["--mail-reply", "421 4.7.0 closing", "--no-pipelining"], .temporary, "421 4.7.0 closing"),
        (["--rcpt-reply", "alice@example.test=550 5.1.1 no", "--no-pipelining"], .permanent, "550 5.1.1 no"),
    ])
    func repliesAreClassified(_ arguments: [String], _ kind: DeliveryFailure.Kind, _ text: String) async throws {
        try await withPeer(arguments) { peer, directory, _ in
            let failure = await failure(SMTPClient(smarthost: smarthost(peer)), message: try writeMessage(in: directory))
            #expect(failure?.kind == kind)
            #expect(failure?.message.hasPrefix("127.0.0.1 said \(text) (in reply to ") == true, "\(String(describing: failure))")
            #expect(peer.deliveredCount == 0)
        }
    }

    @Test(arguments: [false, true])
    func oneOfTwoRecipientsRefused(pipelining: Bool) async throws {
        let arguments = ["--rcpt-reply", "bob@example.test=550 5.1.1 no such user"] + (pipelining ? [] : ["--no-pipelining"])
        try await withPeer(arguments) { peer, directory, _ in
            let result = try await SMTPClient(smarthost: smarthost(peer)).send(
                from: "s@waybill.test", to: ["alice@example.test", "bob@example.test"],
                message: try writeMessage(in: directory))
            #expect(result.accepted == ["alice@example.test"])
            #expect(result.refused.keys.sorted() == ["bob@example.test"])
            #expect(result.refused["bob@example.test"]?.kind == .permanent)
            #expect(result.refused["bob@example.test"]?.message.contains("550 5.1.1 no such user") == true)
            #expect(try peer.envelope().rcpt_tos == ["alice@example.test"])
        }
    }

    @Test func allRecipientsRefusedMixedIsTemporary() async throws {
        let arguments = [
            "--rcpt-reply", "alice@example.test=550 5.1.1 no such user",
            "--rcpt-reply", "bob@example.test=452 4.2.2 over quota",
        ]
        try await withPeer(arguments) { peer, directory, _ in
            let failure = await failure(
                SMTPClient(smarthost: smarthost(peer)), to: ["alice@example.test", "bob@example.test"],
                message: try writeMessage(in: directory))
            #expect(failure?.kind == .temporary)
            #expect(failure?.message.contains("all 2 recipients refused") == true)
            #expect(peer.deliveredCount == 0)
        }
    }

    @Test(arguments: ["EHLO", "MAIL", "RCPT", "DATA"])
    func disconnectIsTemporary(_ command: String) async throws {
        try await withPeer(["--disconnect-after", command]) { peer, directory, _ in
            let failure = await failure(SMTPClient(smarthost: smarthost(peer)), message: try writeMessage(in: directory))
            #expect(failure?.kind == .temporary)
            #expect(failure?.message.contains("closed the connection") == true, "\(String(describing: failure))")
        }
    }

    @Test(arguments: ["EHLO", "RCPT"])
    func stallTimesOut(_ command: String) async throws {
        try await withPeer(["--stall-after", command]) { peer, directory, _ in
            var smarthost = smarthost(peer)
            smarthost.commandTimeout = .seconds(2)
            let started = ContinuousClock.now
            let failure = await failure(SMTPClient(smarthost: smarthost), message: try writeMessage(in: directory))
            #expect(failure?.kind == .temporary)
            #expect(failure?.message.contains("timed out waiting for the reply to") == true, "\(String(describing: failure))")
            let elapsed = ContinuousClock.now - started
            #expect(elapsed >= .seconds(2) && elapsed < .seconds(60))
        }
    }

    @Test func stallAfterTheMessageUsesTheDataTimeout() async throws {
        try await withPeer(["--stall-after", "DATA"]) { peer, directory, _ in
            var smarthost = smarthost(peer)
            smarthost.dataTimeout = .seconds(2)
            let failure = await failure(SMTPClient(smarthost: smarthost), message: try writeMessage(in: directory))
            #expect(failure?.kind == .temporary)
            #expect(failure?.message.contains("timed out waiting for the reply to the end of the message") == true)
        }
    }

    @Test func floodOfGarbageFailsFast() async throws {
        try await withPeer(["--flood-after", "EHLO"]) { peer, directory, _ in
            let started = ContinuousClock.now
            let failure = await failure(SMTPClient(smarthost: smarthost(peer)), message: try writeMessage(in: directory))
            #expect(failure?.kind == .temporary)
            #expect(failure?.message.contains("longer than 2048 bytes") == true, "\(String(describing: failure))")
            #expect(ContinuousClock.now - started < .seconds(50))  // not the 60 s command timeout
        }
    }

    @Test func nothingListeningIsTemporary() async throws {
        let peer = try await withTemporaryDirectory { directory in
            let peer = try await SmarthostPeer.start(in: directory)
            await peer.stop()
            return peer
        }
        try await withTemporaryDirectory { directory in
            let failure = await failure(SMTPClient(smarthost: smarthost(peer)), message: try writeMessage(in: directory))
            #expect(failure?.kind == .temporary)
            #expect(failure?.message.hasPrefix("cannot connect to 127.0.0.1") == true)
        }
    }

    @Test func unreadableMessageIsPermanentAndConnectsNowhere() async throws {
        try await withPeer { peer, directory, _ in
            let failure = await failure(
                SMTPClient(smarthost: smarthost(peer)), message: directory.appending(path: "missing.eml"))
            #expect(failure?.kind == .permanent)
            #expect(peer.transcript.isEmpty)
        }
    }

    @Test func builtMessageWithAFiveMegabyteAttachmentArrivesIntact() async throws {
        try await withPeer { peer, directory, _ in
            let pdf = directory.appending(path: "scan.pdf")
            try writeRandomFile(pdf, size: 5 << 20)
            let mail = OutgoingMail(
                from: "waybill@waybill.test", to: ["alice@example.test"], subject: "Rechnung März",
                body: ".a line with a leading dot\nGrüße\n", messageID: "m1@waybill.test",
                extraHeaders: [("Auto-Submitted", "auto-generated")])
            var withAttachment = mail
            withAttachment.attachments = [OutgoingMail.Attachment(fileName: "scan.pdf", contentType: "application/pdf", file: pdf)]
            let file = directory.appending(path: "out.eml")
            try withAttachment.write(to: file)
            _ = try await SMTPClient(smarthost: smarthost(peer)).send(
                from: "waybill@waybill.test", to: ["alice@example.test"], message: file)
            #expect(try peer.message() == Data(contentsOf: file))
        }
    }
}
