import Foundation
import Testing
import WaybillCore
import WaybillSMTP

/// STARTTLS and AUTH on a live server, with Python's smtplib and ssl as the client.
@Suite(.serialized) struct SMTPServerSecurityTests {
    static let certificate = Result { try TestCertificate.make() }

    static func configuration(_ certificate: TestCertificate, require: Bool = false) -> SMTPConfiguration {
        SMTPConfiguration(
            hostname: "test.waybill", maximumMessageSize: 1_000_000,
            tls: SMTPTLS(certificateChainPath: certificate.certificate, privateKeyPath: certificate.key),
            authentication: SMTPAuthentication(users: ["scanner": PasswordHash.make(password: "s3cret", iterations: 1000)]),
            requireAuthentication: require, greetingDelay: .zero)
    }

    /// Argument 1: port, 2: CA file, 3: how to log in (plain, login, login-no-initial, wrong).
    static let starttlsScript = """
        import smtplib, ssl, sys
        port, cafile, how = int(sys.argv[1]), sys.argv[2], sys.argv[3]
        ctx = ssl.create_default_context(cafile=cafile)
        ctx.check_hostname = False  # the certificate is verified against the CA file; the host is 127.0.0.1
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
            s.ehlo("scanner")
            print("before", s.has_extn("starttls"), s.has_extn("auth"))
            try:
                s.login("scanner", "s3cret")
            except smtplib.SMTPNotSupportedError:
                print("no auth in clear")
            s.starttls(context=ctx)
            s.ehlo("scanner")
            print("after", s.has_extn("starttls"), s.esmtp_features.get("auth").strip())
            s.user, s.password = "scanner", "s3cret"
            try:
                if how == "plain":
                    print(s.auth("PLAIN", s.auth_plain))
                elif how == "login":
                    print(s.auth("LOGIN", s.auth_login))
                elif how == "login-no-initial":
                    print(s.auth("LOGIN", s.auth_login, initial_response_ok=False))
                else:
                    s.password = "wrong"
                    print(s.auth("LOGIN", s.auth_login))
            except smtplib.SMTPAuthenticationError as e:
                print("auth failed", e.smtp_code, e.smtp_error.decode())
            try:
                print(s.sendmail("scanner@office.example.com", ["scan@localhost"], "Subject: over tls\\r\\n\\r\\nbody\\r\\n"))
            except smtplib.SMTPSenderRefused as e:
                print("sender refused", e.smtp_code)
        """

    @Test(arguments: ["plain", "login", "login-no-initial"])
    func smtplibStartsTLSAndLogsIn(_ how: String) async throws {
        let certificate = try Self.certificate.get()
        try await SMTPServerTests.withServer(Self.configuration(certificate)) { port, spool in
            let (status, output) = try await python(Self.starttlsScript, [String(port), certificate.certificate, how])
            #expect(status == 0, "\(output)")
            #expect(output.contains("before True False"), "\(output)")
            #expect(output.contains("no auth in clear"), "\(output)")
            #expect(output.contains("after False PLAIN LOGIN"), "\(output)")
            #expect(output.contains("(235, b'2.7.0 Authentication successful')"), "\(output)")
            #expect(output.contains("{}"), "\(output)")
            let id = try #require(spool.pending().first)
            let envelope = try spool.envelope(id, as: SMTPEnvelope.self)
            #expect(envelope.authenticatedUser == "scanner")
            #expect(envelope.helo == "scanner")
        }
    }

    @Test func wrongPasswordsAreRefusedAndRequiredAuthenticationHolds() async throws {
        let certificate = try Self.certificate.get()
        try await SMTPServerTests.withServer(Self.configuration(certificate, require: true)) { port, spool in
            let (status, output) = try await python(Self.starttlsScript, [String(port), certificate.certificate, "wrong"])
            #expect(status == 0, "\(output)")
            #expect(output.contains("auth failed 535 5.7.8 Authentication credentials invalid"), "\(output)")
            #expect(output.contains("sender refused 530"), "\(output)")
            #expect(spool.pending().isEmpty)
        }
    }

