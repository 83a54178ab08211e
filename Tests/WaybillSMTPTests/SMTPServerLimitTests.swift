import Foundation
import Synchronization
import Testing
import WaybillSMTP

/// Connection limits, timeouts on a stepped clock, the greeting delay, and clients on the wrong port.
@Suite(.serialized) struct SMTPServerLimitTests {
    static func configuration(
        greetingDelay: Duration = .zero, maximumConnections: Int = 200, perAddress: Int = 20
    ) -> SMTPConfiguration {
        SMTPConfiguration(
            hostname: "test.waybill", maximumConnections: maximumConnections, maximumConnectionsPerAddress: perAddress,
            greetingDelay: greetingDelay)
    }

    @Test func idleClientsAreClosedAfterTheCommandTimeout() async throws {
        let clock = TestClock()
        try await SMTPServerTests.withServer(Self.configuration(), clock: clock) { port, _ in
            let client = try LineClient(port: port)
            #expect(await client.reply().first?.hasPrefix("220 ") == true)
            await client.send("EHLO idle\r\n")
            #expect(await client.reply().last?.hasPrefix("250 ") == true)
            clock.advance(by: .seconds(299))
            await client.send("NOOP\r\n")
            #expect(await client.reply() == ["250 2.0.0 Ok"])  // 299 s of silence are allowed
            clock.advance(by: .seconds(301))
            let rest = await client.rest()
            #expect(rest.hasPrefix("421 4.4.2 test.waybill Timeout waiting for a command"), "\(rest)")
        }
    }

    static let dataStart = "EHLO slow\r\nMAIL FROM:<a@b>\r\nRCPT TO:<scan@x>\r\nDATA\r\n"

    @Test func stalledDataIsClosedAfterTheDataTimeout() async throws {
        let clock = TestClock()
        let configuration = SMTPConfiguration(hostname: "test.waybill", greetingDelay: .zero, minimumDataRate: 0)
        try await SMTPServerTests.withServer(configuration, clock: clock) { port, spool in
            let client = try LineClient(port: port)
            _ = await client.reply()
            await client.send(Self.dataStart + "Subject: half\r\n")
            _ = await client.reply()  // EHLO
            _ = await client.reply()  // MAIL
            _ = await client.reply()  // RCPT
            #expect(await client.reply().first?.hasPrefix("354") == true)
            clock.advance(by: .seconds(181))
            let rest = await client.rest()
            #expect(rest.hasPrefix("421 4.4.2 test.waybill Timeout waiting for data"), "\(rest)")
            #expect(spool.pending().isEmpty)
        }
    }

    @Test func tricklingDataIsCutByTheMinimumRate() async throws {
        let clock = TestClock()
        try await SMTPServerTests.withServer(Self.configuration(), clock: clock) { port, spool in
            let client = try LineClient(port: port)
            _ = await client.reply()
            await client.send(Self.dataStart)
            for _ in 0..<3 { _ = await client.reply() }
            #expect(await client.reply().first?.hasPrefix("354") == true)
            await client.send("Subject: a byte at a time\r\n")
            clock.advance(by: .seconds(31))  // 27 octets in 31 s, far under 1 KiB/s
            let rest = await client.rest()
            #expect(rest.hasPrefix("421 4.4.2 test.waybill Data arrives too slowly"), "\(rest)")
            #expect(spool.pending().isEmpty)
        }
    }

    @Test func earlyTalkersAreRefusedAndPatientClientsGreeted() async throws {
        let clock = TestClock()
        let logs = LogCapture()
        try await SMTPServerTests.withServer(Self.configuration(greetingDelay: .seconds(1)), clock: clock, logs: logs) { port, _ in
            let early = try LineClient(port: port)
            await early.send("EHLO eager\r\n")
            try await Task.sleep(for: .milliseconds(100))  // let the event loop read it
            await clock.waitForSleeper(until: .seconds(1))
            clock.advance(by: .seconds(1))
            #expect(await early.rest().hasPrefix("554 5.5.0 You talked before the greeting"))
            #expect(logs.text.contains("refused an early talker"))

            let patient = try LineClient(port: port)
            await clock.waitForSleeper(until: .seconds(2))
            clock.advance(by: .seconds(1))
            #expect(await patient.reply() == ["220 test.waybill ESMTP Waybill"])
            await patient.send("QUIT\r\n")
            #expect(await patient.reply() == ["221 2.0.0 Bye"])
        }
    }

