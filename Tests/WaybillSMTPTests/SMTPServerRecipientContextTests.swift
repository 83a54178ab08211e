import Foundation
import Synchronization
import Testing
import WaybillCore
import WaybillSMTP

/// The RCPT policy sees the whole context (sender, AUTH user, client address, declared size), and
/// the envelope records the client address for the worker.
@Suite struct SMTPServerRecipientContextTests {
    /// What the policy was asked, across the server's threads.
    final class Seen: Sendable {
        let contexts = Mutex<[RecipientContext]>([])
        var all: [RecipientContext] { contexts.withLock { $0 } }
        func append(_ context: RecipientContext) { contexts.withLock { $0.append(context) } }
    }

    @Test func thePolicySeesTheContextAndTheEnvelopeTheClient() {
        let seen = Seen()
        var machine = SMTPServerStateMachine(configuration: SMTPConfiguration(hostname: "scan.example.com"), clientAddress: "10.0.0.5") {
            context in
            seen.append(context)
            return context.sender.hasSuffix("@office.example.com") ? .accept : .refuse("wrong sender")
        }
        var decoder = SMTPLineDecoder()
        func send(_ text: String) -> [SMTPServerStateMachine.Action] {
            decoder.feed(Array(text.utf8)).flatMap { machine.received($0) }
        }
        _ = machine.connected()
        _ = send("EHLO printer\r\nMAIL FROM:<mallory@evil.example> SIZE=1234\r\n")
        #expect(send("RCPT TO:<scan@scan.example.com>\r\n").contains { if case .reply(let reply) = $0 { reply.code == 550 } else { false } })
        #expect(
            seen.all
                == [
                    RecipientContext(
                        recipient: "scan@scan.example.com", sender: "mallory@evil.example", clientAddress: "10.0.0.5", declaredSize: 1234)
                ])
        _ = send("RSET\r\nMAIL FROM:<printer@office.example.com>\r\n")
        let actions = send("RCPT TO:<scan@scan.example.com>\r\nDATA\r\n")
        let envelope = SMTPEnvelope(
            helo: "printer", sender: "printer@office.example.com", recipients: ["scan@scan.example.com"], declaredSize: nil,
            clientAddress: "10.0.0.5")
        #expect(actions.contains(.receiveData(envelope)))
    }

    @Test func anEnvelopeSpooledBeforeTheClientWasRecordedStillDecodes() throws {
        let old = #"{"helo":"h","sender":"s@x","recipients":["scan@x"],"declaredSize":3,"authenticatedUser":"scanner"}"#
        let envelope = try JSONDecoder().decode(SMTPEnvelope.self, from: Data(old.utf8))
        #expect(envelope.clientAddress == nil && envelope.authenticatedUser == "scanner")
        let new = SMTPEnvelope(helo: "h", sender: "s@x", recipients: ["scan@x"], declaredSize: nil, clientAddress: "::1")
        #expect(try JSONDecoder().decode(SMTPEnvelope.self, from: JSONEncoder().encode(new)) == new)
    }

    static let script = """
        import smtplib, sys
        with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10) as s:
            s.ehlo("scanner")
            s.mail("mallory@evil.example")
            print("wrong-sender", *s.rcpt("invoices@localhost"))
            s.rset()
            s.mail("printer@office.example.com")
            print("right-sender", *s.rcpt("invoices@localhost"))
            print("local-network", *s.rcpt("lan@localhost"))
            print("other-network", *s.rcpt("far@localhost"))
            print("data", *s.data("Subject: scan\\r\\n\\r\\nbody\\r\\n"))
        """

    /// A live server on port 0 with real routing rules, and Python's smtplib as the client.
    @Test func senderAndNetworkRulesAtRCPT() async throws {
        let rules = try RoutingRules(
            configured: RoutingRule.rules(
                fromSetting: """
                    [{"match": "invoices@localhost", "from": "*@office.example.com", "action": "search"},
                     {"match": "lan@localhost", "network": "127.0.0.0/8", "action": "search"},
                     {"match": "far@localhost", "network": "10.0.0.0/8", "action": "search"}]
                    """), domains: [], policy: DestinationPolicy(folderRoots: [:], webhookPrefixes: []))
        let seen = Seen()
        let directory = URL(fileURLWithPath: NSTemporaryDirectory() + "waybill-smtp-\(UUID().uuidString)")
        let spool = try Spool(directory: directory)
        let server = SMTPServer(
            host: "127.0.0.1", port: 0,
            configuration: SMTPConfiguration(hostname: "test.waybill", maximumMessageSize: 1_000_000, greetingDelay: .zero), spool: spool,
            recipientPolicy: { recipient in
                seen.append(recipient)
                let decision = rules.decide(
                    RoutingContext(
                        recipient: recipient.recipient, sender: recipient.sender, authenticatedUser: recipient.authenticatedUser,
                        clientAddress: recipient.clientAddress, size: recipient.declaredSize))
                return decision.mayAccept ? .accept : .refuse(decision.reason)
            })
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self)
        let task = Task { try await server.run { continuation.yield($0) } }
        defer { task.cancel() }
        var ports = stream.makeAsyncIterator()
        let port = try #require(await ports.next())

        let (status, output) = try await python(Self.script, [String(port)])
        #expect(status == 0, "\(output)")
        #expect(output.contains("wrong-sender 550 b'5.1.1 <invoices@localhost>: no routing rule accepts this address'"), "\(output)")
        #expect(output.contains("right-sender 250"), "\(output)")
        #expect(output.contains("local-network 250"), "\(output)")
        #expect(output.contains("other-network 550"), "\(output)")
        #expect(output.contains("data 250"), "\(output)")
        #expect(seen.all.count == 4 && seen.all.allSatisfy { $0.clientAddress == "127.0.0.1" })

        let id = try #require(spool.pending().first)
        let envelope = try spool.envelope(id, as: SMTPEnvelope.self)
        #expect(envelope.clientAddress == "127.0.0.1")
        #expect(envelope.recipients == ["invoices@localhost", "lan@localhost"])
        #expect(envelope.sender == "printer@office.example.com")
    }
}
