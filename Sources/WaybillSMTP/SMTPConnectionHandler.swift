import NIOCore
import NIOSSL
import Synchronization

/// What the connection task reads: bytes, and the one marker that says TLS is now in place.
enum SMTPInbound: Sendable {
    case bytes(ByteBuffer)
    /// Every `.bytes` before this arrived in clear, every one after it through TLS.
    case tlsStarted
}

/// What the connection task writes.
enum SMTPOutbound: Sendable {
    case bytes(ByteBuffer)
    /// Write this reply (`220 Ready to start TLS`) in clear, then put TLS in the pipeline.
    case startTLS(ByteBuffer, NIOSSLContext)
}

/// Facts the event loop learns and the connection task reads, across threads: atomics.
final class SMTPConnectionFlags: Sendable {
    /// The client's address, as the connection limits count it.
    let address: String
    /// Within the connection limits (counted in when accepted, out when closed); if not, the
    /// task answers 421 and closes.
    let admitted: Bool
    /// The client has sent at least one byte (an early talker, if the greeting is not out yet).
    let clientSpoke = Atomic<Bool>(false)
    /// The handler writes the greeting as the connection becomes active (decided when the
    /// connection is set up, so the task never writes a second one).
    let greetedByHandler: Bool

    init(address: String, admitted: Bool, greetedByHandler: Bool) {
        self.address = address
        self.admitted = admitted
        self.greetedByHandler = greetedByHandler
    }
}

/// The one handler between the socket and the `NIOAsyncChannel` of a connection. It exists for
/// STARTTLS, which an async channel cannot do alone.
///
/// Why a handler: the switch must happen at one exact point of the byte stream. The `220 Ready
/// to start TLS` has to leave in clear, every later byte has to pass the TLS handler, and the
/// connection task must be able to tell plaintext that was already read (and queued in the async
/// channel's buffer, out of our reach) from decrypted bytes. Doing it from the task with
/// `pipeline.addHandler(…, position: .first)` would race the reads and writes already in flight.
/// Here, on the event loop and in one go: the reply is written and flushed (it goes past this
/// handler straight to the socket, so it stays clear), `NIOSSLServerHandler` is added just before
/// this handler (so the socket's next bytes are decrypted), and `.tlsStarted` is sent up. The task
/// discards everything it reads before that marker: bytes a client pipelined after STARTTLS,
/// in the same packet or not, never reach the TLS session (the command-injection class of
/// CVE-2011-0411).
///
/// Event-loop bound: used only from its channel's event loop.
final class SMTPConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = SMTPInbound
    typealias OutboundIn = SMTPOutbound
    typealias OutboundOut = ByteBuffer

    private let flags: SMTPConnectionFlags
    private let greeting: ByteBuffer?

    /// `greeting`: written as soon as the connection is active, when there is no greeting delay
    /// and the connection is admitted. The client reads it while the connection's task starts,
    /// instead of after: that start (a task, its watchdog, the async channel's first write) was
    /// most of the time from connect to greeting.
    init(flags: SMTPConnectionFlags, greeting: ByteBuffer?) {
        self.flags = flags
        self.greeting = greeting
    }

    func channelActive(context: ChannelHandlerContext) {
        if let greeting { context.writeAndFlush(wrapOutboundOut(greeting), promise: nil) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        flags.clientSpoke.store(true, ordering: .relaxed)
        context.fireChannelRead(wrapInboundOut(.bytes(unwrapInboundIn(data))))
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .bytes(let buffer):
            context.write(wrapOutboundOut(buffer), promise: promise)
        case .startTLS(let reply, let sslContext):
            context.writeAndFlush(wrapOutboundOut(reply), promise: nil)
            do {
                let tls = NIOSSLServerHandler(context: sslContext)
                try context.pipeline.syncOperations.addHandler(tls, position: .before(self))
                context.fireChannelRead(wrapInboundOut(.tlsStarted))
                promise?.succeed()
            } catch {
                promise?.fail(error)
                context.close(promise: nil)
            }
        }
    }
}

@available(*, unavailable)
extension SMTPConnectionHandler: Sendable {}
