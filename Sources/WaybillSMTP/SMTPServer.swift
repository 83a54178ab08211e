public import Logging
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
public import WaybillCore

/// The SMTP listener: one async channel per connection inside a discarding task group, so one
/// connection's error never stops the server (swift-nio's NIOTCPEchoServer pattern). Protocol
/// logic is `SMTPServerStateMachine`'s, timeouts are `SMTPConnectionTimer`'s; this only moves
/// bytes and performs their actions.
///
/// Thread rules: one listening socket per event loop (see `serve`), and each connection's task
/// prefers its channel's event loop as task executor (`EventLoopTaskExecutor`), so the state
/// machine runs on the thread that accepted its socket and reads and writes it: no thread hop per
/// connection or per command, which is most of an SMTP round trip's cost on a small machine.
/// Nothing on it blocks: the spool's file writes and fsyncs and the deliberately slow password
/// hashing run on a `NIOThreadPool` of `configuration.spoolThreads` threads that the server starts
/// and stops.
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
        do {
            try await serve(tls: tls, pool: pool, onBound: onBound)
        } catch {
            try? await pool.shutdownGracefully()
            throw error
        }
        try? await pool.shutdownGracefully()
    }

    /// The accepted connections of one listening socket, typed for the connection tasks.
    typealias Listener = NIOAsyncChannel<(NIOAsyncChannel<SMTPInbound, SMTPOutbound>, SMTPConnectionFlags), Never>

    /// One listening socket per event loop, all on one port (`SO_REUSEPORT`): the kernel spreads
    /// the connections over them, and each connection is accepted, set up and served on one loop.
    /// With a single listener, every connection crossed threads three times before its greeting
    /// (accepted on the listener's loop, registered on another, announced back to the accept loop,
    /// its task sent to the other again): on a busy two-core machine each crossing is a wake-up
    /// and often a wait for a core, and with one message per connection that was most of the cost
    /// of a connection. `SO_REUSEPORT` joins only sockets of the same user that also set it.
    private func serve(tls: NIOSSLContext?, pool: NIOThreadPool, onBound: @Sendable (Int) -> Void) async throws {
        let loops = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())
        try await probe(on: loops[0])
        let limiter = SMTPConnectionLimiter(total: configuration.maximumConnections, perAddress: configuration.maximumConnectionsPerAddress)
        var listeners: [Listener]
        do { listeners = [try await listen(on: loops[0], port: port, limiter: limiter)] } catch { throw portError(error) }
        let boundPort = listeners[0].channel.localAddress?.port ?? port
        do {
            for loop in loops.dropFirst() { listeners.append(try await listen(on: loop, port: boundPort, limiter: limiter)) }
        } catch {
            for listener in listeners { try? await listener.channel.close() }
            throw error
        }
        logger.info("SMTP listening", metadata: ["host": "\(host)", "port": "\(boundPort)", "starttls": "\(tls != nil)"])
        onBound(boundPort)
        // One listener's error ends them all (the group cancels the others).
        try await withThrowingDiscardingTaskGroup { group in
            for listener in listeners {
                group.addTask(executorPreference: EventLoopTaskExecutor(listener.channel.eventLoop)) {
                    try await self.accept(listener, tls: tls, pool: pool)
                }
            }
        }
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
    private func listen(on loop: any EventLoop, port: Int, limiter: SMTPConnectionLimiter) async throws -> Listener {
        let greeting = configuration.greetingDelay > .zero ? nil : SMTPServerStateMachine.greeting(configuration).wire
        return try await ServerBootstrap(group: loop, childGroup: loop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(ChannelOptions.Types.SocketOption(level: .socket, name: NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: 1)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let address = channel.remoteAddress?.ipAddress ?? "unknown"
                    let admitted = limiter.acquire(address)
                    if admitted { channel.closeFuture.whenComplete { _ in limiter.release(address) } }
                    let early = admitted ? greeting.map { ByteBuffer(bytes: $0) } : nil
                    let flags = SMTPConnectionFlags(address: address, admitted: admitted, greetedByHandler: early != nil)
                    try channel.pipeline.syncOperations.addHandler(SMTPConnectionHandler(flags: flags, greeting: early))
                    let connection = try NIOAsyncChannel<SMTPInbound, SMTPOutbound>(wrappingChannelSynchronously: channel)
                    return (connection, flags)
                }
            }
    }

    /// The accept loop of one listener: runs on its event loop, and so does each connection's task.
    private func accept(_ listener: Listener, tls: NIOSSLContext?, pool: NIOThreadPool) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            try await listener.executeThenClose { inbound in
                for try await (connection, flags) in inbound {
                    group.addTask(executorPreference: EventLoopTaskExecutor(connection.channel.eventLoop)) {
                        await self.connection(connection, flags: flags, tls: tls, pool: pool)
                    }
                }
            }
        }
    }

    private func connection(
        _ connection: NIOAsyncChannel<SMTPInbound, SMTPOutbound>, flags: SMTPConnectionFlags, tls: NIOSSLContext?,
        pool: NIOThreadPool
    ) async {
        let address = flags.address
        let logger = {
            var logger = self.logger
            logger[metadataKey: "client"] = "\(address)"
            return logger
        }()
        metrics.smtpConnectionOpened()
        guard flags.admitted else {
            logger.warning("refused a connection: too many connections")
            metrics.smtpRefused(.tooManyConnections)
            try? await connection.executeThenClose { _, outbound in
                try await outbound.write(.bytes(ByteBuffer(bytes: SMTPReply(421, "4.7.0 Too many connections; try again later").wire)))
            }
            return
        }
        let watch = SMTPConnectionWatch(SMTPConnectionTimer(configuration: configuration, now: clock.now))
        do {
            try await connection.executeThenClose { inbound, outbound in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        try await self.watchdog(watch, outbound: outbound, channel: connection.channel, logger: logger)
                    }
                    var session = Session(
                        server: self, clientAddress: connection.channel.remoteAddress?.ipAddress, tls: tls, pool: pool, watch: watch,
                        logger: logger)
                    defer { session.dropWriter() }
                    try await session.run(inbound: inbound, outbound: outbound, flags: flags)
                    group.cancelAll()
                }
            }
        } catch is CancellationError {
        } catch {
            logger.debug("connection ended", metadata: ["error": "\(error)"])
        }
    }

    /// Sleeps until the timer's next deadline (but never longer than `longestSleep`, so a
    /// deadline set meanwhile is not missed), and closes the connection with `421` when one passes.
    private func watchdog(
        _ watch: SMTPConnectionWatch, outbound: NIOAsyncChannelOutboundWriter<SMTPOutbound>, channel: any Channel, logger: Logger
    ) async throws {
        while true {
            let now = clock.now
            let (next, longest) = watch.timer.withLock { ($0.nextDeadline, $0.longestSleep) }
            let deadline = min(next ?? now + longest, now + longest)
            if let clock = clock as? ContinuousSMTPClock {
                try await clock.sleep(until: deadline, on: channel.eventLoop)
            } else {
                try await clock.sleep(until: deadline)
            }
            let now2 = clock.now
            guard let expiry = watch.timer.withLock({ $0.check(now: now2) }) else { continue }
            let reply: SMTPReply
            switch expiry {
            case .command:
                logger.info("closed an idle connection: no command within the timeout")
                reply = SMTPReply(421, "4.4.2 \(configuration.hostname) Timeout waiting for a command; closing the connection")
            case .data:
                logger.info("closed a connection: DATA stalled")
                reply = SMTPReply(421, "4.4.2 \(configuration.hostname) Timeout waiting for data; closing the connection")
            case .tooSlow(let octets, let elapsed):
                logger.info("closed a connection: DATA too slow", metadata: ["octets": "\(octets)", "seconds": "\(elapsed)"])
                reply = SMTPReply(
                    421, "4.4.2 \(configuration.hostname) Data arrives too slowly (under \(configuration.minimumDataRate) octets/s); closing")
            }
            metrics.smtpRefused(.timeout)
            try? await outbound.write(.bytes(ByteBuffer(bytes: reply.wire)))
            try? await channel.close()
            return
        }
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

    /// One connection's state; lives in its task.
    struct Session {
        enum Flow { case proceed, close, discardRest }

        let server: SMTPServer
        let tls: NIOSSLContext?
        let pool: NIOThreadPool
        let watch: SMTPConnectionWatch
        let logger: Logger
        var machine: SMTPServerStateMachine
        var lines: SMTPLineDecoder
        var data: SMTPDataDecoder?
        var writer: Spool.Writer?
        var dataStarted: Duration = .zero
        /// Between STARTTLS and the TLS marker: every byte read is discarded.
        var awaitingTLS = false

        init(
            server: SMTPServer, clientAddress: String?, tls: NIOSSLContext?, pool: NIOThreadPool, watch: SMTPConnectionWatch,
            logger: Logger
        ) {
            self.server = server
            self.tls = tls
            self.pool = pool
            self.watch = watch
            self.logger = logger
            machine = SMTPServerStateMachine(
                configuration: server.configuration, clientAddress: clientAddress, recipientPolicy: server.recipientPolicy)
            lines = SMTPLineDecoder(maximumLength: server.configuration.maximumCommandLength)
        }

        var clock: any SMTPClock { server.clock }

        mutating func run(
            inbound: NIOAsyncChannelInboundStream<SMTPInbound>, outbound: NIOAsyncChannelOutboundWriter<SMTPOutbound>,
            flags: SMTPConnectionFlags
        ) async throws {
            var iterator = inbound.makeAsyncIterator()
            let delay = server.configuration.greetingDelay
            if delay > .zero {
                try await clock.sleep(until: clock.now + delay)
                if flags.clientSpoke.load(ordering: .relaxed) {
                    if case .bytes(let first)? = try await iterator.next(), Self.isTLSHandshake(first) {
                        logTLSOnPlainPort()
                        return
                    }
                    logger.info("refused an early talker: the client spoke before the greeting")
                    _ = try await perform(machine.earlyTalker(), outbound)
                    return
                }
            }
            // Written by the handler already (no delay): the state machine only moves on.
            let greeting = machine.connected()
            if !flags.greetedByHandler, try await perform(greeting, outbound) == .close { return }
            watch.timer.withLock { $0.awaitingCommand(now: clock.now) }
            while let event = try await iterator.next() {
                switch event {
                case .tlsStarted:
                    awaitingTLS = false
                    lines = SMTPLineDecoder(maximumLength: server.configuration.maximumCommandLength)
                    if try await perform(machine.tlsStarted(), outbound) == .close { return }
                    watch.timer.withLock { $0.awaitingCommand(now: clock.now) }
                case .bytes(let buffer):
                    // Plaintext after STARTTLS, read before the handshake: never a command.
                    if awaitingTLS { continue }
                    if !machine.hasReceivedCommand && !machine.isSecure && lines.pending.isEmpty && Self.isTLSHandshake(buffer) {
                        logTLSOnPlainPort()
                        return
                    }
                    let now = clock.now
                    watch.timer.withLock { $0.received(octets: buffer.readableBytes, now: now) }
                    if try await consume(buffer, outbound) == .close { return }
                }
            }
        }

        /// Drops the message being written; unlinking its file, if it has one, happens on the pool.
        mutating func dropWriter() {
            guard let writer else { return }
            self.writer = nil
            _ = pool.runIfActive(eventLoop: MultiThreadedEventLoopGroup.singleton.any()) { writer.abort() }
        }

        /// A TLS record header: handshake (22), protocol major version 3.
        static func isTLSHandshake(_ buffer: ByteBuffer) -> Bool {
            let bytes = buffer.readableBytesView
            guard let first = bytes.first, first == 0x16 else { return false }
            return bytes.count < 2 || bytes[bytes.index(after: bytes.startIndex)] == 0x03
        }

        func logTLSOnPlainPort() {
            logger.error(
                """
                client \(logger[metadataKey: "client"] ?? "?") sent a TLS handshake on the plain SMTP port: it is probably \
                configured for implicit TLS (SMTPS, port 465); configure it for STARTTLS or plain SMTP
                """)
        }

        mutating func consume(_ buffer: ByteBuffer, _ outbound: NIOAsyncChannelOutboundWriter<SMTPOutbound>) async throws -> Flow {
            var pending: [UInt8]
            if data != nil {
                // The common case for large messages: straight from the buffer, no copy.
                let (flow, rest) = try await feedData(buffer.readableBytesView, outbound)
                if flow != .proceed { return flow }
                pending = rest
            } else {
                pending = Array(buffer.readableBytesView)
            }
            while !pending.isEmpty {
                if data != nil {
                    let (flow, rest) = try await feedData(pending, outbound)
                    if flow != .proceed { return flow }
                    pending = rest
                    continue
                }
                var rest = pending[...]
                pending = []
                while data == nil, let event = lines.next(from: &rest) {
                    let flow = try await perform(machine.received(event), outbound)
                    if flow != .proceed { return flow }
                }
                // After DATA the rest of this read is message bytes.
                pending = Array(rest)
            }
            return .proceed
        }

        /// Message bytes; returns what follows the end of the message, if it ended.
        mutating func feedData(_ bytes: some Collection<UInt8>, _ outbound: NIOAsyncChannelOutboundWriter<SMTPOutbound>)
            async throws -> (Flow, [UInt8])
        {
            guard var decoder = data else { return (.proceed, Array(bytes)) }
            let output = decoder.feed(bytes)
            data = decoder
            // Past the limit the bytes are read and dropped; the answer comes at the end.
            if decoder.size <= server.configuration.maximumMessageSize, let writer {
                writer.append(output.data)
                if writer.needsFlush { try await pool.runIfActive { try writer.flush() } }
            }
            guard output.finished else { return (.proceed, []) }
            data = nil
            let actions = machine.dataEnded(size: decoder.size)
            if !actions.contains(where: { if case .spool = $0 { true } else { false } }) {
                server.metrics.smtpMessage(.refused)
                dropWriter()  // refused (too big): nothing of it stays
                watch.timer.withLock { $0.awaitingCommand(now: clock.now) }
            }
            return (try await perform(actions, outbound), output.remainder)
        }

        mutating func perform(_ actions: [SMTPServerStateMachine.Action], _ outbound: NIOAsyncChannelOutboundWriter<SMTPOutbound>)
            async throws -> Flow
        {
            for action in actions {
                let flow = try await perform(action, outbound)
                if flow != .proceed { return flow }
            }
            return .proceed
        }

        mutating func perform(_ action: SMTPServerStateMachine.Action, _ outbound: NIOAsyncChannelOutboundWriter<SMTPOutbound>)
            async throws -> Flow
        {
            switch action {
            case .reply(let reply):
                if let refusal = reply.refusal { server.metrics.smtpRefused(refusal) }
                try await outbound.write(.bytes(ByteBuffer(bytes: reply.wire)))
            case .receiveData:
                data = SMTPDataDecoder()
                writer = try server.spool.begin()
                dataStarted = clock.now
                watch.timer.withLock { $0.awaitingData(now: dataStarted) }
            case .spool(let envelope):
                watch.timer.withLock { $0.busy() }
                defer { watch.timer.withLock { $0.awaitingCommand(now: clock.now) } }
                let followUp: [SMTPServerStateMachine.Action]
                var committed: String?
                var accepted: Logger.Metadata?
                do {
                    guard let writer else { throw Spool.SpoolError(description: "no message was being written") }
                    let id = try await pool.runIfActive { try writer.commit(envelope: envelope) }
                    committed = id
                    accepted = [
                        "id": "\(id)", "size": "\(writer.size)", "recipients": "\(envelope.recipients.joined(separator: ","))",
                        "elapsed": "\(clock.now - dataStarted)",
                    ]
                    server.metrics.smtpMessage(.accepted)
                    followUp = machine.spooled(id: id)
                } catch {
                    logger.error("could not spool a message", metadata: ["error": "\(error)"])
                    server.metrics.smtpMessage(.refused)
                    dropWriter()
                    followUp = machine.spoolFailed("\(error)")
                }
                writer = nil
                // The worker hears of the message before the 250 is written: if the client is
                // gone by then, the message is durable all the same and must not wait for a restart.
                if let committed { server.onSpooled(committed) }
                // The log line is written after the 250 (the client does not wait for it), and
                // also when writing the 250 fails: the message is accepted either way.
                defer { if let accepted { logger.info("accepted message", metadata: accepted) } }
                return try await perform(followUp, outbound)
            case .startTLS(let reply):
                guard let tls else { return .close }
                awaitingTLS = true
                // Whatever else this read held was pipelined behind STARTTLS: dropped unread.
                try await outbound.write(.startTLS(ByteBuffer(bytes: reply.wire), tls))
                watch.timer.withLock { $0.awaitingCommand(now: clock.now) }
                return .discardRest
            case .authenticate(let user, let password):
                guard let authentication = server.configuration.authentication else { return .close }
                watch.timer.withLock { $0.busy() }
                let valid = try await pool.runIfActive { authentication.verify(user: user, password: password) }
                watch.timer.withLock { $0.awaitingCommand(now: clock.now) }
                if valid {
                    logger.info("authenticated", metadata: ["user": "\(user)"])
                } else {
                    logger.warning("authentication failed", metadata: ["user": "\(user)"])
                }
                return try await perform(machine.authenticationChecked(valid: valid), outbound)
            case .close:
                return .close
            }
            return .proceed
        }
    }
}

