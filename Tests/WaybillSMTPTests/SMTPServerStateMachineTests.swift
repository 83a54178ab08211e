import Foundation
import Testing
import WaybillCore
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

/// STARTTLS (RFC 3207) and AUTH PLAIN / LOGIN (RFC 4954) in the state machine.
@Suite struct SMTPSecurityStateMachineTests {
    typealias Conversation = SMTPServerStateMachineTests.Conversation
    static let tls = SMTPTLS(certificateChainPath: "/unused/cert.pem", privateKeyPath: "/unused/key.pem")
    static let users = SMTPAuthentication(users: ["scanner": PasswordHash.make(password: "secret", iterations: 10)])

    static func configuration(
        tls: SMTPTLS? = Self.tls, authentication: SMTPAuthentication? = Self.users, require: Bool = false, plaintext: Bool = false
    ) -> SMTPConfiguration {
        SMTPConfiguration(
            hostname: "scan.example.com", tls: tls, authentication: authentication, requireAuthentication: require,
            allowPlaintextAuthentication: plaintext)
    }

    static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    @Test func starttlsIsAdvertisedUntilTLSAndThenTheClientStartsOver() throws {
        var c = Conversation(Self.configuration())
        #expect(c.send("EHLO printer\r\n") == [250])
        let ehlo = try #require(c.lastReply)
        #expect(ehlo.lines.contains("STARTTLS"))
        #expect(!ehlo.lines.contains { $0.hasPrefix("AUTH") })  // not in clear
        #expect(c.send("STARTTLS now\r\n") == [501])
        c.send("STARTTLS\r\n")
        #expect(c.actions.last == .startTLS(SMTPReply(220, "2.0.0 Ready to start TLS")))
        // Whatever arrives before the handshake is ignored by the machine (and discarded by the server).
        #expect(c.send("MAIL FROM:<a@b>\r\n") == [])
        #expect(c.machine.tlsStarted() == [])
        #expect(c.machine.isSecure)
        // RFC 3207 §4.2: the EHLO from before TLS no longer counts.
        #expect(c.send("MAIL FROM:<a@b>\r\n") == [503])
        #expect(c.send("EHLO printer\r\n") == [250])
        let secure = try #require(c.lastReply)
        #expect(!secure.lines.contains("STARTTLS"))
        #expect(secure.lines.contains("AUTH PLAIN LOGIN"))
        #expect(c.send("STARTTLS\r\n") == [503])
    }

    @Test func starttlsOnlyWhenConfiguredAndOutsideATransaction() {
        var plain = Conversation(Self.configuration(tls: nil))
        #expect(plain.send("EHLO x\r\nSTARTTLS\r\n") == [250, 502])
        var c = Conversation(Self.configuration())
        #expect(c.send("EHLO x\r\nMAIL FROM:<a@b>\r\nSTARTTLS\r\n") == [250, 250, 503])
    }

    /// Runs the `.authenticate` action the way the server does.
    static func check(_ c: inout Conversation, _ authentication: SMTPAuthentication = Self.users) -> [Int] {
        guard case .authenticate(let user, let password) = c.actions.last else { return [] }
        let actions = c.machine.authenticationChecked(valid: authentication.verify(user: user, password: password))
        c.actions += actions
        return actions.compactMap { if case .reply(let reply) = $0 { reply.code } else { nil } }
    }

    static func secured(_ configuration: SMTPConfiguration = Self.configuration()) -> Conversation {
        var c = Conversation(configuration)
        c.send("EHLO x\r\nSTARTTLS\r\n")
        _ = c.machine.tlsStarted()
        c.send("EHLO x\r\n")
        return c
    }

    @Test func authPlainWithAndWithoutInitialResponse() {
        var c = Self.secured()
        #expect(c.send("AUTH PLAIN \(Self.base64("\0scanner\0secret"))\r\n") == [])
        #expect(Self.check(&c) == [235])
        #expect(c.machine.authenticatedUser == "scanner")
        #expect(c.send("AUTH PLAIN\r\n") == [503])  // once per session
        c.send("MAIL FROM:<a@b>\r\nRCPT TO:<scan@x>\r\nDATA\r\n")
        #expect(c.actions.contains { if case .receiveData(let e) = $0 { e.authenticatedUser == "scanner" } else { false } })

        var d = Self.secured()
        #expect(d.send("AUTH PLAIN\r\n") == [334])
        #expect(d.send(Self.base64("scanner\0scanner\0secret") + "\r\n") == [])
        #expect(Self.check(&d) == [235])
        // An authorization identity other than the user is refused outright.
        var e = Self.secured()
        #expect(e.send("AUTH PLAIN \(Self.base64("admin\0scanner\0secret"))\r\n") == [535])
    }

    @Test func authLoginAsScannersSpeakIt() {
        var c = Self.secured()
        #expect(c.send("AUTH LOGIN\r\n") == [334])
        #expect(c.lastReply == SMTPReply(334, "VXNlcm5hbWU6"))
        #expect(c.send(Self.base64("scanner") + "\r\n") == [334])
        #expect(c.lastReply == SMTPReply(334, "UGFzc3dvcmQ6"))
        #expect(c.send(Self.base64("secret") + "\r\n") == [])
        #expect(Self.check(&c) == [235])

        var initial = Self.secured()
        #expect(initial.send("auth login \(Self.base64("scanner"))\r\n") == [334])
        #expect(initial.send(Self.base64("wrong") + "\r\n") == [])
        #expect(Self.check(&initial) == [535])
        #expect(initial.lastReply?.lines == ["5.7.8 Authentication credentials invalid"])
        #expect(initial.machine.authenticatedUser == nil)
    }

