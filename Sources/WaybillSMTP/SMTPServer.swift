public import Logging
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
public import WaybillCore

/// The SMTP listener: one `SMTPSessionHandler` per connection, which performs the protocol
/// (`SMTPServerStateMachine`) and the timeouts (`SMTPConnectionTimer`) on its channel's event loop.
///
/// Thread rules: one listening socket per event loop (see `serve`), and each connection is
/// accepted, read, answered and written on that loop: no thread hop per connection or per
/// command, which is most of an SMTP round trip's cost on a small machine. Nothing on it blocks:
/// the spool's file writes and fsyncs and the deliberately slow password hashing run on a
/// `NIOThreadPool` of `configuration.spoolThreads` threads that the server starts and stops.
public struct SMTPServer: Sendable {
    public var host: String
    public var port: Int
    public var configuration: SMTPConfiguration
    public var spool: Spool
    /// Asked at every RCPT, on the connection's event loop: it must not block.
    public var recipientPolicy: @Sendable (RecipientContext) -> RecipientDecision
    /// Told of every committed message, as soon as it is durable (just before its 250 is written).
    /// Called on the connection's event loop: it must return at once (hand the id to a queue).
    public var onSpooled: @Sendable (String) -> Void
    public var logger: Logger
    /// Drives the greeting delay and the timeouts; tests pass one they can step.
    public var clock: any SMTPClock
    /// Counts connections, messages and refusals (`waybill_smtp_*`); called on the event loops.
    public var metrics: Metrics

    public init(
        host: String, port: Int, configuration: SMTPConfiguration, spool: Spool,
        recipientPolicy: @escaping @Sendable (RecipientContext) -> RecipientDecision,
        onSpooled: @escaping @Sendable (String) -> Void = { _ in },
        logger: Logger = Logger(label: "waybill.smtp"), clock: any SMTPClock = ContinuousSMTPClock(),
        metrics: Metrics = Metrics()
    ) {
        self.metrics = metrics
        self.host = host
        self.port = port
        self.configuration = configuration
        self.spool = spool
        self.recipientPolicy = recipientPolicy
        self.onSpooled = onSpooled
        self.logger = logger
        self.clock = clock
    }

    /// A policy that looks at the recipient address only.
    @_disfavoredOverload
    public init(
        host: String, port: Int, configuration: SMTPConfiguration, spool: Spool,
        recipientPolicy: @escaping @Sendable (String) -> RecipientDecision, onSpooled: @escaping @Sendable (String) -> Void = { _ in },
        logger: Logger = Logger(label: "waybill.smtp"), clock: any SMTPClock = ContinuousSMTPClock(),
        metrics: Metrics = Metrics()
    ) {
        self.init(
            host: host, port: port, configuration: configuration, spool: spool, recipientPolicy: { recipientPolicy($0.recipient) },
            onSpooled: onSpooled, logger: logger, clock: clock, metrics: metrics)
    }

    /// Binds and serves until the task is cancelled. `onBound` receives the port (useful with port 0).
    /// Throws before binding if the TLS certificate or key cannot be loaded.
    public func run(onBound: @Sendable (Int) -> Void = { _ in }) async throws {
        let tls = try configuration.tls.map(Self.makeTLSContext)
        let pool = NIOThreadPool(numberOfThreads: max(1, configuration.spoolThreads))
        pool.start()
        // Spool files made while nothing arrives, not during the first burst (Spool.stockReserve).
        let spool = self.spool
        let logger = self.logger
        pool.runIfActive(eventLoop: MultiThreadedEventLoopGroup.singleton.any()) { try spool.stockReserve() }.whenFailure { error in
            logger.warning("could not reserve spool files ahead; each message will make its own", metadata: ["error": "\(error)"])
        }
        do {
            try await serve(tls: tls, pool: pool, onBound: onBound)
        } catch {
            try? await pool.shutdownGracefully()
            throw error
        }
        try? await pool.shutdownGracefully()
    }

