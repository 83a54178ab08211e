/// Splits the command phase of an SMTP session into lines, CRLF only, with RFC 5321's limit.
///
/// Bytes go in as they arrive; complete lines come out. Unlike NIOExtras' LineBasedFrameDecoder
/// it does not accept a bare LF as a line end and does not grow without bound: a line longer
/// than `maximumLength` octets (512 for commands, §4.5.3.1.4, CRLF included) is dropped up to its
/// CRLF and reported once, so the server can answer `500 5.5.6` and go on. A line ended by a
/// bare LF is reported too: that is how SMTP smuggling starts, and such a client gets `500`.
/// A value type: no I/O, so its tests need no sockets.
public struct SMTPLineDecoder: Sendable {
    public enum Event: Equatable, Sendable {
        /// A line without its CRLF.
        case line([UInt8])
        /// A line over the limit was discarded.
        case tooLong
        /// A line ended by LF without CR was discarded.
        case bareLineFeed
    }

    public let maximumLength: Int
    private var buffer: [UInt8] = []
    private var discarding = false

    public init(maximumLength: Int = 512) {
        self.maximumLength = maximumLength
    }

    /// Feeds bytes; returns the events they complete, in order.
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [Event] {
        var events: [Event] = []
        for byte in bytes {
            if let event = step(byte) { events.append(event) }
        }
        return events
    }

    /// Consumes bytes from the front of `bytes` up to and including the first complete event,
    /// and returns it; nil (with `bytes` emptied) if they hold no complete line. The server uses
    /// this so that bytes after `DATA` reach the DATA decoder, not the command parser.
    public mutating func next(from bytes: inout ArraySlice<UInt8>) -> Event? {
        while let byte = bytes.popFirst() {
            if let event = step(byte) { return event }
        }
        return nil
    }

    private mutating func step(_ byte: UInt8) -> Event? {
        if byte == UInt8(ascii: "\n") {
            let endsWithCR = buffer.last == UInt8(ascii: "\r")
            defer { buffer.removeAll(keepingCapacity: true) }
            if discarding {
                discarding = false
                return nil
            }
            if endsWithCR {
                buffer.removeLast()
                return .line(buffer)
            }
            return .bareLineFeed
        }
        if discarding {
            // Keep only a trailing CR so a CRLF split across reads is still seen.
            buffer = byte == UInt8(ascii: "\r") ? [byte] : []
            return nil
        }
        buffer.append(byte)
        // The limit counts the CRLF: content may use maximumLength - 2 octets.
        if buffer.count > maximumLength - 1 || (buffer.count == maximumLength - 1 && byte != UInt8(ascii: "\r")) {
            discarding = true
            buffer = byte == UInt8(ascii: "\r") ? [byte] : []
            return .tooLong
        }
        return nil
    }

    /// Bytes received but not yet a line (after DATA ends, the rest of the read is commands).
    public var pending: [UInt8] { buffer }
}
