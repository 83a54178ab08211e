import Foundation
import NIOCore
import NIOPosix

/// The SMTP listener: one async channel per connection inside a discarding task group, so one
/// connection's error never stops the server (swift-nio's NIOTCPEchoServer pattern). Protocol
/// logic is `SMTPServerStateMachine`'s; this only moves bytes and performs its actions.
///
/// Spool writes (fsync included) run in the connection's task, on Swift's concurrency pool, never
/// on an event loop.
public struct SMTPServer: Sendable {
    public var host: String
    public var port: Int
    public var configuration: SMTPConfiguration
    public var spool: Spool
    public var recipientPolicy: @Sendable (String) -> RecipientDecision
    /// Told of every committed message, after its 250 is queued.
    public var onSpooled: @Sendable (String) -> Void

    public init(
        host: String, port: Int, configuration: SMTPConfiguration, spool: Spool,
        recipientPolicy: @escaping @Sendable (String) -> RecipientDecision, onSpooled: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.host = host
        self.port = port
        self.configuration = configuration
        self.spool = spool
        self.recipientPolicy = recipientPolicy
        self.onSpooled = onSpooled
    }

    /// Binds and serves until the task is cancelled. `onBound` receives the port (useful with port 0).
    public func run(onBound: @Sendable (Int) -> Void = { _ in }) async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 256)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        onBound(server.channel.localAddress?.port ?? port)
        try await withThrowingDiscardingTaskGroup { group in
            try await server.executeThenClose { inbound in
                for try await connection in inbound {
                    group.addTask { await self.serve(connection) }
                }
            }
        }
    }

    private func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        try? await connection.executeThenClose { inbound, outbound in
            var session = Session(server: self)
            for action in session.machine.connected() { if try await session.perform(action, outbound) { return } }
            for try await buffer in inbound {
                if try await session.consume(Array(buffer.readableBytesView), outbound) { return }
            }
            session.writer?.abort()
        }
    }

    /// One connection's state; lives in its task.
    struct Session {
        let server: SMTPServer
        var machine: SMTPServerStateMachine
        var lines: SMTPLineDecoder
        var data: SMTPDataDecoder?
        var writer: Spool.Writer?

        init(server: SMTPServer) {
            self.server = server
            machine = SMTPServerStateMachine(configuration: server.configuration, recipientPolicy: server.recipientPolicy)
            lines = SMTPLineDecoder(maximumLength: server.configuration.maximumCommandLength)
        }

        /// Returns true when the connection should close.
        mutating func consume(_ bytes: [UInt8], _ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) async throws -> Bool {
            var pending = bytes
            while !pending.isEmpty {
                if var decoder = data {
                    let output = decoder.feed(pending)
                    data = decoder
                    pending = output.remainder
                    // Past the limit the bytes are read and dropped; the answer comes at the end.
                    if decoder.size <= server.configuration.maximumMessageSize {
                        try writer?.write(output.data)
                    }
                    guard output.finished else { return false }
                    data = nil
                    let actions = machine.dataEnded(size: decoder.size)
                    if !actions.contains(where: { if case .spool = $0 { true } else { false } }) {
                        writer?.abort()  // refused (too big): nothing of it stays
                        writer = nil
                    }
                    for action in actions {
                        if try await perform(action, outbound) { return true }
                    }
                    continue
                }
                var rest = pending[...]
                pending = []
                while data == nil, let event = lines.next(from: &rest) {
                    for action in machine.received(event) {
                        if try await perform(action, outbound) { return true }
                    }
                }
                // After DATA the rest of this read is message bytes.
                pending = Array(rest)
            }
            return false
        }

        mutating func perform(_ action: SMTPServerStateMachine.Action, _ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>)
            async throws -> Bool
        {
            switch action {
            case .reply(let reply):
                try await outbound.write(ByteBuffer(bytes: reply.wire))
            case .receiveData:
                data = SMTPDataDecoder()
                writer = try server.spool.begin()
            case .spool(let envelope):
                var followUp: [SMTPServerStateMachine.Action]
                do {
                    guard let writer else { throw Spool.SpoolError(description: "no message was being written") }
                    let id = try writer.commit(envelope: envelope)
                    followUp = machine.spooled(id: id)
                    self.writer = nil
                    for action in followUp { if try await perform(action, outbound) { return true } }
                    server.onSpooled(id)
                    return false
                } catch {
                    writer?.abort()
                    writer = nil
                    followUp = machine.spoolFailed("\(error)")
                }
                for action in followUp { if try await perform(action, outbound) { return true } }
            case .close:
                return true
            }
            return false
        }
    }
}
