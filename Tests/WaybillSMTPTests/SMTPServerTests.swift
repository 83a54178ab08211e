import Foundation
import Testing
import WaybillCore
import WaybillSMTP

/// A live server on port 0 and real clients: Python's smtplib, and raw sockets for the probes.
@Suite(.serialized) struct SMTPServerTests {
    /// A server on port 0 with a fresh spool. No greeting delay unless asked: most tests are
    /// about other things, and the delay runs on the injected clock.
    static func withServer(
        _ configuration: SMTPConfiguration = SMTPConfiguration(hostname: "test.waybill", maximumMessageSize: 1_000_000, greetingDelay: .zero),
        clock: any SMTPClock = ContinuousSMTPClock(), logs: LogCapture = LogCapture(), metrics: Metrics = Metrics(),
        _ body: @Sendable (Int, Spool) async throws -> Void
    ) async throws {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory() + "waybill-smtp-\(UUID().uuidString)")
        let spool = try Spool(directory: directory)
        let server = SMTPServer(
            host: "127.0.0.1", port: 0, configuration: configuration, spool: spool,
            recipientPolicy: { $0.lowercased().hasPrefix("scan@") ? .accept : .refuse("no rule accepts it") }, logger: logs.logger,
            clock: clock, metrics: metrics)
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self)
        let task = Task { try await server.run { continuation.yield($0) } }
        var ports = stream.makeAsyncIterator()
        let port = try #require(await ports.next())
        defer { task.cancel() }
        try await body(port, spool)
    }

    func withServer(maximumMessageSize: Int = 1_000_000, _ body: @Sendable (Int, Spool) async throws -> Void) async throws {
        try await Self.withServer(
            SMTPConfiguration(hostname: "test.waybill", maximumMessageSize: maximumMessageSize, greetingDelay: .zero), body)
    }

    func python(_ script: String, _ arguments: [String]) async throws -> (Int32, String) {
        try await WaybillSMTPTests.python(script, arguments)
    }

    static let smtplibScript = """
        import smtplib, sys
        from email.message import EmailMessage
        msg = EmailMessage()
        msg["From"] = "scanner@office.example.com"; msg["To"] = "scan@localhost"; msg["Subject"] = "Scan"
        msg.set_content("page one\\n.leading dot\\n")
        msg.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="scan.pdf")
        with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10) as s:
            s.ehlo("scanner")
            print(s.send_message(msg))
            try:
                s.sendmail("a@b", ["victim@elsewhere.example"], "Subject: relay\\r\\n\\r\\nx\\r\\n")
            except smtplib.SMTPRecipientsRefused as e:
                print("refused", list(e.recipients.values())[0][0])
        """

    /// Without a greeting delay the channel handler writes the 220 as the connection opens; the
    /// connection's task must not write a second one, pipelined commands or not.
    @Test func theGreetingIsWrittenOnce() async throws {
        try await withServer { port, _ in
            for pipelined in [false, true] {
                let client = try LineClient(port: port)
                if pipelined { await client.send("EHLO scanner\r\nNOOP\r\nQUIT\r\n") }
                #expect(await client.reply() == ["220 test.waybill ESMTP Waybill"])
                if !pipelined { await client.send("EHLO scanner\r\nNOOP\r\nQUIT\r\n") }
                let rest = await client.rest()
                #expect(!rest.contains("220 "), "\(rest)")
                #expect(rest.hasPrefix("250-test.waybill") && rest.contains("250 2.0.0") && rest.hasSuffix("221 2.0.0 Bye"), "\(rest)")
            }
        }
    }

    /// Two whole transactions in one write (PIPELINING lets a client send MAIL, RCPT and DATA
    /// without waiting, and a careless one sends the next message too): the bytes after the first
    /// message's dot wait while it is committed, then run; every command gets its reply in order.
    /// The first message is larger than the writer's buffer, so it is also flushed mid-DATA.
    @Test func pipelinedMessagesWaitForTheCommitBeforeThem() async throws {
        try await withServer(maximumMessageSize: 2_000_000) { port, spool in
            let large = String(repeating: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n", count: 6000)
            let client = try LineClient(port: port)
            #expect(await client.reply().first?.hasPrefix("220 ") == true)
            await client.send(
                "EHLO scanner\r\nMAIL FROM:<a@x>\r\nRCPT TO:<scan@localhost>\r\nDATA\r\nSubject: one\r\n\r\n\(large).\r\n"
                    + "MAIL FROM:<b@x>\r\nRCPT TO:<scan@localhost>\r\nDATA\r\nSubject: two\r\n\r\nsecond\r\n.\r\nQUIT\r\n")
            var codes: [String] = []
            var queued: [String] = []
            while true {
                let reply = await client.reply()
                guard let last = reply.last else { break }
                codes.append(String(last.prefix(3)))
                if last.hasPrefix("250 2.0.0 Ok: queued as ") { queued.append(String(last.dropFirst("250 2.0.0 Ok: queued as ".count))) }
            }
            #expect(codes == ["250", "250", "250", "354", "250", "250", "250", "354", "250", "221"])
            #expect(spool.pending() == queued && queued.count == 2)
            let bodies = try queued.map { try String(contentsOf: spool.messageURL($0), encoding: .utf8) }
            #expect(bodies.first == "Subject: one\r\n\r\n\(large)")
            #expect(bodies.last == "Subject: two\r\n\r\nsecond\r\n")
        }
    }

    /// A server that stops tells each client so (421), rather than dropping the connection.
    @Test func aStoppingServerSays421() async throws {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory() + "waybill-smtp-\(UUID().uuidString)")
        let server = SMTPServer(
            host: "127.0.0.1", port: 0,
            configuration: SMTPConfiguration(hostname: "test.waybill", maximumMessageSize: 1_000_000, greetingDelay: .zero),
            spool: try Spool(directory: directory), recipientPolicy: { (_: String) in .accept })
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self)
        let task = Task { try await server.run { continuation.yield($0) } }
        var ports = stream.makeAsyncIterator()
        let port = try #require(await ports.next())
        let client = try LineClient(port: port)
        #expect(await client.reply().first?.hasPrefix("220 ") == true)
        await client.send("EHLO scanner\r\n")
        #expect(await client.reply().last?.hasPrefix("250 ") == true)
        task.cancel()
        let rest = await client.rest()
        #expect(rest.hasSuffix("421 4.3.2 test.waybill Service shutting down; try again later"), "\(rest)")
        try await task.value
    }

    @Test func smtplibDeliversIntoTheSpoolAndRelayingIsRefused() async throws {
        try await withServer { port, spool in
            let (status, output) = try await python(Self.smtplibScript, [String(port)])
            #expect(status == 0, "\(output)")
            #expect(output.contains("{}"))
            #expect(output.contains("refused 550"))
            let pending = spool.pending()
            #expect(pending.count == 1)
            let id = try #require(pending.first)
            let message = try String(contentsOf: spool.messageURL(id), encoding: .utf8)
            #expect(message.contains("Subject: Scan") && message.contains("filename=\"scan.pdf\"") && message.contains("\r\n.leading dot"))
            let envelope = try spool.envelope(id, as: SMTPEnvelope.self)
            #expect(envelope.recipients == ["scan@localhost"] && envelope.sender == "scanner@office.example.com")
        }
    }

    static let rawScript = """
        import socket, sys
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
        f = s.makefile("rb")
        def reply():
            lines = []
            while True:
                line = f.readline().decode()
                lines.append(line.strip())
                if line[3:4] != "-":
                    return lines
        print(reply())
        s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
        while True:
            try:
                r = reply()
            except Exception:
                break
            if not r or not r[0]:
                break
            print(r)
            if r[-1].startswith("221") or r[-1].startswith("421"):
                break
        """

    @Test func smugglingProbesEndNothing() async throws {
        try await withServer { port, spool in
            for fake in ["\\n.\\n", "\\n.\\r\\n", "\\r.\\r", "\\r\\n.\\n"] {
                // Everything in one write, as a smuggling probe sends it: the server must not take
                // the fake end, whatever arrives together.
                let session = "EHLO probe\\r\\nMAIL FROM:<a@b.example>\\r\\nRCPT TO:<scan@x>\\r\\nDATA\\r\\n"
                    + "Subject: one\\r\\n\\r\\nfirst\(fake)MAIL FROM:<evil@x>\\r\\nRCPT TO:<scan@x>\\r\\nDATA\\r\\n"
                    + "Subject: smuggled\\r\\n\\r\\n.\\r\\nQUIT\\r\\n"
                let (status, output) = try await python(Self.rawScript, [String(port), session])
                #expect(status == 0, "\(output)")
                #expect(output.components(separatedBy: "250 2.0.0 Ok: queued").count - 1 == 1, "\(fake): \(output)")
                #expect(output.contains("221"), "\(output)")
            }
            // Four messages, each holding its smuggled text: nothing split into a second message.
            #expect(spool.pending().count == 4)
            for id in spool.pending() {
                let message = try String(contentsOf: spool.messageURL(id), encoding: .utf8)
                if message.contains("Subject: one") { #expect(message.contains("Subject: smuggled")) }
                #expect(!message.hasPrefix("Subject: smuggled"))
            }
        }
    }

    @Test func sizeLimitIsEnforcedOnTheWire() async throws {
        try await withServer(maximumMessageSize: 100) { port, spool in
            let big = String(repeating: "x", count: 300)
            let (status, output) = try await python(
                Self.rawScript, [String(port), "EHLO t\\r\\nMAIL FROM:<a@b>\\r\\nRCPT TO:<scan@x>\\r\\nDATA\\r\\n\(big)\\r\\n.\\r\\nQUIT\\r\\n"])
            #expect(status == 0)
            #expect(output.contains("552"), "\(output)")
            #expect(spool.pending().isEmpty)
        }
    }
}
