import Logging
import NIOCore
import NIOPosix
import NIOSSL
import WaybillCore

/// One SMTP connection, as a channel handler on the connection's event loop: bytes in, the state
/// machine's actions performed, replies out. Protocol logic is `SMTPServerStateMachine`'s,
/// timeouts are `SMTPConnectionTimer`'s; this only moves bytes and performs actions.
///
/// Why a handler and not a task per connection: a sender like a scanner opens a connection per
/// scan and waits for each reply, so the server's cost per connection and per round trip is its
/// rate. With an async channel and a task per connection, each command crossed an async
/// sequence, a task resumption and an async writer, and each connection set up a task group and
/// a watchdog task: about 850 µs of CPU a message on this machine, most of it in that machinery.
/// Here a command is decoded, answered and written in the read callback that brought it.
///
/// Nothing here blocks: committing a message (write, fsync), flushing a large one and checking a
/// password run on the server's `NIOThreadPool`. While one runs the handler is *busy*: it stops
/// asking the socket for more (it holds `read`), keeps bytes already read in `pending`, and
/// resumes on the event loop when the work is done.
///
/// STARTTLS: the `220 Ready to start TLS` is written and flushed in clear, `NIOSSLServerHandler`
/// is added just before this handler (so the socket's next bytes are decrypted before they reach
/// it), and the rest of the read that carried the command is dropped: bytes a client pipelined
/// after STARTTLS never reach the TLS session (the command-injection class of CVE-2011-0411).
///
/// Event-loop bound: every method runs on the channel's event loop.
final class SMTPSessionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Sent by the server to every open connection when it stops: close once the work in hand is done.
    struct Shutdown: Sendable {}

    private let server: SMTPServer
    private let tls: NIOSSLContext?
    private let pool: NIOThreadPool
    private let admitted: Bool
    private let logger: Logger
    private var machine: SMTPServerStateMachine
    private var lines: SMTPLineDecoder
    private var timer: SMTPConnectionTimer
    private var data: SMTPDataDecoder?
    private var writer: Spool.Writer?
    private var dataStarted: Duration = .zero

    private var context: ChannelHandlerContext?
    /// The greeting is out: until then, bytes are an early talker's.
    private var greeted = false
    /// What a client sent before the greeting (its first read), to tell a TLS handshake apart.
    private var early: ByteBuffer?
    /// Work on the thread pool is running; the connection waits for it.
    private var busy = false
    /// Bytes read but not consumed: read while busy, or what followed the command that made it busy.
    private var pending: [UInt8] = []
    /// A `read` the channel asked for while busy, issued when the work is done.
    private var readHeld = false
    private var unflushed = false
    private var closed = false
    /// The server is stopping: close as soon as nothing is in hand.
    private var stopping = false
    /// STARTTLS was performed: the rest of the current read is dropped.
    private var discardRest = false
    private var watchdog: SMTPTimerHandle?
    private var greetingTimer: SMTPTimerHandle?
    private let eventLoop: any EventLoop

    init(
        server: SMTPServer, eventLoop: any EventLoop, address: String, admitted: Bool, tls: NIOSSLContext?, pool: NIOThreadPool
    ) {
        self.server = server
        self.eventLoop = eventLoop
        self.tls = tls
        self.pool = pool
        self.admitted = admitted
        var logger = server.logger
        logger[metadataKey: "client"] = "\(address)"
        self.logger = logger
        machine = SMTPServerStateMachine(configuration: server.configuration, clientAddress: address, recipientPolicy: server.recipientPolicy)
        lines = SMTPLineDecoder(maximumLength: server.configuration.maximumCommandLength)
        timer = SMTPConnectionTimer(configuration: server.configuration, now: server.clock.now)
    }

    private var clock: any SMTPClock { server.clock }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        server.metrics.smtpConnectionOpened()
        guard admitted else {
            logger.warning("refused a connection: too many connections")
            server.metrics.smtpRefused(.tooManyConnections)
            greeted = true
            write(SMTPReply(421, "4.7.0 Too many connections; try again later"))
            close()
            return
        }
        let delay = server.configuration.greetingDelay
        if delay > .zero {
            armWatchdog()
            let bound = NIOLoopBound(self, eventLoop: eventLoop)
            greetingTimer = server.schedule(at: clock.now + delay, on: eventLoop) { bound.value.greetingDelayEnded() }
        } else {
            greet()
            armWatchdog()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard !closed else { return }
        guard greeted else {
            if early == nil { early = buffer }
            return
        }
        timer.received(octets: buffer.readableBytes, now: clock.now)
        if busy || !pending.isEmpty {
            pending.append(contentsOf: buffer.readableBytesView)
            return
        }
        if !machine.hasReceivedCommand && !machine.isSecure && lines.pending.isEmpty && Self.isTLSHandshake(buffer) {
            logTLSOnPlainPort()
            close()
            return
        }
        consume(buffer.readableBytesView)
        flushIfNeeded()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded()
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if busy {
            readHeld = true
        } else {
            context.read()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        cancelTimers()
        // A message being received is dropped; one being committed finishes (see `spool`).
        if !busy { dropWriter() }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection ended", metadata: ["error": "\(error)"])
        close()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is Shutdown else { return context.fireUserInboundEventTriggered(event) }
        stopping = true
        if !busy { shutDown() }
    }

    // MARK: Greeting

    private func greet() {
        greeted = true
        perform(machine.connected())
        timer.awaitingCommand(now: clock.now)
        flushIfNeeded()
    }

    private func greetingDelayEnded() {
        greetingTimer = nil
        guard !closed else { return }
        guard let early else { return greet() }
        greeted = true
        if Self.isTLSHandshake(early) {
            logTLSOnPlainPort()
            return close()
        }
        logger.info("refused an early talker: the client spoke before the greeting")
        perform(machine.earlyTalker())
        flushIfNeeded()
    }

    // MARK: Bytes

    /// Command lines, or message bytes while DATA runs; stops (keeping the rest in `pending`)
    /// when an action makes the connection busy.
    private func consume(_ bytes: some Collection<UInt8>) {
        if data != nil {
            // The common case for large messages: straight from the read buffer, no copy.
            let rest = feedData(bytes)
            guard !rest.isEmpty else { return }
            return consume(commandsAndData: rest[...])
        }
        consume(commandsAndData: ArraySlice(bytes))
    }

    private func consume(commandsAndData bytes: ArraySlice<UInt8>) {
        var rest = bytes
        while !rest.isEmpty, !closed {
            if busy {
                pending = Array(rest)
                return
            }
            if data != nil {
                rest = feedData(rest)[...]
                continue
            }
            guard let event = lines.next(from: &rest) else { return }
            perform(machine.received(event))
            if discardRest {
                // Pipelined behind STARTTLS: dropped unread.
                discardRest = false
                return
            }
        }
    }

    /// Message bytes; returns what follows the end of the message, if it ended.
    private func feedData(_ bytes: some Collection<UInt8>) -> [UInt8] {
        guard var decoder = data else { return Array(bytes) }
        let output = decoder.feed(bytes)
        data = decoder
        // Past the limit the bytes are read and dropped; the answer comes at the end.
        if decoder.size <= server.configuration.maximumMessageSize, let writer {
            writer.append(output.data)
            if !output.finished && writer.needsFlush { flushWriter(writer) }
        }
        guard output.finished else { return [] }
        data = nil
        let actions = machine.dataEnded(size: decoder.size)
        if !actions.contains(where: { if case .spool = $0 { true } else { false } }) {
            server.metrics.smtpMessage(.refused)
            dropWriter()  // refused (too big): nothing of it stays
            timer.awaitingCommand(now: clock.now)
        }
        perform(actions)
        return output.remainder
    }

    // MARK: Actions

    private func perform(_ actions: [SMTPServerStateMachine.Action]) {
        for action in actions where !closed {
            perform(action)
        }
    }

    private func perform(_ action: SMTPServerStateMachine.Action) {
        switch action {
        case .reply(let reply):
            if let refusal = reply.refusal { server.metrics.smtpRefused(refusal) }
            write(reply)
        case .receiveData:
            data = SMTPDataDecoder()
            // `begin` touches no file; if it ever fails, the commit answers 451 for want of a writer.
            writer = try? server.spool.begin()
            dataStarted = clock.now
            timer.awaitingData(now: dataStarted)
        case .spool(let envelope):
            spool(envelope)
        case .startTLS(let reply):
            startTLS(reply)
        case .authenticate(let user, let password):
            authenticate(user: user, password: password)
        case .close:
            close()
        }
    }

    private func spool(_ envelope: SMTPEnvelope) {
        guard let writer else {
            return spooled(.failure(Spool.SpoolError(description: "no message was being written")), envelope: envelope)
        }
        startWork()
        pool.runIfActive(eventLoop: eventLoop) { try writer.commit(envelope: envelope) }
            .assumeIsolated().whenComplete { self.spooled($0, envelope: envelope) }
    }

    private func spooled(_ result: Result<String, any Error>, envelope: SMTPEnvelope) {
        switch result {
        case .success(let id):
            server.metrics.smtpMessage(.accepted)
            // The worker hears of the message before the 250 is written: if the client is gone
            // by then, the message is durable all the same and must not wait for a restart.
            server.onSpooled(id)
            let metadata: Logger.Metadata = [
                "id": "\(id)", "size": "\(writer?.size ?? 0)", "recipients": "\(envelope.recipients.joined(separator: ","))",
                "elapsed": "\(clock.now - dataStarted)",
            ]
            writer = nil
            workDone(machine.spooled(id: id))
            // The log line is written after the 250 (the client does not wait for it), and also
            // when the client is gone: the message is accepted either way.
            logger.info("accepted message", metadata: metadata)
        case .failure(let error):
            logger.error("could not spool a message", metadata: ["error": "\(error)"])
            server.metrics.smtpMessage(.refused)
            dropWriter()
            workDone(machine.spoolFailed("\(error)"))
        }
    }

    private func flushWriter(_ writer: Spool.Writer) {
        startWork()
        pool.runIfActive(eventLoop: eventLoop) { try writer.flush() }
            .assumeIsolated().whenComplete { result in
                if case .failure(let error) = result {
                    self.logger.error("could not spool a message", metadata: ["error": "\(error)"])
                    self.busy = false
                    return self.close()
                }
                // Still in DATA: the data timeouts run again from here.
                self.timer.awaitingData(now: self.clock.now)
                self.workDone([])
            }
    }

    private func authenticate(user: String, password: String) {
        guard let authentication = server.configuration.authentication else { return close() }
        startWork()
        pool.runIfActive(eventLoop: eventLoop) { authentication.verify(user: user, password: password) }
            .assumeIsolated().whenComplete { result in
                let valid = (try? result.get()) ?? false
                if valid {
                    self.logger.info("authenticated", metadata: ["user": "\(user)"])
                } else {
                    self.logger.warning("authentication failed", metadata: ["user": "\(user)"])
                }
                self.workDone(self.machine.authenticationChecked(valid: valid))
            }
    }

    private func startTLS(_ reply: SMTPReply) {
        guard let tls, let context else { return close() }
        write(reply)
        context.flush()
        unflushed = false
        do {
            try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls), position: .before(self))
        } catch {
            logger.error("could not start TLS", metadata: ["error": "\(error)"])
            return close()
        }
        // Whatever else this read held was pipelined behind STARTTLS: dropped unread.
        discardRest = true
        pending = []
        lines = SMTPLineDecoder(maximumLength: server.configuration.maximumCommandLength)
        perform(machine.tlsStarted())
        timer.awaitingCommand(now: clock.now)
    }

    /// The connection waits for work on the pool: the client's timeouts stop, reads stop.
    private func startWork() {
        busy = true
        timer.busy()
        flushIfNeeded()
    }

    /// Back on the event loop after work on the pool: the follow-up actions, then the bytes that
    /// waited, then reading again.
    private func workDone(_ followUp: [SMTPServerStateMachine.Action]) {
        busy = false
        if data == nil { timer.awaitingCommand(now: clock.now) }
        if closed {
            dropWriter()
            return
        }
        perform(followUp)
        if !busy && !pending.isEmpty {
            let bytes = pending
            pending = []
            consume(commandsAndData: bytes[...])
        }
        flushIfNeeded()
        guard !busy, !closed else { return }
        if stopping { return shutDown() }
        if readHeld {
            readHeld = false
            context?.read()
        }
    }

    // MARK: Output and closing


    private func write(_ reply: SMTPReply) {
        guard let context else { return }
        context.write(wrapOutboundOut(ByteBuffer(bytes: reply.wire)), promise: nil)
        unflushed = true
    }

    private func flushIfNeeded() {
        guard unflushed, let context else { return }
        unflushed = false
        context.flush()
    }

    /// Closes after the replies written so far.
    private func close() {
        guard !closed else { return }
        closed = true
        flushIfNeeded()
        cancelTimers()
        context?.close(promise: nil)
    }

    private func cancelTimers() {
        watchdog?.cancel()
        watchdog = nil
        greetingTimer?.cancel()
        greetingTimer = nil
    }

    private func shutDown() {
        guard !closed else { return }
        write(SMTPReply(421, "4.3.2 \(server.configuration.hostname) Service shutting down; try again later"))
        close()
    }

    /// Drops the message being written; unlinking its file, if it has one, happens on the pool.
    private func dropWriter() {
        guard let writer else { return }
        self.writer = nil
        _ = pool.runIfActive(eventLoop: MultiThreadedEventLoopGroup.singleton.any()) { writer.abort() }
    }

    // MARK: Timeouts

    /// Looks at the timer at its next deadline (but never later than `longestSleep` from now, so
    /// a deadline set meanwhile is not missed), and closes the connection with `421` when one passed.
    private func armWatchdog() {
        guard !closed else { return }
        let now = clock.now
        let deadline = min(timer.nextDeadline ?? now + timer.longestSleep, now + timer.longestSleep)
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        watchdog = server.schedule(at: deadline, on: eventLoop) { bound.value.watchdogFired() }
    }

    private func watchdogFired() {
        guard !closed else { return }
        guard let expiry = timer.check(now: clock.now) else { return armWatchdog() }
        let hostname = server.configuration.hostname
        let reply: SMTPReply
        switch expiry {
        case .command:
            logger.info("closed an idle connection: no command within the timeout")
            reply = SMTPReply(421, "4.4.2 \(hostname) Timeout waiting for a command; closing the connection")
        case .data:
            logger.info("closed a connection: DATA stalled")
            reply = SMTPReply(421, "4.4.2 \(hostname) Timeout waiting for data; closing the connection")
        case .tooSlow(let octets, let elapsed):
            logger.info("closed a connection: DATA too slow", metadata: ["octets": "\(octets)", "seconds": "\(elapsed)"])
            reply = SMTPReply(
                421, "4.4.2 \(hostname) Data arrives too slowly (under \(server.configuration.minimumDataRate) octets/s); closing")
        }
        server.metrics.smtpRefused(.timeout)
        write(reply)
        close()
    }

    // MARK: TLS on the plain port

    /// A TLS record header: handshake (22), protocol major version 3.
    static func isTLSHandshake(_ buffer: ByteBuffer) -> Bool {
        let bytes = buffer.readableBytesView
        guard let first = bytes.first, first == 0x16 else { return false }
        return bytes.count < 2 || bytes[bytes.index(after: bytes.startIndex)] == 0x03
    }

    private func logTLSOnPlainPort() {
        logger.error(
            """
            client \(logger[metadataKey: "client"] ?? "?") sent a TLS handshake on the plain SMTP port: it is probably \
            configured for implicit TLS (SMTPS, port 465); configure it for STARTTLS or plain SMTP
            """)
    }
}