/// Runs a task's jobs on a NIO event loop. A job enqueued from that loop's own thread (an inbound
/// read resuming the connection task, say) runs on it without waking another thread.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// The timer of one connection, shared by its session (which reports progress) and its watchdog.
final class SMTPConnectionWatch: Sendable {
    let timer: Mutex<SMTPConnectionTimer>

    init(_ timer: SMTPConnectionTimer) {
        self.timer = Mutex(timer)
    }
}

/// Counts open connections, in total and per client address.
final class SMTPConnectionLimiter: Sendable {
    private struct State {
        var total = 0
        var perAddress: [String: Int] = [:]
    }

    let total: Int
    let perAddress: Int
    private let state = Mutex(State())

    init(total: Int, perAddress: Int) {
        self.total = total
        self.perAddress = perAddress
    }

    /// Counts the connection in, or says no if a limit is reached.
    func acquire(_ address: String) -> Bool {
        state.withLock { state in
            guard state.total < total, state.perAddress[address, default: 0] < perAddress else { return false }
            state.total += 1
            state.perAddress[address, default: 0] += 1
            return true
        }
    }

    func release(_ address: String) {
        state.withLock { state in
            state.total -= 1
            let left = state.perAddress[address, default: 1] - 1
            state.perAddress[address] = left > 0 ? left : nil
        }
    }
}
