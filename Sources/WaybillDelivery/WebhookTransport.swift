public import AsyncHTTPClient
public import Foundation
import NIOCore
// HTTPHeaders, HTTPMethod, HTTPResponseStatus: AsyncHTTPClient's API is made of NIOHTTP1 types.
import NIOHTTP1
import NIOPosix
import NIOSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One webhook delivery: the document and the metadata the caller built for it.
public struct WebhookRequest: Sendable {
    /// The receiver. The caller has already checked it against the allow-list.
    public var url: String
    /// The file to send. Read twice (to sign, then to send), so it must not change meanwhile;
    /// spooled documents never do.
    public var document: URL
    /// The name the receiver sees in the `document` part's Content-Disposition.
    public var fileName: String
    public var contentType: String
    /// The JSON of the `metadata` part (message id, job, directive, pages, sender, received-at…).
    public var metadata: Data
    /// The same on every attempt of one delivery, so a receiver can drop repeats.
    public var idempotencyKey: String

    public init(
        url: String, document: URL, fileName: String, contentType: String = "application/pdf", metadata: Data,
        idempotencyKey: String
    ) {
        self.url = url
        self.document = document
        self.fileName = fileName
        self.contentType = contentType
        self.metadata = metadata
        self.idempotencyKey = idempotencyKey
    }
}

/// A receiver's 2xx answer.
public struct WebhookResult: Sendable, Hashable {
    public var status: Int
    /// The first 200 bytes of the response body at most, control characters replaced and
    /// whitespace collapsed, for the delivery log.
    public var responseSnippet: String

    public init(status: Int, responseSnippet: String) {
        self.status = status
        self.responseSnippet = responseSnippet
    }
}

/// Posts documents to webhook receivers: one signed multipart/form-data POST per attempt.
///
/// The body is `metadata` (application/json) then `document` (RFC 7578), streamed from the file in
/// 64 KiB chunks with a known Content-Length. It is read twice: once to compute the HMAC that goes
/// in a header (headers precede the body), then again to send it; neither pass holds the file.
///
/// Answers (the queue decides on the `DeliveryFailure` kind alone):
/// - 2xx: delivered.
/// - 3xx: permanent. Redirects are never followed: the allow-list vetted this URL, not where it
///   points to. (AsyncHTTPClient's default, and `HTTPClient.shared`, follow a 302/303 with a GET
///   to any host, so this transport wants a client configured with `.disallow`; see `init`.)
/// - 408, 429, 5xx: temporary, with the receiver's Retry-After in the message.
/// - other 4xx: permanent.
/// - refused connections, DNS and TLS failures, the deadline passing: temporary.
///
/// A cancelled task gets `CancellationError`, not a `DeliveryFailure`: the attempt was not judged.
public struct WebhookTransport: Sendable {
    public let signer: WebhookSigner
    public let timeout: Duration
    public let userAgent: String
    private let client: HTTPClient
    private let ownsClient: Bool
    private let tlsConfiguration: TLSConfiguration?

    /// Bytes read from the document per chunk, in both passes.
    static let chunkSize = 64 * 1024
    /// How much of a response body ends up in a result or a failure message.
    static let snippetLimit = 200

    /// - Parameters:
    ///   - httpClient: nil (the default) makes a client of the transport's own, with redirects
    ///     disallowed; `shutdown()` it when done. A client passed in must be configured like
    ///     `WebhookTransport.httpClientConfiguration()` (at least `redirectConfiguration: .disallow`),
    ///     and stays the caller's to shut down.
    ///   - timeout: The deadline for a whole attempt: signing, connecting, sending, and the response
    ///     head; reading the response body's first bytes gets whatever is left of it.
    ///   - trustRoots: A PEM file of CA certificates to trust instead of the system's (tests, private CAs).
    public init(
        signer: WebhookSigner, httpClient: HTTPClient? = nil, timeout: Duration = .seconds(60),
        userAgent: String = "Waybill/1", trustRoots: String? = nil
    ) {
        self.signer = signer
        self.timeout = timeout
        self.userAgent = userAgent
        if let httpClient {
            client = httpClient
            ownsClient = false
        } else {
            client = HTTPClient(
                eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: Self.httpClientConfiguration())
            ownsClient = true
        }
        if let trustRoots {
            // Per request rather than per client, so a shared client can serve both kinds.
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(trustRoots)
            tlsConfiguration = tls
        } else {
            tlsConfiguration = nil
        }
    }

