import Foundation
import Testing
@testable import WaybillDelivery

/// Webhook delivery: the signature on its own, the verdicts on their own, then the transport against
/// a real HTTP(S) receiver in Python (Peers/webhook_receiver.py) that parses the multipart body and
/// checks the signature independently, the way docs/webhooks.md tells receivers to.
@Suite("Webhook")
struct WebhookTests {
    // MARK: - WebhookSigner

    @Suite("Signer")
    struct Signer {
        let secret = Array("whsec_test".utf8)
        let body = Array(#"{"hello":"wörld"}"#.utf8)
        let t = 1_767_225_600

        @Test("the header has the documented format (vector computed with Python's hmac)")
        func knownVector() {
            let header = WebhookSigner(secret: secret).header(timestamp: t, body: body)
            #expect(header == "t=1767225600,v1=4d5834ea913b1a3d64ae72a9cbf5ed9d5cf38608a0620e17192567111bd39b0f")
        }

        @Test("streaming the body in pieces signs the same as all at once")
        func streaming() {
            let signer = WebhookSigner(secret: secret)
            var signing = signer.begin(timestamp: t)
            signing.update(body[..<5])
            signing.update(body[5...])
            #expect(signing.header() == signer.header(timestamp: t, body: body))
        }

        @Test("verify accepts a good header, within the tolerance either side")
        func accepts() {
            let header = WebhookSigner(secret: secret).header(timestamp: t, body: body)
            let now = Date(timeIntervalSince1970: TimeInterval(t))
            #expect(WebhookSigner.verify(header: header, body: body, secret: secret, now: now))
            #expect(WebhookSigner.verify(header: header, body: Data(body), secret: secret, now: now + 299))
            #expect(WebhookSigner.verify(header: header, body: body, secret: secret, now: now - 299))
            // Rotation: any matching v1 will do; unknown schemes are ignored.
            let rotated = "t=\(t),v0=zz,v1=\(String(repeating: "0", count: 64)),\(header.split(separator: ",")[1])"
            #expect(WebhookSigner.verify(header: rotated, body: body, secret: secret, now: now))
        }

        @Test("verify rejects a tampered body, a wrong secret, a stale or future timestamp, a malformed header")
        func rejects() {
            let header = WebhookSigner(secret: secret).header(timestamp: t, body: body)
            let now = Date(timeIntervalSince1970: TimeInterval(t))
            var tampered = body
            tampered[3] ^= 0x01
            #expect(!WebhookSigner.verify(header: header, body: tampered, secret: secret, now: now))
            #expect(!WebhookSigner.verify(header: header, body: body + [0x20], secret: secret, now: now))
            #expect(!WebhookSigner.verify(header: header, body: body, secret: secret + [0x21], now: now))
            #expect(!WebhookSigner.verify(header: header, body: body, secret: secret, now: now + 301))
            #expect(!WebhookSigner.verify(header: header, body: body, secret: secret, now: now - 301))
            #expect(!WebhookSigner.verify(
                header: header, body: body, secret: secret, now: now + 31, tolerance: .seconds(30)))
            let mac = header.split(separator: ",")[1]
            for bad in [
                "", "t=\(t)", String(mac), "t=+\(t),\(mac)", "t=\(t),t=\(t),\(mac)",
                "t=\(t),v1=\(mac.dropFirst(4).dropLast())", "t=\(t + 1),\(mac)",
            ] {
                #expect(!WebhookSigner.verify(header: bad, body: body, secret: secret, now: now), "\(bad)")
            }
        }
    }

    // MARK: - Pure parts of the transport

    @Test("verdicts: 2xx success, 3xx and other 4xx permanent, 408/429/5xx temporary")
    func verdicts() throws {
        let url = "https://hooks.example.com/in"
        func kind(_ code: Int, location: String? = nil, retryAfter: String? = nil) -> DeliveryFailure.Kind? {
            let result = WebhookTransport.verdict(
                url: url, code: code, reasonPhrase: "Phrase", location: location, retryAfter: retryAfter, snippet: "no")
            if case .failure(let failure) = result { return failure.kind }
            return nil
        }
        for code in [200, 201, 202, 204, 299] { #expect(kind(code) == nil, "\(code)") }
        for code in [300, 301, 302, 303, 307, 308, 400, 401, 403, 404, 405, 409, 410, 413, 415, 422, 451, 499] {
            #expect(kind(code) == .permanent, "\(code)")
        }
        for code in [408, 429, 500, 502, 503, 504, 599] { #expect(kind(code) == .temporary, "\(code)") }

        let busy = WebhookTransport.verdict(
            url: url, code: 503, reasonPhrase: "Service Unavailable", location: nil, retryAfter: "120",
            snippet: "try later")
        let expected = DeliveryFailure.temporary(
            "\(url) answered 503 Service Unavailable (Retry-After: 120): try later")
        #expect(throws: expected) { try busy.get() }
        let moved = WebhookTransport.verdict(
            url: url, code: 302, reasonPhrase: "Found", location: "https://evil.example/", retryAfter: nil, snippet: "")
        #expect(throws: DeliveryFailure.permanent(
            "\(url) answered 302 Found, redirected to https://evil.example/; webhooks do not follow redirects")) {
            try moved.get()
        }
        let ok = WebhookTransport.verdict(
            url: url, code: 202, reasonPhrase: "Accepted", location: nil, retryAfter: nil, snippet: "queued")
        #expect(try ok.get() == WebhookResult(status: 202, responseSnippet: "queued"))
    }

    @Test("file names: quoted-string escapes, filename* only when not ASCII, no line breaks")
    func fileNames() {
        #expect(MultipartEnvelope.fileNameParameters("scan 7.pdf") == #"filename="scan 7.pdf""#)
        #expect(MultipartEnvelope.fileNameParameters(#"a"b\c.pdf"#) == #"filename="a\"b\\c.pdf""#)
        #expect(MultipartEnvelope.fileNameParameters("x\r\nContent-Type: evil.pdf")
            == #"filename="x__Content-Type: evil.pdf""#)
        #expect(MultipartEnvelope.fileNameParameters("Müller 1%.pdf")
            == #"filename="Müller 1%.pdf"; filename*=utf-8''M%C3%BCller%201%25.pdf"#)
        #expect(MultipartEnvelope.headerSafe("application/pdf\r\nX: y") == "application/pdf  X: y")
    }

    @Test("response snippets are printable and at most 200 bytes")
    func snippets() {
        #expect(WebhookTransport.printable(Array("ok\r\n\tdone\u{7}".utf8)) == "ok done")
        #expect(WebhookTransport.printable([0x66, 0xFF, 0x67]) == "f\u{FFFD}g")
    }

    // MARK: - Against a real receiver

    @Test("delivers: the receiver verifies the signature and gets the document, its name and the metadata")
    func delivers() async throws {
        let fileName = #"Lieferschein "Müller" №7.pdf"#
        let document = try TemporaryDocument(size: 300_000)
        let metadata = [
            "message_id": "<a1@example.com>", "sender": "Jürgen <j@example.com>", "job": "J-7", "pages": "3",
        ]
        try await withReceiver([]) { receiver in
            let result = try await withTransport { transport in
                try await transport.post(WebhookRequest(
                    url: receiver.url("/in"), document: document.url, fileName: fileName,
                    metadata: try JSONEncoder().encode(metadata), idempotencyKey: "wb-01HX-1"))
            }
            #expect(result == WebhookResult(status: 200, responseSnippet: "request 1 answered 200"))
            let records = try receiver.records()
            try #require(records.count == 1)
            let record = records[0]
            #expect(record.parse_error == nil)
            #expect(record.signature_valid)
            #expect(!record.signature_valid_with_wrong_secret)
            #expect(record.method == "POST" && record.path == "/in")
            #expect(record.media_type == "multipart/form-data")
            #expect(record.part_names == ["metadata", "document"])
            #expect(record.metadata_content_type == "application/json")
            #expect(record.metadata == metadata)
            #expect(record.document_content_type == "application/pdf")
            #expect(record.filename == fileName)
            #expect(record.filename_star == fileName)
            #expect(record.filename_star_charset?.lowercased() == "utf-8")
            #expect(record.document_size == 300_000)
            #expect(try receiver.document(1) == Data(contentsOf: document.url))
            #expect(record.content_length == record.body_length)
            #expect(record.headers["idempotency-key"] == "wb-01HX-1")
            #expect(record.headers["x-waybill-delivery"] == "wb-01HX-1")
            #expect(record.headers["user-agent"] == "Waybill/1")
            #expect(record.headers["x-waybill-signature"]?.hasPrefix("t=") == true)
        }
    }

    @Test("503 is temporary; the message names the URL and the status")
    func serviceUnavailable() async throws {
        try await withReceiver(["--statuses", "503"]) { receiver in
            let failure = try await postFailure(to: receiver.url("/in"))
            #expect(failure?.kind == .temporary)
            #expect(failure?.message.hasPrefix("\(receiver.url("/in")) answered 503 Service Unavailable") == true)
            #expect(failure?.message.contains("request 1 answered 503") == true)
        }
    }

    @Test("429 with Retry-After is temporary and says when")
    func tooManyRequests() async throws {
        try await withReceiver(["--statuses", "429", "--retry-after", "120"]) { receiver in
            let failure = try await postFailure(to: receiver.url("/in"))
            #expect(failure?.kind == .temporary)
            #expect(failure?.message.contains("429 Too Many Requests (Retry-After: 120)") == true)
        }
    }

    @Test("404 is permanent")
    func notFound() async throws {
        try await withReceiver(["--statuses", "404"]) { receiver in
            let failure = try await postFailure(to: receiver.url("/in"))
            #expect(failure?.kind == .permanent)
            #expect(failure?.message.contains("answered 404 Not Found") == true)
        }
    }

    @Test("a 302 is permanent and not followed, even to the same receiver")
    func redirect() async throws {
        // The receiver records any method, so a followed redirect (a GET, or a POST again) would show.
        try await withReceiver(["--statuses", "302,200", "--location", "/elsewhere"]) { receiver in
            let failure = try await postFailure(to: receiver.url("/in"))
            #expect(failure?.kind == .permanent)
            #expect(failure?.message.contains("redirected to /elsewhere; webhooks do not follow redirects") == true)
            try await Task.sleep(for: .milliseconds(500))
            #expect(try receiver.records().count == 1)
        }
    }

    @Test("a receiver that stalls is a temporary failure once the timeout passes")
    func stall() async throws {
        try await withReceiver(["--stall", "600"]) { receiver in
            let started = ContinuousClock.now
            let failure = try await postFailure(to: receiver.url("/in"), timeout: .seconds(2))
            let elapsed = ContinuousClock.now - started
            #expect(failure?.kind == .temporary)
            #expect(failure?.message == "\(receiver.url("/in")) did not answer within 2 s")
            // Generous for a loaded 2-core machine; the receiver would stall for ten minutes.
            #expect(elapsed < .seconds(120), "took \(elapsed) against a receiver stalling for 600 s")
        }
    }

    @Test("a refused connection is temporary")
    func refused() async throws {
        let port = try closedPort()
        let started = ContinuousClock.now
        let failure = try await postFailure(to: "http://127.0.0.1:\(port)/in", timeout: .seconds(300))
        #expect(failure?.kind == .temporary)
        #expect(failure?.message == "http://127.0.0.1:\(port)/in: connection refused (errno \(ECONNREFUSED))")
        // Failed as refused, not as the deadline (300 s): the queue, not the HTTP client, retries.
        // (No tighter bound on the time: in the full suite, tests that block the cooperative
        // threads delay every async test on this 2-core machine by a minute or more.)
        #expect(ContinuousClock.now - started < .seconds(300))
    }

    @Test("a missing document is permanent, before any connection")
    func missingDocument() async throws {
        let request = WebhookRequest(
            url: "http://127.0.0.1:\(try closedPort())/in", document: URL(fileURLWithPath: "/nonexistent/waybill.pdf"),
            fileName: "a.pdf", metadata: Data("{}".utf8), idempotencyKey: "k")
        let failure = try await withTransport { transport in await Self.failure { try await transport.post(request) } }
        #expect(failure?.kind == .permanent)
        #expect(failure?.message.contains("/nonexistent/waybill.pdf") == true)
    }

    @Test("a URL that is not http(s) is permanent")
    func badURL() async throws {
        let failure = try await postFailure(to: "ftp://127.0.0.1/in")
        #expect(failure?.kind == .permanent)
    }

    @Test("a retry carries the same idempotency key and a fresh valid signature")
    func retryKeepsKey() async throws {
        let document = try TemporaryDocument(size: 10_000)
        try await withReceiver(["--statuses", "503,200"]) { receiver in
            let request = WebhookRequest(
                url: receiver.url("/in"), document: document.url, fileName: "scan.pdf",
                metadata: Data(#"{"job":"J-1"}"#.utf8), idempotencyKey: "wb-retry-42")
            try await withTransport { transport in
                let first = await Self.failure { try await transport.post(request) }
                #expect(first?.kind == .temporary)
                let second = try await transport.post(request)
                #expect(second.status == 200)
            }
            let records = try receiver.records()
            try #require(records.count == 2)
            for record in records {
                #expect(record.signature_valid)
                #expect(record.headers["idempotency-key"] == "wb-retry-42")
                #expect(record.headers["x-waybill-delivery"] == "wb-retry-42")
                #expect(record.filename_star == nil)
            }
            #expect(try receiver.document(1) == receiver.document(2))
        }
    }

    @Test("a 20 MB document is streamed and arrives intact")
    func largeDocument() async throws {
        let size = 20 * 1024 * 1024
        let document = try TemporaryDocument(size: size)
        try await withReceiver([]) { receiver in
            let result = try await withTransport(timeout: .seconds(600)) { transport in
                try await transport.post(WebhookRequest(
                    url: receiver.url("/big"), document: document.url, fileName: "big.pdf",
                    metadata: Data(#"{"job":"J-big"}"#.utf8), idempotencyKey: "big-1"))
            }
            #expect(result.status == 200)
            let record = try #require(try receiver.records().first)
            #expect(record.signature_valid)
            #expect(record.document_size == size)
            #expect(try receiver.document(1) == Data(contentsOf: document.url))
        }
    }

    @Test("https: works with the receiver's CA as trustRoots, fails (temporary) without")
    func https() async throws {
        let certificate = try await TestCertificate.make()
        defer { try? FileManager.default.removeItem(at: certificate.directory) }
        let document = try TemporaryDocument(size: 50_000)
        try await withReceiver(["--tls-cert", certificate.certificate, "--tls-key", certificate.key]) { receiver in
            let url = "https://localhost:\(receiver.port)/in"
            let request = WebhookRequest(
                url: url, document: document.url, fileName: "tls.pdf", metadata: Data("{}".utf8),
                idempotencyKey: "tls-1")
            let result = try await withTransport(trustRoots: certificate.certificate) { try await $0.post(request) }
            #expect(result.status == 200)

            let untrusted = try await withTransport { transport in
                await Self.failure { try await transport.post(request) }
            }
            #expect(untrusted?.kind == .temporary)
            #expect(untrusted?.message == "\(url): TLS handshake failed: CERTIFICATE_VERIFY_FAILED")

            let records = try receiver.records()
            try #require(records.count == 1)
            #expect(records[0].signature_valid)
            #expect(try receiver.document(1) == Data(contentsOf: document.url))
        }
    }

    // MARK: - Helpers

    static let secret = Array("s3cret-for-webhook-tests".utf8)

    /// A transport of its own (so its own HTTPClient), shut down whatever `body` does.
    private func withTransport<T: Sendable>(
        timeout: Duration = .seconds(60), trustRoots: String? = nil, _ body: (WebhookTransport) async throws -> T
    ) async throws -> T {
        let transport = WebhookTransport(
            signer: WebhookSigner(secret: Self.secret), timeout: timeout, trustRoots: trustRoots)
        let result: Result<T, any Error>
        do { result = .success(try await body(transport)) } catch { result = .failure(error) }
        try await transport.shutdown()
        return try result.get()
    }

    /// The `DeliveryFailure` an attempt threw; records an issue if it succeeded or threw something else.
    private static func failure(_ attempt: () async throws -> WebhookResult) async -> DeliveryFailure? {
        do {
            let result = try await attempt()
            Issue.record("expected a DeliveryFailure, got \(result)")
        } catch let failure as DeliveryFailure {
            return failure
        } catch {
            Issue.record("expected a DeliveryFailure, got \(error)")
        }
        return nil
    }

    private func postFailure(to url: String, timeout: Duration = .seconds(60)) async throws -> DeliveryFailure? {
        let document = try TemporaryDocument(size: 1_000)
        let request = WebhookRequest(
            url: url, document: document.url, fileName: "scan.pdf", metadata: Data("{}".utf8), idempotencyKey: "k-1")
        return try await withTransport(timeout: timeout) { transport in
            await Self.failure { try await transport.post(request) }
        }
    }

    /// Runs `body` with a receiver started with `arguments`, and stops the receiver afterwards.
    private func withReceiver(_ arguments: [String], _ body: (Receiver) async throws -> Void) async throws {
        let receiver = try await Receiver.start(arguments, secret: Self.secret)
        let result: Result<Void, any Error>
        do { result = .success(try await body(receiver)) } catch { result = .failure(error) }
        await receiver.stop()
        try result.get()
    }
}

/// What the Python receiver wrote for one request.
private struct ReceivedRequest: Decodable {
    var number: Int
    var method: String
    var path: String
    var headers: [String: String]
    var content_length: Int
    var body_length: Int
    var signature_valid: Bool
    var signature_valid_with_wrong_secret: Bool
    var media_type: String?
    var part_names: [String?]?
    var metadata_content_type: String?
    var metadata: [String: String]?
    var document_content_type: String?
    var filename: String?
    var filename_star: String?
    var filename_star_charset: String?
    var document_sha256: String?
    var document_size: Int?
    var parse_error: String?
}

/// Peers/webhook_receiver.py as a child process. The process is touched by one test, and every
/// blocking call on it runs on a thread of its own (`onOwnThread`), never on the concurrency pool.
private final class Receiver: @unchecked Sendable {
    let process: Process
    let port: Int
    let directory: URL

    private init(process: Process, port: Int, directory: URL) {
        self.process = process
        self.port = port
        self.directory = directory
    }

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Peers/webhook_receiver.py").path

    static func start(_ arguments: [String], secret: [UInt8]) async throws -> Receiver {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory() + "waybill-webhook-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments =
            [script, "--secret", String(decoding: secret, as: UTF8.self), "--out", directory.path] + arguments
        let output = Pipe()
        process.standardOutput = output
        _ = FileManager.default.createFile(atPath: directory.appendingPathComponent("stderr.txt").path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: directory.appendingPathComponent("stderr.txt"))
        try process.run()
        // The first line, READY <port>; end of file (a crash) reads as an empty line.
        let line = await onOwnThread { () -> String in
            var bytes: [UInt8] = []
            while true {
                let data = output.fileHandleForReading.availableData
                if data.isEmpty { break }
                bytes += data
                if bytes.contains(UInt8(ascii: "\n")) { break }
            }
            return String(decoding: bytes, as: UTF8.self)
        }
        let port = Int(line.dropFirst(6).trimmingCharacters(in: .whitespacesAndNewlines))
        guard line.hasPrefix("READY "), let port else {
            kill(process.processIdentifier, SIGKILL)
            let stderr = (try? String(contentsOf: directory.appendingPathComponent("stderr.txt"), encoding: .utf8))
                ?? ""
            throw ReceiverError(message: "the receiver did not start: \(line) \(stderr)")
        }
        return Receiver(process: process, port: port, directory: directory)
    }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    /// The requests recorded so far, in order.
    func records() throws -> [ReceivedRequest] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasPrefix("request-") && $0.hasSuffix(".json") }
        return try names.map { name in
            let data = try Data(contentsOf: directory.appendingPathComponent(name))
            return try JSONDecoder().decode(ReceivedRequest.self, from: data)
        }.sorted { $0.number < $1.number }
    }

    /// The document bytes of request `number`.
    func document(_ number: Int) throws -> Data {
        try Data(contentsOf: directory.appendingPathComponent("request-\(number).document"))
    }

    func stop() async {
        let process = self.process
        await onOwnThread {
            // SIGKILL: the signal mask a child inherits from a test thread may block SIGTERM.
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }
}

private struct ReceiverError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// A file of random bytes that goes away with the value.
private final class TemporaryDocument: Sendable {
    let url: URL

    init(size: Int) throws {
        url = URL(fileURLWithPath: NSTemporaryDirectory() + "waybill-webhook-doc-\(UUID().uuidString).pdf")
        _ = FileManager.default.createFile(atPath: url.path, contents: nil)
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        var generator = SystemRandomNumberGenerator()
        var left = size
        while left > 0 {
            let count = min(left, 1 << 20)
            var chunk = [UInt8](repeating: 0, count: count)
            for index in stride(from: 0, to: count, by: 8) {
                withUnsafeBytes(of: generator.next() as UInt64) { random in
                    for offset in 0..<min(8, count - index) { chunk[index + offset] = random[offset] }
                }
            }
            try handle.write(contentsOf: chunk)
            left -= count
        }
    }

    deinit { try? FileManager.default.removeItem(at: url) }
}

/// A self-signed certificate for localhost and 127.0.0.1, made with the openssl CLI.
private struct TestCertificate: Sendable {
    let directory: URL
    var certificate: String { directory.appendingPathComponent("cert.pem").path }
    var key: String { directory.appendingPathComponent("key.pem").path }

    static func make() async throws -> TestCertificate {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory() + "waybill-webhook-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let made = TestCertificate(directory: directory)
        let (status, output) = try await run("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", made.key, "-out", made.certificate,
        ])
        guard status == 0 else { throw ReceiverError(message: "openssl failed: \(output)") }
        return made
    }
}

/// A port on 127.0.0.1 that nothing listens on: bound, then closed.
private func closedPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw ReceiverError(message: "socket() failed") }
    // Kept bound and never listening, for the life of the test process: connections are refused,
    // and no other test's server can be given this port (a closed port can be, and then answers).
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
        }
    }
    guard bound else { throw ReceiverError(message: "bind() failed") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Runs a command to completion on a thread of its own.
private func run(_ executable: String, _ arguments: [String]) async throws -> (Int32, String) {
    try await onOwnThread {
        Result { () throws -> (Int32, String) in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return (process.terminationStatus, text)
        }
    }.get()
}

/// Runs blocking work (pipe reads, process waits) on a thread of its own: not on the concurrency
/// pool, whose few threads on a 2-core machine the transport's tasks need, and not on Dispatch's
/// global queues, which share threads with it on Linux.
private func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: body()) }.start()
    }
}
