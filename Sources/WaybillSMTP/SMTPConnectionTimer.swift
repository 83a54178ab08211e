/// The server-side timeouts of one connection as a value type: the session reports what it is
/// waiting for and what it read, a watchdog asks when to look next and whether time is up.
/// No clock inside: every method takes `now`, so tests need neither sockets nor waiting.
///
/// RFC 5321 §4.5.3.2: the server waits 5 minutes for a command (§4.5.3.2.7) and 3 minutes
/// between two reads of the DATA block (§4.5.3.2.6); the initial 220 wait and the 10 minutes
/// after the final dot are the client's to enforce. On top of that, a minimum average DATA
/// rate over a window, against clients that trickle a byte now and then to stay inside 3 minutes.
public struct SMTPConnectionTimer: Sendable {
    public enum Expiry: Sendable, Equatable {
        case command
        case data
        case tooSlow(octets: Int, in: Duration)
    }

    private enum Phase: Sendable {
        /// Waiting for the client's next command since `since`.
        case command(since: Duration)
        /// In DATA: last read at `lastRead`; `windowOctets` arrived since `windowStart`.
        case data(lastRead: Duration, windowStart: Duration, windowOctets: Int)
        /// The server is working (spooling, checking a password): the client is waiting for us.
        case busy
    }

    public let commandTimeout: Duration
    public let dataTimeout: Duration
    public let minimumDataRate: Int
    public let dataRateWindow: Duration
    private var phase: Phase

    public init(configuration: SMTPConfiguration, now: Duration) {
        commandTimeout = configuration.commandTimeout
        dataTimeout = configuration.dataTimeout
        minimumDataRate = configuration.minimumDataRate
        dataRateWindow = configuration.dataRateWindow
        phase = .command(since: now)
    }

    /// The longest a watchdog may sleep without looking again, whatever the phase becomes in the
    /// meantime: every deadline a phase change creates lies at least this far after the change.
    public var longestSleep: Duration {
        var shortest = min(commandTimeout, dataTimeout)
        if minimumDataRate > 0 { shortest = min(shortest, dataRateWindow) }
        return max(shortest, .milliseconds(10))
    }

    /// The server is waiting for a command (after a reply, after TLS starts, after DATA ends).
    public mutating func awaitingCommand(now: Duration) {
        phase = .command(since: now)
    }

    /// `354` was sent: the DATA block starts.
    public mutating func awaitingData(now: Duration) {
        phase = .data(lastRead: now, windowStart: now, windowOctets: 0)
    }

    /// The server does work the client must wait for; no client timeout runs.
    public mutating func busy() {
        phase = .busy
    }

    /// Bytes arrived.
    public mutating func received(octets: Int, now: Duration) {
        switch phase {
        case .command:
            phase = .command(since: now)
        case .data(_, let windowStart, let windowOctets):
            phase = .data(lastRead: now, windowStart: windowStart, windowOctets: windowOctets + octets)
        case .busy:
            break
        }
    }

    /// When something may expire next; nil while the server is busy.
    public var nextDeadline: Duration? {
        switch phase {
        case .command(let since):
            return since + commandTimeout
        case .data(let lastRead, let windowStart, _):
            let silence = lastRead + dataTimeout
            return minimumDataRate > 0 ? min(silence, windowStart + dataRateWindow) : silence
        case .busy:
            return nil
        }
    }

    /// What has expired at `now`, if anything. A data-rate window that passed its check starts
    /// a new one.
    public mutating func check(now: Duration) -> Expiry? {
        switch phase {
        case .command(let since):
            return now >= since + commandTimeout ? .command : nil
        case .data(let lastRead, let windowStart, let windowOctets):
            if now >= lastRead + dataTimeout { return .data }
            guard minimumDataRate > 0, now >= windowStart + dataRateWindow else { return nil }
            let elapsed = now - windowStart
            let required = Double(minimumDataRate) * (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
            if Double(windowOctets) < required { return .tooSlow(octets: windowOctets, in: elapsed) }
            phase = .data(lastRead: lastRead, windowStart: now, windowOctets: 0)
            return nil
        case .busy:
            return nil
        }
    }
}
