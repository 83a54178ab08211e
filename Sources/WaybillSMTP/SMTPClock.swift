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