    /// What a client shared with this transport must look like: redirects disallowed (see the type's
    /// documentation), no decompression of the few bytes read back.
    public static func httpClientConfiguration() -> HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, decompression: .disabled)
        // The delivery queue retries with its own backoff: a refused connection fails this attempt
        // at once instead of holding a delivery worker for the connect timeout.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(10)
        return configuration
    }

    /// Shuts down the client the transport made (AsyncHTTPClient requires it before the last
    /// reference goes); does nothing for a client passed in.
    public func shutdown() async throws {
        if ownsClient { try await client.shutdown() }
    }

    /// Makes one attempt. Returns the 2xx answer or throws a `DeliveryFailure` (or
    /// `CancellationError`). `now` is the signature's timestamp.
    public func post(_ request: WebhookRequest, now: Date = Date()) async throws -> WebhookResult {
        let url = request.url
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = parsed.host, !host.isEmpty
        else {
            throw DeliveryFailure.permanent("\(url) is not an http(s) URL")
        }
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        let clockDeadline = ContinuousClock.now + timeout

        let envelope = MultipartEnvelope(request: request)
        let body: MultipartBody
        var signing = signer.begin(timestamp: Int(now.timeIntervalSince1970.rounded(.down)))
        do {
            // First pass: the MAC, which goes in a header and so must be known before the body is sent.
            let document = try await DocumentFile.open(request.document)
            body = MultipartBody(head: envelope.head, document: document, tail: envelope.tail)
            var signed: Int64 = 0
            for try await chunk in body {
                chunk.withUnsafeReadableBytes { signing.update($0) }
                signed += Int64(chunk.readableBytes)
            }
            assert(signed == body.count)
        } catch {
            throw Self.failure(error, url: url, timeout: timeout)
        }

        var outgoing = HTTPClientRequest(url: url)
        outgoing.method = .POST
        outgoing.headers.add(name: "Content-Type", value: "multipart/form-data; boundary=\(envelope.boundary)")
        outgoing.headers.add(name: WebhookSigner.headerName, value: signing.header())
        outgoing.headers.add(name: "Idempotency-Key", value: request.idempotencyKey)
        outgoing.headers.add(name: "X-Waybill-Delivery", value: request.idempotencyKey)
        outgoing.headers.add(name: "User-Agent", value: userAgent)
        outgoing.body = .stream(body, length: .known(body.count))
        outgoing.tlsConfiguration = tlsConfiguration

        let response: HTTPClientResponse
        do {
            response = try await client.execute(outgoing, deadline: deadline)
        } catch {
            throw Self.failure(error, url: url, timeout: timeout)
        }
        let head = await Self.prefix(of: response.body, limit: Self.snippetLimit, until: clockDeadline)
        let snippet = Self.printable(head)
        return try Self.verdict(
            url: url, code: Int(response.status.code), reasonPhrase: response.status.reasonPhrase,
            location: response.headers.first(name: "Location"), retryAfter: response.headers.first(name: "Retry-After"),
            snippet: snippet
        ).get()
    }

    // MARK: - Judging answers (pure, tested without sockets)

    static func verdict(
        url: String, code: Int, reasonPhrase: String, location: String?, retryAfter: String?, snippet: String
    ) -> Result<WebhookResult, DeliveryFailure> {
        let answered = "\(url) answered \(code) \(reasonPhrase)"
        let said = snippet.isEmpty ? "" : ": \(snippet)"
        switch code {
        case 200..<300:
            return .success(WebhookResult(status: code, responseSnippet: snippet))
        case 300..<400:
            let target = location.map { "redirected to \(printable(Array($0.utf8)))" } ?? "a redirect without Location"
            return .failure(.permanent("\(answered), \(target); webhooks do not follow redirects"))
        case 408, 429, 500..<600:
            let wait = retryAfter.map { " (Retry-After: \(printable(Array($0.utf8))))" } ?? ""
            return .failure(.temporary("\(answered)\(wait)\(said)"))
        case 400..<500:
            return .failure(.permanent("\(answered)\(said)"))
        default:
            // 1xx as a final answer, or beyond 599: a broken receiver, which may yet be fixed.
            return .failure(.temporary("\(answered)\(said)"))
        }
    }

    /// Maps what `HTTPClient.execute` (or reading the document) threw to the queue's terms.
    static func failure(_ error: any Error, url: String, timeout: Duration) -> any Error {
        if let failure = error as? DeliveryFailure { return failure }
        if error is CancellationError || Task.isCancelled { return CancellationError() }
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded:
                return DeliveryFailure.temporary("\(url) did not answer within \(describe(timeout))")
            case .connectTimeout, .tlsHandshakeTimeout, .readTimeout, .writeTimeout:
                return DeliveryFailure.temporary("\(url): \(error) (gave up after \(describe(timeout)) at most)")
            case .invalidURL, .emptyHost, .emptyScheme:
                return DeliveryFailure.permanent("\(url) cannot be posted to: \(error)")
            default:
                if "\(error)".contains("invalidHeaderField") || "\(error)".contains("unsupportedScheme") {
                    return DeliveryFailure.permanent("\(url) cannot be posted to: \(error)")
                }
            }
        }
        // Connection refused, DNS, TLS (NIOSSLError, certificate verification), resets: the network
        // or the receiver may recover.
        return DeliveryFailure.temporary("\(url): \(describe(networkError: error))")
    }

    /// A network error in words for `waybill queue show`, without NIO's internals where they add nothing.
    static func describe(networkError error: any Error) -> String {
        if let error = error as? IOError {
            // AsyncHTTPClient retries refused connections until its connect timeout, then reports the last.
            return String(cString: strerror(error.errnoCode)).lowercased() + " (errno \(error.errnoCode))"
        }
        let text = "\(error)"
        if error is NIOSSLError || error is NIOSSLExtraError {
            // BoringSSL's reason ("CERTIFICATE_VERIFY_FAILED") rather than the source path around it.
            if let range = text.range(of: #"OPENSSL_internal:[A-Z0-9_]+"#, options: .regularExpression) {
                return "TLS handshake failed: " + text[range].dropFirst("OPENSSL_internal:".count)
            }
            return "TLS handshake failed: \(text)"
        }
        return text
    }

    static func describe(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        if attoseconds == 0 { return "\(seconds) s" }
        return "\(seconds * 1000 + attoseconds / 1_000_000_000_000_000) ms"
    }

    /// Up to `limit` bytes of a response body, or what arrived before `deadline`. A receiver that
    /// sends its head and then stalls must not hold the attempt past its deadline; whatever the
    /// body does, the status already decided the outcome.
    static func prefix(
        of body: HTTPClientResponse.Body, limit: Int, until deadline: ContinuousClock.Instant
    ) async -> [UInt8] {
        await withTaskGroup(of: [UInt8]?.self) { group in
            group.addTask {
                var bytes: [UInt8] = []
                do {
                    for try await chunk in body {
                        bytes += chunk.readableBytesView.prefix(limit - bytes.count)
                        if bytes.count >= limit { break }
                    }
                } catch {
                    // A body cut short still has its first bytes to show.
                }
                return bytes
            }
            group.addTask {
                try? await Task.sleep(until: deadline, clock: .continuous)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? []
        }
    }

    /// Bytes from a peer made fit for a log line: controls become spaces (runs collapsed), invalid
    /// UTF-8 becomes U+FFFD.
    static func printable(_ bytes: [UInt8]) -> String {
        let cleaned = bytes.map { $0 < 0x20 || $0 == 0x7F ? UInt8(ascii: " ") : $0 }
        let text = String(decoding: cleaned, as: UTF8.self)
        return text.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    }
}

