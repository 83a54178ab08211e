import NIOCore
import NIOPosix
import NIOSSL

/// Why a connection to the smarthost stopped being usable. The client turns each into a
/// temporary `DeliveryFailure`: none of them says anything about the message.
enum SMTPClientConnectionError: Error {
    case cannotConnect(any Error)
    /// Nothing came (or nothing could be written) for the whole timeout.
    case timedOut
    case closed
    case badReply(SMTPClientReplyParser.Failure)
    /// The TLS handshake failed: an untrusted or misnamed certificate, no common protocol.
    case tls(any Error)
    /// Bytes followed the reply to STARTTLS in clear: a man in the middle's injection
    /// (CVE-2011-0411 class), or a broken server. Either way, no TLS on top of them.
    case plaintextAfterSTARTTLS
    case io(any Error)
}

/// One TCP (or TLS) connection to the smarthost, used by one task at a time: write a command,
/// read its reply. Every wait has a timeout; when it expires the connection is closed and every
/// later call fails at once.
///
/// Thread rules: the handler lives on the channel's event loop and is only touched there (through
/// `NIOLoopBound` inside `submit` closures); this class holds only Sendable references.
final class SMTPClientConnection: Sendable {
    let channel: any Channel
    private let handler: NIOLoopBound<SMTPClientReplyHandler>

    private init(channel: any Channel, handler: NIOLoopBound<SMTPClientReplyHandler>) {
        self.channel = channel
        self.handler = handler
    }

    /// Connects; with `tls` (implicit TLS) the handshake starts at once, and waiting for the greeting covers it.
    static func connect(
        host: String, port: Int, tls: NIOSSLContext?, serverHostname: String?, replyLimits: SMTPClientReplyParser.Limits,
        timeout: Duration
    ) async throws(SMTPClientConnectionError) -> SMTPClientConnection {
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(TimeAmount(timeout))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = SMTPClientReplyHandler(channel: channel, limits: replyLimits)
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tls, serverHostname: serverHostname))
                        handler.tlsStarted()
                    }
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: host, port: port).get()
        } catch {
            throw .cannotConnect(error)
        }
        let connection: SMTPClientConnection
        do {
            connection = try await channel.eventLoop.submit {
                let handler = try channel.pipeline.syncOperations.handler(type: SMTPClientReplyHandler.self)
                return SMTPClientConnection(channel: channel, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop))
            }.get()
        } catch {
            channel.close(promise: nil)
            throw .io(error)
        }
        return connection
    }

    /// The next reply, or the reason there will be none.
    func readReply(timeout: Duration) async throws(SMTPClientConnectionError) -> SMTPClientReply {
        let handler = self.handler
        return try await Self.mapping {
            try await channel.eventLoop.flatSubmit { handler.value.nextReply(timeout: TimeAmount(timeout)) }.get()
        }
    }

    /// Writes and flushes `bytes`; returns when they are handed to the kernel (so a server that
    /// does not read makes this wait, and time out, instead of queueing without bound).
    func write(_ bytes: [UInt8], timeout: Duration) async throws(SMTPClientConnectionError) {
        let handler = self.handler
        let channel = self.channel
        try await Self.mapping {
            try await channel.eventLoop.flatSubmit {
                handler.value.guarding(channel.writeAndFlush(ByteBuffer(bytes: bytes)), timeout: TimeAmount(timeout))
            }.get()
        }
    }

    /// Puts TLS under the connection after the server's `220` to STARTTLS (RFC 3207 §4). Refuses
    /// if anything followed that reply in clear. The handshake runs while the next command waits
    /// for its reply (NIOSSL holds writes until it is done), so its failure, or its silence, shows
    /// there.
    func startTLS(context: NIOSSLContext, serverHostname: String?) async throws(SMTPClientConnectionError) {
        let handler = self.handler
        let channel = self.channel
        try await Self.mapping {
            try await channel.eventLoop.submit {
                let replyHandler = handler.value
                do {
                    guard replyHandler.isIdle else { throw SMTPClientConnectionError.plaintextAfterSTARTTLS }
                    let tls = try NIOSSLClientHandler(context: context, serverHostname: serverHostname)
                    try channel.pipeline.syncOperations.addHandler(tls, position: .first)
                    replyHandler.tlsStarted()
                } catch {
                    channel.close(promise: nil)
                    throw error
                }
            }.get()
        }
    }

    /// Closes at once; safe to call more than once and from any thread (task cancellation).
    func closeNow() {
        channel.close(promise: nil)
    }

    func close() async {
        try? await channel.close()
    }

    private static func mapping<T>(_ body: () async throws -> T) async throws(SMTPClientConnectionError) -> T {
        do {
            return try await body()
        } catch let error as SMTPClientConnectionError {
            throw error
        } catch {
            throw .io(error)
        }
    }
}