    /// CVE-2011-0411: commands pipelined behind STARTTLS, in the same packet, must not be run
    /// inside the TLS session. `HELP` would answer 214; after the handshake the first reply must
    /// be the one to the client's own `NOOP`. A client that never starts TLS gets nothing either.
    static let injectionScript = """
        import socket, ssl, sys
        port, cafile = int(sys.argv[1]), sys.argv[2]
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        f = s.makefile("rb")
        def reply(f):
            lines = []
            while True:
                line = f.readline().decode()
                lines.append(line.strip())
                if line[3:4] != "-":
                    return lines
        print("greeting", reply(f))
        s.sendall(b"EHLO probe\\r\\n")
        print("ehlo", reply(f))
        s.sendall(b"STARTTLS\\r\\nHELP\\r\\nMAIL FROM:<evil@x>\\r\\n")
        print("starttls", reply(f))
        ctx = ssl.create_default_context(cafile=cafile)
        ctx.check_hostname = False
        t = ctx.wrap_socket(s, server_hostname="localhost")
        g = t.makefile("rb")
        t.sendall(b"NOOP\\r\\n")
        print("first in tls", reply(g))
        t.sendall(b"MAIL FROM:<a@b>\\r\\n")
        print("mail before ehlo", reply(g))
        t.sendall(b"EHLO probe\\r\\nMAIL FROM:<a@b>\\r\\nQUIT\\r\\n")
        print("ehlo again", reply(g))
        print("mail", reply(g))
        print("quit", reply(g))
        """

    @Test func commandsPipelinedBehindStarttlsAreDiscarded() async throws {
        let certificate = try Self.certificate.get()
        try await SMTPServerTests.withServer(Self.configuration(certificate)) { port, _ in
            let (status, output) = try await python(Self.injectionScript, [String(port), certificate.certificate])
            #expect(status == 0, "\(output)")
            #expect(output.contains("starttls ['220 2.0.0 Ready to start TLS']"), "\(output)")
            #expect(output.contains("first in tls ['250 2.0.0 Ok']"), "\(output)")
            #expect(!output.contains("214"), "\(output)")
            #expect(output.contains("mail before ehlo ['503 5.5.1 Say EHLO first']"), "\(output)")
            #expect(output.contains("mail ['250 2.1.0 Ok']"), "\(output)")
            #expect(output.contains("quit ['221 2.0.0 Bye']"), "\(output)")
        }
    }

    @Test func unreadableCertificatesStopTheStartWithAClearError() async throws {
        let certificate = try Self.certificate.get()
        let spool = try Spool(directory: URL(fileURLWithPath: NSTemporaryDirectory() + "waybill-smtp-\(UUID().uuidString)"))
        for (chain, key, expected) in [
            ("/nonexistent/cert.pem", certificate.key, "cannot read the TLS certificate chain /nonexistent/cert.pem"),
            (certificate.certificate, "/nonexistent/key.pem", "cannot read the TLS private key /nonexistent/key.pem"),
            (certificate.key, certificate.key, "cannot read the TLS certificate chain \(certificate.key)"),
            (certificate.certificate, certificate.certificate, "cannot read the TLS private key \(certificate.certificate)"),
        ] {
            let server = SMTPServer(
                host: "127.0.0.1", port: 0,
                configuration: SMTPConfiguration(tls: SMTPTLS(certificateChainPath: chain, privateKeyPath: key)), spool: spool,
                recipientPolicy: { _ in .accept })
            do {
                try await server.run()
                Issue.record("the server started with \(chain), \(key)")
            } catch let error as WaybillError {
                #expect(error.code == .configError)
                #expect(error.message.contains(expected), "\(error.message)")
            }
        }
    }
}