    static let implicitTLSScript = """
        import socket, ssl, sys
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
        try:
            ctx.wrap_socket(s, server_hostname="localhost")
            print("handshake succeeded?")
        except (ssl.SSLError, OSError) as e:
            print("handshake failed", type(e).__name__)
        """

    @Test(arguments: [Duration.zero, .seconds(1)])
    func aTLSHandshakeOnThePlainPortIsNamedInTheLog(_ delay: Duration) async throws {
        let clock = TestClock()
        let logs = LogCapture()
        try await SMTPServerTests.withServer(Self.configuration(greetingDelay: delay), clock: clock, logs: logs) { port, _ in
            let advancing = Task {
                // With a greeting delay the ClientHello arrives inside it: let the delay pass.
                if delay > .zero {
                    await clock.waitForSleeper(until: delay)
                    clock.advance(by: delay)
                }
            }
            let (status, output) = try await python(Self.implicitTLSScript, [String(port)])
            await advancing.value
            #expect(status == 0, "\(output)")
            #expect(output.contains("handshake failed"), "\(output)")
            #expect(
                logs.text.contains(
                    "sent a TLS handshake on the plain SMTP port: it is probably configured for implicit TLS (SMTPS, port 465); "
                        + "configure it for STARTTLS or plain SMTP"), "\(logs.text)")
            #expect(logs.text.contains("client 127.0.0.1"), "\(logs.text)")
        }
    }

    @Test func connectionsAreLimitedInTotalAndPerAddress() async throws {
        try await SMTPServerTests.withServer(Self.configuration(perAddress: 2)) { port, _ in
            let first = try LineClient(port: port)
            let second = try LineClient(port: port)
            #expect(await first.reply().first?.hasPrefix("220") == true)
            #expect(await second.reply().first?.hasPrefix("220") == true)
            let third = try LineClient(port: port)
            #expect(await third.rest() == "421 4.7.0 Too many connections; try again later")
            await first.send("QUIT\r\n")
            #expect(await first.reply() == ["221 2.0.0 Bye"])
            // The slot is free once the server has seen the close; allow it a moment.
            var greeted = false
            for _ in 0..<50 where !greeted {
                let again = try LineClient(port: port)
                greeted = await again.reply().first?.hasPrefix("220") == true
                if !greeted { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(greeted)
        }
        try await SMTPServerTests.withServer(Self.configuration(maximumConnections: 1)) { port, _ in
            let first = try LineClient(port: port)
            #expect(await first.reply().first?.hasPrefix("220") == true)
            let second = try LineClient(port: port)
            #expect(await second.rest().hasPrefix("421 4.7.0 Too many connections"))
        }
    }

    @Test func everyAcceptedMessageIsLoggedOnce() async throws {
        let logs = LogCapture()
        try await SMTPServerTests.withServer(Self.configuration(), logs: logs) { port, spool in
            let client = try LineClient(port: port)
            _ = await client.reply()
            await client.send(Self.dataStart + "Subject: logged\r\n\r\nbody\r\n.\r\nQUIT\r\n")
            let rest = await client.rest()
            #expect(rest.contains("250 2.0.0 Ok: queued as"), "\(rest)")
            let id = try #require(spool.pending().first)
            let accepted = logs.lines.withLock { $0.filter { $0.contains("accepted message") } }
            #expect(accepted.count == 1)
            let line = try #require(accepted.first)
            #expect(line.contains("id=\(id)") && line.contains("size=25") && line.contains("recipients=scan@x") && line.contains("elapsed="))
        }
    }
}