/// Feeds what the server sends through `SMTPClientReplyParser` and hands the replies, one by
/// one, to whoever waits. Remembers the first failure (timeout, close, bad reply, TLS error) and
/// gives it to every later wait, after the replies that arrived before it: a `421` followed by a
/// close is read as the `421`.
///
/// Event-loop bound: used only on its channel's event loop.
final class SMTPClientReplyHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private var parser: SMTPClientReplyParser
    private var replies = CircularBuffer<SMTPClientReply>()
    private var replyWaiter: EventLoopPromise<SMTPClientReply>?
    private var handshakePending = false
    private var failure: SMTPClientConnectionError?
    private let channel: any Channel

    init(channel: any Channel, limits: SMTPClientReplyParser.Limits) {
        self.channel = channel
        self.parser = SMTPClientReplyParser(limits: limits)
    }

    /// Nothing received and not yet read.
    var isIdle: Bool { replies.isEmpty && !parser.hasPendingBytes }

    /// From here until the first bytes come through TLS, an error is the handshake's.
    func tlsStarted() {
        handshakePending = true
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard failure == nil else { return }
        handshakePending = false
        let buffer = unwrapInboundIn(data)
        do {
            for reply in try parser.feed(buffer.readableBytesView) { replies.append(reply) }
        } catch {
            fail(.badReply(error))
            context.close(promise: nil)
            return
        }
        if let waiter = replyWaiter, let reply = replies.popFirst() {
            replyWaiter = nil
            waiter.succeed(reply)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(.closed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(handshakePending ? .tls(error) : .io(error))
        context.close(promise: nil)
    }

    func nextReply(timeout: TimeAmount) -> EventLoopFuture<SMTPClientReply> {
        let eventLoop = channel.eventLoop
        if let reply = replies.popFirst() { return eventLoop.makeSucceededFuture(reply) }
        if let failure { return eventLoop.makeFailedFuture(failure) }
        let promise = eventLoop.makePromise(of: SMTPClientReply.self)
        replyWaiter = promise
        return guarding(promise.futureResult, timeout: timeout)
    }

    /// `future`, failed with `.timedOut` (and the connection closed) if it has not completed
    /// within `timeout`; any other failure is replaced by the connection's first one, which says
    /// why (a write fails with "closed" when the real reason was the timeout that closed it).
    func guarding<T>(_ future: EventLoopFuture<T>, timeout: TimeAmount) -> EventLoopFuture<T> {
        let eventLoop = future.eventLoop.assumeIsolated()
        let timer = eventLoop.scheduleTask(in: timeout) {
            self.fail(.timedOut)
            self.channel.close(promise: nil)
        }
        return future.assumeIsolated().always { _ in timer.cancel() }
            .flatMapErrorThrowing { error in throw self.failure ?? (error as? SMTPClientConnectionError) ?? .io(error) }
            .nonisolated()
    }

    private func fail(_ error: SMTPClientConnectionError) {
        if failure == nil { failure = error }
        let failure = self.failure!
        if let waiter = replyWaiter, replies.isEmpty {
            replyWaiter = nil
            waiter.fail(failure)
        }
    }
}

@available(*, unavailable)
extension SMTPClientReplyHandler: Sendable {}