    /// One listening socket per event loop, all on one port (`SO_REUSEPORT`): the kernel spreads
    /// the connections over them, and each connection is accepted, set up and served on one loop.
    /// With a single listener, every connection crossed threads before its greeting (accepted on
    /// the listener's loop, registered on another): on a busy two-core machine each crossing is a
    /// wake-up and often a wait for a core. `SO_REUSEPORT` joins only sockets of the same user
    /// that also set it.
    ///
    /// Serves until the task is cancelled; then stops listening, tells every connection to close
    /// once its work in hand is done (a message being committed still gets its 250; the others
    /// get `421`), and waits for them.
    private func serve(tls: NIOSSLContext?, pool: NIOThreadPool, onBound: @Sendable (Int) -> Void) async throws {
        let loops = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())
        try await probe(on: loops[0])
        let connections = SMTPConnectionLimiter(
            total: configuration.maximumConnections, perAddress: configuration.maximumConnectionsPerAddress)
        var listeners: [any Channel]
        do { listeners = [try await listen(on: loops[0], port: port, connections: connections, tls: tls, pool: pool)] } catch {
            throw portError(error)
        }
        let boundPort = listeners[0].localAddress?.port ?? port
        do {
            for loop in loops.dropFirst() {
                listeners.append(try await listen(on: loop, port: boundPort, connections: connections, tls: tls, pool: pool))
            }
        } catch {
            for listener in listeners { try? await listener.close() }
            throw error
        }
        logger.info("SMTP listening", metadata: ["host": "\(host)", "port": "\(boundPort)", "starttls": "\(tls != nil)"])
        onBound(boundPort)
        // Until cancelled, or until a listener closes on its own (an error: the others stop too).
        let stop = loops[0].makePromise(of: Void.self)
        for listener in listeners { listener.closeFuture.whenComplete { _ in stop.succeed() } }
        await withTaskCancellationHandler {
            try? await stop.futureResult.get()
        } onCancel: {
            stop.succeed()
        }
        for listener in listeners { try? await listener.close() }
        let open = connections.openChannels
        for channel in open { channel.pipeline.fireUserInboundEventTriggered(SMTPSessionHandler.Shutdown()) }
        for channel in open { try? await channel.closeFuture.get() }
    }

    /// `SO_REUSEPORT` would let a second listener of the same user (another `waybill serve` on
    /// this port) share the port silently, each getting half the connections. A socket bound
    /// without it fails on a port anyone listens on, so one is bound and closed first: a port in
    /// use is an error before any listener exists. (Port 0 asks for a fresh port: nothing to probe.)
    private func probe(on loop: any EventLoop) async throws {
        guard port != 0 else { return }
        let channel: any Channel
        do {
            channel = try await ServerBootstrap(group: loop)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: host, port: port).get()
        } catch {
            throw portError(error)
        }
        try? await channel.close()
    }

    private func portError(_ error: any Error) -> WaybillError {
        if let io = error as? IOError, io.errnoCode == EADDRINUSE {
            return WaybillError(
                .ioError, "SMTP port \(port) on \(host) is in use by another program (another 'waybill serve'?); stop it or set smtp_port")
        }
        return WaybillError(.ioError, "cannot listen for SMTP on \(host):\(port): \(error)")
    }

    /// Binds a listening socket whose connections stay on `loop`. Each connection is counted
    /// against the limits as it is accepted and counted out when its channel closes.
    private func listen(
        on loop: any EventLoop, port: Int, connections: SMTPConnectionLimiter, tls: NIOSSLContext?, pool: NIOThreadPool
    ) async throws -> any Channel {
        try await ServerBootstrap(group: loop, childGroup: loop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(ChannelOptions.Types.SocketOption(level: .socket, name: NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: 1)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let address = channel.remoteAddress?.ipAddress ?? "unknown"
                    let admitted = connections.acquire(address, channel: channel)
                    if admitted { channel.closeFuture.whenComplete { _ in connections.release(address, channel: channel) } }
                    let session = SMTPSessionHandler(
                        server: self, eventLoop: channel.eventLoop, address: address, admitted: admitted, tls: tls, pool: pool)
                    try channel.pipeline.syncOperations.addHandler(session)
                }
            }
            .bind(host: host, port: port).get()
    }

    static func makeTLSContext(_ tls: SMTPTLS) throws -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        do { chain = try NIOSSLCertificate.fromPEMFile(tls.certificateChainPath) } catch {
            throw WaybillError(.configError, "cannot read the TLS certificate chain \(tls.certificateChainPath) (PEM expected): \(error)")
        }
        guard !chain.isEmpty else {
            throw WaybillError(.configError, "the TLS certificate file \(tls.certificateChainPath) holds no PEM certificate")
        }
        let key: NIOSSLPrivateKey
        do { key = try NIOSSLPrivateKey(file: tls.privateKeyPath, format: .pem) } catch {
            throw WaybillError(.configError, "cannot read the TLS private key \(tls.privateKeyPath) (unencrypted PEM expected): \(error)")
        }
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        do { return try NIOSSLContext(configuration: configuration) } catch {
            throw WaybillError(
                .configError,
                "the TLS key \(tls.privateKeyPath) does not fit the certificate \(tls.certificateChainPath), or one is unusable: \(error)")
        }
    }
}

/// Counts open connections, in total and per client address.
final class SMTPConnectionLimiter: Sendable {
    private struct State {
        var total = 0
        var perAddress: [String: Int] = [:]
        var channels: [ObjectIdentifier: any Channel] = [:]
    }

    let total: Int
    let perAddress: Int
    private let state = Mutex(State())

    /// The connections counted in and not yet closed (for shutting them down).
    var openChannels: [any Channel] { state.withLock { Array($0.channels.values) } }

    init(total: Int, perAddress: Int) {
        self.total = total
        self.perAddress = perAddress
    }

    /// Counts the connection in, or says no if a limit is reached.
    func acquire(_ address: String, channel: any Channel) -> Bool {
        state.withLock { state in
            guard state.total < total, state.perAddress[address, default: 0] < perAddress else { return false }
            state.total += 1
            state.perAddress[address, default: 0] += 1
            state.channels[ObjectIdentifier(channel)] = channel
            return true
        }
    }

    func release(_ address: String, channel: any Channel) {
        state.withLock { state in
            state.channels[ObjectIdentifier(channel)] = nil
            state.total -= 1
            let left = state.perAddress[address, default: 1] - 1
            state.perAddress[address] = left > 0 ? left : nil
        }
    }
}
