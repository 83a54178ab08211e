import NIOCore

/// The time source of the SMTP timeouts, injected so tests step time instead of waiting
/// (../shared/STYLE.md, "inject the clock"). Instants are durations since an arbitrary origin
/// fixed for the clock's life, which keeps the protocol free of associated types.
public protocol SMTPClock: Sendable {
    var now: Duration { get }
    /// Returns at or after `deadline`, or throws `CancellationError` when the task is cancelled.
    func sleep(until deadline: Duration) async throws
}

/// The real clock: `ContinuousClock`, which keeps counting while the machine sleeps.
public struct ContinuousSMTPClock: SMTPClock {
    private let origin = ContinuousClock.now

    public init() {}

    public var now: Duration { ContinuousClock.now - origin }

    public func sleep(until deadline: Duration) async throws {
        try await ContinuousClock().sleep(until: origin + deadline, tolerance: .milliseconds(100))
    }
}

extension ContinuousSMTPClock {
    /// `sleep(until:)` as a timer of `eventLoop`, for a task that runs on that loop (a connection's
    /// watchdog). `Task.sleep` arms a Dispatch timer, which costs a wake-up of Dispatch's timer
    /// thread per connection and leaves the timer armed until its deadline after a cancellation;
    /// an event loop timer is set, cancelled and fired on the loop's own thread.
    func sleep(until deadline: Duration, on eventLoop: any EventLoop) async throws {
        let (seconds, attoseconds) = (deadline - now).components
        let delay = TimeAmount.nanoseconds(max(0, seconds * 1_000_000_000 + attoseconds / 1_000_000_000))
        let scheduled = eventLoop.scheduleTask(in: delay) {}
        try await withTaskCancellationHandler {
            do { try await scheduled.futureResult.get() } catch { throw CancellationError() }
        } onCancel: {
            scheduled.cancel()
        }
    }
}