    @Test func authFailuresCancelsAndGarbage() {
        var c = Self.secured()
        #expect(c.send("AUTH CRAM-MD5\r\n") == [504])
        #expect(c.send("AUTH LOGIN\r\n*\r\n") == [334, 501])
        #expect(c.send("AUTH PLAIN\r\nnot base64!\r\n") == [334, 501])
        #expect(c.send("AUTH PLAIN \(Self.base64("no separators"))\r\n") == [501])
        // Three wrong passwords (the default) close the session.
        for attempt in 1...3 {
            c.send("AUTH PLAIN \(Self.base64("\0scanner\0guess\(attempt)"))\r\n")
            #expect(Self.check(&c) == (attempt < 3 ? [535] : [535, 421]))
        }
        #expect(c.actions.last == .close)
        // An unknown user fails the same way.
        var u = Self.secured()
        u.send("AUTH PLAIN \(Self.base64("\0nobody\0secret"))\r\n")
        #expect(Self.check(&u) == [535])
    }

    @Test func authNeedsTLSUnlessPlaintextIsAllowed() throws {
        var c = Conversation(Self.configuration())
        #expect(c.send("EHLO x\r\nAUTH PLAIN\r\n") == [250, 538])
        var plain = Conversation(Self.configuration(tls: nil, plaintext: true))
        #expect(plain.send("AUTH PLAIN\r\n") == [503])  // before EHLO
        #expect(plain.send("EHLO x\r\n") == [250])
        #expect(try #require(plain.lastReply).lines.contains("AUTH PLAIN LOGIN"))
        #expect(plain.send("AUTH LOGIN\r\n") == [334])
        var none = Conversation(Self.configuration(authentication: nil))
        #expect(none.send("EHLO x\r\nAUTH PLAIN\r\n") == [250, 502])
    }

    @Test func requiredAuthenticationGuardsMail() {
        var c = Self.secured(Self.configuration(require: true))
        #expect(c.send("MAIL FROM:<a@b>\r\n") == [530])
        c.send("AUTH PLAIN \(Self.base64("\0scanner\0secret"))\r\n")
        #expect(Self.check(&c) == [235])
        #expect(c.send("MAIL FROM:<a@b>\r\n") == [250])
    }

    @Test func strictBase64() {
        #expect(SMTPServerStateMachine.base64("c2Nhbm5lcg==") == Array("scanner".utf8))
        #expect(SMTPServerStateMachine.base64("YWJj") == Array("abc".utf8))
        #expect(SMTPServerStateMachine.base64("YWI=") == Array("ab".utf8))
        #expect(SMTPServerStateMachine.base64("") == [])
        #expect(SMTPServerStateMachine.base64("YWJ") == nil)
        #expect(SMTPServerStateMachine.base64("Y=Jj") == nil)
        #expect(SMTPServerStateMachine.base64("YW==Jj==") == nil)
        #expect(SMTPServerStateMachine.base64("Y===") == nil)
    }
}

/// The timeouts without sockets or waiting: time is a number passed in.
@Suite struct SMTPConnectionTimerTests {
    let configuration = SMTPConfiguration()

    @Test func commandTimeoutIsFiveMinutesSinceTheLastByte() {
        var timer = SMTPConnectionTimer(configuration: configuration, now: .zero)
        #expect(timer.nextDeadline == .seconds(300))
        #expect(timer.check(now: .seconds(299)) == nil)
        timer.received(octets: 6, now: .seconds(200))
        #expect(timer.check(now: .seconds(400)) == nil)
        #expect(timer.check(now: .seconds(500)) == .command)
        #expect(timer.longestSleep == .seconds(30))
    }

    @Test func dataTimeoutAndMinimumRate() {
        var timer = SMTPConnectionTimer(configuration: configuration, now: .zero)
        timer.awaitingData(now: .seconds(10))
        #expect(timer.nextDeadline == .seconds(40))  // the first rate window ends
        // 40 KiB in the first 30 s: fast enough; a new window starts.
        timer.received(octets: 40 * 1024, now: .seconds(20))
        #expect(timer.check(now: .seconds(40)) == nil)
        #expect(timer.nextDeadline == .seconds(70))
        // Then a trickle: a byte every 20 s never trips the 3-minute timeout, but the rate check.
        timer.received(octets: 1, now: .seconds(60))
        #expect(timer.check(now: .seconds(70)) == .tooSlow(octets: 1, in: .seconds(30)))

        var silent = SMTPConnectionTimer(configuration: SMTPConfiguration(minimumDataRate: 0), now: .zero)
        silent.awaitingData(now: .zero)
        #expect(silent.nextDeadline == .seconds(180))
        #expect(silent.check(now: .seconds(179)) == nil)
        #expect(silent.check(now: .seconds(180)) == .data)
    }

    @Test func noClientTimeoutWhileTheServerWorks() {
        var timer = SMTPConnectionTimer(configuration: configuration, now: .zero)
        timer.busy()
        #expect(timer.nextDeadline == nil)
        #expect(timer.check(now: .seconds(10_000)) == nil)
        timer.awaitingCommand(now: .seconds(10_000))
        #expect(timer.check(now: .seconds(10_301)) == .command)
    }
}
