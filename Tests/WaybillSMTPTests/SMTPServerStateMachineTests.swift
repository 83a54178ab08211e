import Testing
import WaybillSMTP

/// The SMTP conversation without sockets: lines in, replies and actions out.
@Suite struct SMTPServerStateMachineTests {
    struct Conversation {
        var machine: SMTPServerStateMachine
        var decoder = SMTPLineDecoder()
        var actions: [SMTPServerStateMachine.Action] = []

        init(_ configuration: SMTPConfiguration = SMTPConfiguration(hostname: "scan.example.com")) {
            machine = SMTPServerStateMachine(configuration: configuration) { address in
                address.lowercased().hasPrefix("scan@") ? .accept : .refuse("no routing rule accepts this address")
            }
            actions = machine.connected()
        }

        /// Sends text (lines with CRLF) and returns the reply codes it produced.
        @discardableResult
        mutating func send(_ text: String) -> [Int] {
            var new: [SMTPServerStateMachine.Action] = []
            for event in decoder.feed(Array(text.utf8)) { new += machine.received(event) }
            actions += new
            return new.compactMap { if case .reply(let reply) = $0 { reply.code } else { nil } }
        }

        var lastReply: SMTPReply? {
            actions.reversed().compactMap { if case .reply(let reply) = $0 { reply } else { nil } }.first
        }
    }

    @Test func aScannerSendsAMessage() throws {
        var c = Conversation()
        #expect(c.lastReply == SMTPReply(220, "scan.example.com ESMTP Waybill"))
        #expect(c.send("EHLO printer-3f\r\n") == [250])
        let ehlo = try #require(c.lastReply)
        #expect(ehlo.lines.contains("SIZE 52428800") && ehlo.lines.contains("PIPELINING") && ehlo.lines.contains("ENHANCEDSTATUSCODES"))
        #expect(String(decoding: ehlo.wire, as: UTF8.self).hasPrefix("250-scan.example.com Hello printer-3f\r\n250-SIZE"))
        // Pipelined, as PIPELINING allows.
        #expect(c.send("MAIL FROM:<printer@office.example.com> SIZE=2048 BODY=8BITMIME\r\nRCPT TO:<scan@scan.example.com>\r\nDATA\r\n") == [250, 250, 354])
        let envelope = SMTPEnvelope(helo: "printer-3f", sender: "printer@office.example.com", recipients: ["scan@scan.example.com"], declaredSize: 2048)
        #expect(c.actions.contains(.receiveData(envelope)))
        #expect(c.machine.isReceivingData)
        // The 250 waits for the spool.
        #expect(c.machine.dataEnded(size: 2000) == [.spool(envelope)])
        #expect(c.machine.spooled(id: "M1") == [.reply(SMTPReply(250, "2.0.0 Ok: queued as M1"))])
        #expect(c.send("QUIT\r\n") == [221])
        #expect(c.actions.last == .close)
    }

    @Test func neverAnOpenRelay() {
        var c = Conversation()
        c.send("EHLO x\r\nMAIL FROM:<a@b.example>\r\n")
        #expect(c.send("RCPT TO:<victim@elsewhere.example>\r\n") == [550])
        #expect(c.lastReply?.lines.first?.hasPrefix("5.1.1 <victim@elsewhere.example>") == true)
        #expect(c.send("DATA\r\n") == [554])  // no valid recipients
        #expect(c.send("RCPT TO:<scan@scan.example.com>\r\nDATA\r\n") == [250, 354])
    }

    @Test func sequenceErrors() {
        var c = Conversation()
        #expect(c.send("MAIL FROM:<a@b>\r\n") == [503])  // before EHLO
        #expect(c.send("HELO\r\n") == [501])
        #expect(c.send("HELO host\r\nRCPT TO:<scan@x>\r\n") == [250, 503])
        #expect(c.send("DATA\r\n") == [503])
        #expect(c.send("MAIL FROM:<a@b>\r\nMAIL FROM:<a@b>\r\n") == [250, 503])
        #expect(c.send("RSET\r\nRCPT TO:<scan@x>\r\n") == [250, 503])
        #expect(c.send("NOOP\r\nVRFY scan\r\nHELP\r\nWHAT\r\nSTARTTLS\r\n") == [250, 252, 214, 500, 502])
    }

    @Test func nullSenderLenientPathsAndParameters() {
        var c = Conversation()
        #expect(c.send("EHLO x\r\nMAIL FROM:<>\r\n") == [250, 250])
        #expect(c.send("RSET\r\nMAIL FROM: <spaced@example.com>\r\n") == [250, 250])
        #expect(c.send("RSET\r\nMAIL FROM:bare@example.com\r\n") == [250, 250])
        #expect(c.send("RSET\r\nmail from:<lower@example.com>\r\n") == [250, 250])
        #expect(c.send("RSET\r\nMAIL FROM:<a@b> FROB=1\r\n") == [250, 555])
        #expect(c.send("RSET\r\nMAIL FROM:<a b@c>\r\n") == [250, 501])
        #expect(c.send("MAIL FROM:<a@b> SIZE=x\r\n") == [501])
    }

    @Test func sizeLimitAnnouncedDeclaredAndEnforced() {
        var c = Conversation(SMTPConfiguration(maximumMessageSize: 1000))
        #expect(c.send("EHLO x\r\nMAIL FROM:<a@b> SIZE=1001\r\n") == [250, 552])
        #expect(c.send("MAIL FROM:<a@b> SIZE=1000\r\nRCPT TO:<scan@x>\r\nDATA\r\n") == [250, 250, 354])
        let actions = c.machine.dataEnded(size: 1001)
        #expect(actions.count == 1)
        if case .reply(let reply) = actions[0] { #expect(reply.code == 552) } else { Issue.record("\(actions)") }
        #expect(!c.machine.isReceivingData)
    }

    @Test func recipientLimit() {
        var c = Conversation(SMTPConfiguration(maximumRecipients: 2))
        #expect(c.send("EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<scan@1>\r\nRCPT TO:<scan@2>\r\nRCPT TO:<scan@3>\r\n") == [250, 250, 250, 250, 452])
    }

    @Test func longAndBareLFLinesAndTooManyErrors() {
        var c = Conversation(SMTPConfiguration(maximumErrors: 3))
        #expect(c.send("NOOP" + String(repeating: " ", count: 600) + "\r\n") == [500])
        #expect(c.lastReply?.lines.first?.hasPrefix("5.5.6") == true)
        #expect(c.send("NOOP\n") == [500])
        #expect(c.send("BOGUS\r\n") == [500, 421])
        #expect(c.actions.last == .close)
        #expect(c.send("NOOP\r\n") == [])
    }

    @Test func earlyTalkersAndSpoolFailures() {
        var early = SMTPServerStateMachine(configuration: SMTPConfiguration()) { _ in .accept }
        #expect(early.earlyTalker().last == .close)
        var c = Conversation()
        c.send("EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<scan@x>\r\nDATA\r\n")
        _ = c.machine.dataEnded(size: 10)
        let failed = c.machine.spoolFailed("disk full")
        #expect(failed.count == 1)
        if case .reply(let reply) = failed[0] { #expect(reply.code == 451) } else { Issue.record("\(failed)") }
        // The session goes on: a new transaction may start.
        #expect(c.send("MAIL FROM:<a@b>\r\n") == [250])
    }
}