@available(*, unavailable)
extension SMTPSessionHandler: Sendable {}

/// A timer set by `SMTPServer.schedule`: an event-loop timer for the real clock, a task sleeping
/// on the injected clock otherwise.
enum SMTPTimerHandle {
    case scheduled(Scheduled<Void>)
    case task(Task<Void, Never>)

    func cancel() {
        switch self {
        case .scheduled(let scheduled): scheduled.cancel()
        case .task(let task): task.cancel()
        }
    }
}

extension SMTPServer {
    /// Runs `body` on `eventLoop` at `deadline` of the server's clock. The real clock uses the
    /// loop's own timers (set, cancelled and fired on its thread); a test clock is slept on by a
    /// task, so tests step time instead of waiting.
    func schedule(at deadline: Duration, on eventLoop: any EventLoop, _ body: @escaping @Sendable () -> Void) -> SMTPTimerHandle {
        if clock is ContinuousSMTPClock {
            let (seconds, attoseconds) = (deadline - clock.now).components
            let delay = TimeAmount.nanoseconds(max(0, seconds * 1_000_000_000 + attoseconds / 1_000_000_000))
            return .scheduled(eventLoop.scheduleTask(in: delay, body))
        }
        let clock = self.clock
        return .task(
            Task {
                do { try await clock.sleep(until: deadline) } catch { return }
                eventLoop.execute(body)
            })
    }
}