// MARK: - The body

/// The multipart/form-data framing around the document (RFC 7578, RFC 2046 §5.1.1).
struct MultipartEnvelope {
    let boundary: String
    /// The metadata part and the document part's header, up to the document's first byte.
    let head: ByteBuffer
    /// CRLF and the close delimiter.
    let tail: ByteBuffer

    init(request: WebhookRequest) {
        // 128 random bits: a collision with the document's bytes is not a practical concern.
        var generator = SystemRandomNumberGenerator()
        let random = (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        boundary = "waybill-" + WebhookSigner.Signing.hex(random)

        var head = ByteBuffer()
        head.writeString("--\(boundary)\r\n")
        head.writeString("Content-Disposition: form-data; name=\"metadata\"\r\n")
        head.writeString("Content-Type: application/json\r\n\r\n")
        head.writeBytes(request.metadata)
        head.writeString("\r\n--\(boundary)\r\n")
        head.writeString("Content-Disposition: form-data; name=\"document\"; ")
        head.writeString("\(Self.fileNameParameters(request.fileName))\r\n")
        head.writeString("Content-Type: \(Self.headerSafe(request.contentType))\r\n\r\n")
        self.head = head

        var tail = ByteBuffer()
        tail.writeString("\r\n--\(boundary)--\r\n")
        self.tail = tail
    }

    /// `filename="…"` as RFC 7578 §4.2 has it: UTF-8 as is, `"` and `\` escaped as in a quoted-string
    /// (controls, which no file name needs, become `_`). Receivers that look for RFC 6266/8187's
    /// `filename*` (Python's `email`, Go's `mime`) find it too when the name is not ASCII, with the
    /// same name percent-encoded; both parameters always agree.
    static func fileNameParameters(_ fileName: String) -> String {
        var quoted = ""
        for scalar in fileName.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F: quoted += "_"
            default: quoted.unicodeScalars.append(scalar)
            }
        }
        var parameters = "filename=\"\(quoted)\""
        if !fileName.unicodeScalars.allSatisfy(\.isASCII) {
            parameters += "; filename*=utf-8''" + percentEncoded(fileName)
        }
        return parameters
    }

    /// RFC 8187 §3.2.1 `value-chars`: attr-char as is, every other byte as %XX.
    static func percentEncoded(_ text: String) -> String {
        let attrChar = Set("!#$&+-.^_`|~".utf8)
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for byte in text.utf8 {
            let isDigit = (0x30...0x39).contains(byte)
            let isLetter = (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
            if isDigit || isLetter || attrChar.contains(byte) {
                out.append(byte)
            } else {
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A caller's value for a header line inside the body: no line breaks to forge other headers with.
    static func headerSafe(_ value: String) -> String {
        String(String.UnicodeScalarView(value.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : $0 }))
    }
}

/// The whole request body as chunks: the envelope's head, the document 64 KiB at a time, the tail.
/// Iterating it twice reads the file twice; both passes produce the same bytes if the file holds still.
struct MultipartBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    let head: ByteBuffer
    let document: DocumentFile
    let tail: ByteBuffer

    var count: Int64 { Int64(head.readableBytes) + document.size + Int64(tail.readableBytes) }

    func makeAsyncIterator() -> Iterator { Iterator(body: self) }

    struct Iterator: AsyncIteratorProtocol {
        private enum Position { case head, document(Int64), tail, end }
        private let body: MultipartBody
        private var position = Position.head

        init(body: MultipartBody) { self.body = body }

        mutating func next() async throws -> ByteBuffer? {
            switch position {
            case .head:
                position = body.document.size > 0 ? .document(0) : .tail
                return body.head
            case .document(let offset):
                let count = Int(Swift.min(Int64(WebhookTransport.chunkSize), body.document.size - offset))
                let chunk = try await body.document.read(at: offset, count: count)
                position = offset + Int64(count) < body.document.size ? .document(offset + Int64(count)) : .tail
                return chunk
            case .tail:
                position = .end
                return body.tail
            case .end:
                return nil
            }
        }
    }
}

/// An open document: the one owner of its descriptor, closed on deinit. Reads are `pread`s on
/// NIO's blocking-I/O thread pool, never on an event loop or the concurrency pool; `pread` does
/// not move a shared offset, so concurrent reads (two passes) cannot disturb each other.
final class DocumentFile: Sendable {
    let path: String
    let size: Int64
    private let fd: Int32

    private init(path: String, fd: Int32, size: Int64) {
        self.path = path
        self.fd = fd
        self.size = size
    }

    deinit { close(fd) }

    static func open(_ url: URL) async throws -> DocumentFile {
        let path = url.path
        return try await NIOThreadPool.singleton.runIfActive {
            let fd = Foundation.open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                let code = errno
                let message = "cannot read the document \(path): \(String(cString: strerror(code)))"
                // A spooled document that is gone or unreadable stays so: retrying cannot help.
                throw code == ENOENT || code == EACCES || code == EISDIR
                    ? DeliveryFailure.permanent(message) : DeliveryFailure.temporary(message)
            }
            var info = stat()
            guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
                close(fd)
                throw DeliveryFailure.permanent("the document \(path) is not a regular file")
            }
            return DocumentFile(path: path, fd: fd, size: Int64(info.st_size))
        }
    }

    /// Exactly `count` bytes from `offset`; a file that got shorter since `open` is an error.
    func read(at offset: Int64, count: Int) async throws -> ByteBuffer {
        try await NIOThreadPool.singleton.runIfActive { [self] in
            var buffer = ByteBufferAllocator().buffer(capacity: count)
            let filled = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { space in
                var filled = 0
                while filled < count {
                    let n = pread(fd, space.baseAddress! + filled, count - filled, off_t(offset) + off_t(filled))
                    if n < 0 && errno == EINTR { continue }
                    if n < 0 {
                        let reason = String(cString: strerror(errno))
                        throw DeliveryFailure.temporary("cannot read the document \(path): \(reason)")
                    }
                    if n == 0 { break }
                    filled += n
                }
                return filled
            }
            guard filled == count else {
                throw DeliveryFailure.temporary("the document \(path) got shorter while being sent")
            }
            return buffer
        }
    }
}
