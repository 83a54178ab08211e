import Foundation
import Testing
import WaybillCore
import WaybillSMTP

/// What the SMTP server counts: each refusal reply by its reason (state machine replies, no
/// sockets), then connections, messages and refusals counted by a live server.
@Suite struct SMTPServerMetricsTests {
    typealias Conversation = SMTPServerStateMachineTests.Conversation

    /// The reasons of the replies in `actions`, in order, refusals only.
    static func refusals(_ actions: [SMTPServerStateMachine.Action]) -> [Metrics.SMTPRefusal] {
        actions.compactMap { if case .reply(let reply) = $0 { reply.refusal } else { nil } }
    }

    @Test func everyRefusalReplyOfTheStateMachineHasItsReason() throws {
        var c = Conversation(SMTPConfiguration(hostname: "scan.example.com", maximumMessageSize: 1000, maximumRecipients: 1))
        #expect(Self.refusals(c.actions).isEmpty, "the greeting is no refusal")
        c.send("EHLO x\r\nMAIL FROM:<a@b.example>\r\n")
        c.send("RCPT TO:<victim@elsewhere.example>\r\n")
        #expect(c.lastReply?.refusal == .recipientRefused)
        c.send("RCPT TO:<scan@scan.example.com>\r\n")
        #expect(c.lastReply?.code == 250 && c.lastReply?.refusal == nil)
        c.send("RCPT TO:<scan2@scan.example.com>\r\n")
        #expect(c.lastReply?.code == 452 && c.lastReply?.refusal == .tooManyRecipients)
        c.send("DATA\r\n")
        #expect(Self.refusals(c.machine.dataEnded(size: 5000)) == [.tooLarge])
        c.send("MAIL FROM:<a@b.example> SIZE=5000\r\n")
        #expect(c.lastReply?.code == 552 && c.lastReply?.refusal == .tooLarge)
        c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<scan@scan.example.com>\r\nDATA\r\n")
        _ = c.machine.dataEnded(size: 10)
        #expect(Self.refusals(c.machine.spoolFailed("disk full")) == [.spoolFailed])
        c.send("FROB\r\n")
        #expect(c.lastReply?.refusal == .syntax)
        c.send("MAIL FROM:<a@b.example> FROB=1\r\n")
        #expect(c.lastReply?.code == 555 && c.lastReply?.refusal == .syntax)

        var early = Conversation()
        #expect(Self.refusals(early.machine.earlyTalker()) == [.earlyTalker])

        // Too many errors: the last error counts as itself, the 421 after it as too-many-errors.
        var noisy = Conversation(SMTPConfiguration(hostname: "scan.example.com", maximumErrors: 2))
        noisy.send("FROB\r\n")
        let before = noisy.actions.count
        noisy.send("FROB\r\n")
        #expect(Self.refusals(Array(noisy.actions[before...])) == [.syntax, .tooManyErrors])
    }

    @Test func authenticationRefusalsHaveTheirReasons() throws {
        let hash = PasswordHash.make(password: "right", iterations: 1000)
        var configuration = SMTPConfiguration(hostname: "scan.example.com", maximumErrors: 10)
        configuration.authentication = SMTPAuthentication(users: ["scanner": hash], maximumFailures: 2)
        configuration.requireAuthentication = true
        var c = Conversation(configuration)
        c.send("EHLO x\r\nAUTH PLAIN \(Data("\0scanner\0wrong".utf8).base64EncodedString())\r\n")
        #expect(c.lastReply?.code == 538 && c.lastReply?.refusal == .authRequired, "AUTH without TLS")
        c.send("MAIL FROM:<a@b.example>\r\n")
        #expect(c.lastReply?.code == 530 && c.lastReply?.refusal == .authRequired)

        configuration.allowPlaintextAuthentication = true
        var d = Conversation(configuration)
        d.send("EHLO x\r\nAUTH PLAIN \(Data("\0scanner\0wrong".utf8).base64EncodedString())\r\n")
        #expect(Self.refusals(d.machine.authenticationChecked(valid: false)) == [.authFailed])
        d.send("AUTH PLAIN \(Data("\0scanner\0wrong".utf8).base64EncodedString())\r\n")
        #expect(Self.refusals(d.machine.authenticationChecked(valid: false)) == [.authFailed, .tooManyErrors])
    }

    @Test func theRepliesWrittenOutsideTheStateMachineHaveTheirReasons() {
        #expect(SMTPReply(421, "4.7.0 Too many connections; try again later").refusal == .tooManyConnections)
        #expect(SMTPReply(421, "4.4.2 test Timeout waiting for a command; closing the connection").refusal == .timeout)
        #expect(SMTPReply(221, "2.0.0 Bye").refusal == nil)
        #expect(SMTPReply(354, "End data with <CR><LF>.<CR><LF>").refusal == nil)
    }

    /// A live server counts the connection, the accepted message and the refused relay.
    @Test func aLiveServerCountsConnectionsMessagesAndRefusals() async throws {
        let metrics = Metrics()
        try await SMTPServerTests.withServer(metrics: metrics) { port, _ in
            let (status, output) = try await python(SMTPServerTests.smtplibScript, [String(port)])
            #expect(status == 0, "\(output)")
            #expect(output.contains("refused 550"))
        }
        let counts = metrics.snapshot
        #expect(counts.smtpConnections == 1)
        #expect(counts.smtpMessages == [.accepted: 1])
        #expect(counts.smtpRefusals == [.recipientRefused: 1])
        let text = metrics.render()
        #expect(text.contains("waybill_smtp_messages_total{outcome=\"accepted\"} 1\n"))
        #expect(text.contains("waybill_smtp_refusals_total{reason=\"recipient-refused\"} 1\n"))
        #expect(text.contains("waybill_smtp_refusals_total{reason=\"timeout\"} 0\n"))
    }

    /// Over the connection limit: the refused connection is counted, and why.
    @Test func aConnectionOverTheLimitIsCountedAsRefused() async throws {
        let metrics = Metrics()
        let configuration = SMTPConfiguration(
            hostname: "test.waybill", maximumConnections: 1, maximumConnectionsPerAddress: 1, greetingDelay: .zero)
        try await SMTPServerTests.withServer(configuration, metrics: metrics) { port, _ in
            let (status, output) = try await python(
                """
                import socket, sys
                a = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
                print(a.makefile("rb").readline().decode().strip())
                b = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
                print(b.makefile("rb").readline().decode().strip())
                """, [String(port)])
            #expect(status == 0, "\(output)")
            #expect(output.contains("421 4.7.0 Too many connections"), "\(output)")
        }
        #expect(metrics.snapshot.smtpConnections == 2)
        #expect(metrics.snapshot.smtpRefusals == [.tooManyConnections: 1])
    }
}
