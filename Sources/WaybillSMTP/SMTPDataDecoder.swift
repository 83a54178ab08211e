/// The DATA phase (RFC 5321 §4.1.1.4, §4.5.2): un-stuffs leading dots and finds the end of the
/// message, which is `<CRLF>.<CRLF>` and nothing else.
///
/// SMTP smuggling (CVE-2023-51764 and its siblings) hides a second message behind an "end" that
/// one server accepts and the next does not: `<LF>.<LF>`, `<LF>.<CRLF>`, `<CR>.<CR>`,
/// `<CRLF>.<LF>`. Here none of them ends anything: they are message bytes. Bare CR and LF are
/// counted so the pipeline can refuse or normalize them before a message is ever relayed.
///
/// The message is handed out in chunks as it arrives (`feed` returns them), so it can be
/// streamed to the spool, never held whole. A value type; its tests need no sockets.
public struct SMTPDataDecoder: Sendable {
    public struct Output: Equatable, Sendable {
        /// Message bytes, un-stuffed, CRLFs as received.
        public var data: [UInt8] = []
        /// True once `<CRLF>.<CRLF>` has been seen; `data` is then complete.
        public var finished = false
        /// Bytes after the end: the client's next commands, pipelined.
        public var remainder: [UInt8] = []
    }

    private enum State {
        case lineStart  // after CRLF, or at the very start of the message
        case dot  // "." at the start of a line
        case dotCR  // ".\r" at the start of a line
        case text  // inside a line
        case textCR  // "\r" inside a line
        case done
    }

    private var state = State.lineStart
    public private(set) var bareLineFeeds = 0
    public private(set) var bareCarriageReturns = 0
    public private(set) var longestLine = 0
    private var lineLength = 0
    public private(set) var size = 0

    public init() {}

    public mutating func feed(_ bytes: some Collection<UInt8>) -> Output {
        if let output = bytes.withContiguousStorageIfAvailable({ feed(buffer: $0) }) { return output }
        return Array(bytes).withUnsafeBufferPointer { feed(buffer: $0) }
    }

    private mutating func feed(buffer bytes: UnsafeBufferPointer<UInt8>) -> Output {
        var output = Output()
        output.data.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            // Fast path: inside a line, copy the run up to the next CR or LF in one go. Scans are
            // mostly this (a base64 attachment is 76-octet lines of it).
            if case .text = state {
                var end = index
                while end < bytes.count && bytes[end] != UInt8(ascii: "\r") && bytes[end] != UInt8(ascii: "\n") { end += 1 }
                if end > index {
                    output.data.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[index..<end]))
                    size += end - index
                    lineLength += end - index
                    index = end
                    continue
                }
            }
            let byte = bytes[index]
            index += 1
            switch state {
            case .done:
                output.remainder.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[(index - 1)...]))
                return output
            case .lineStart:
                if byte == UInt8(ascii: ".") {
                    state = .dot
                } else {
                    state = .text
                    take(byte, into: &output)
                }
            case .dot:
                if byte == UInt8(ascii: "\r") {
                    state = .dotCR
                } else {
                    // A stuffed dot: drop it, keep the rest of the line.
                    state = .text
                    lineLength += 1
                    take(byte, into: &output)
                }
            case .dotCR:
                if byte == UInt8(ascii: "\n") {
                    state = .done
                    output.finished = true
                } else {
                    // ".\r" then something else: the dot was stuffing, the CR is a bare CR.
                    state = .text
                    lineLength += 1
                    bareCarriageReturns += 1
                    emit(UInt8(ascii: "\r"), into: &output)
                    take(byte, into: &output)
                }
            case .text:
                take(byte, into: &output)
            case .textCR:
                if byte == UInt8(ascii: "\n") {
                    emit(byte, into: &output)
                    endLine()
                } else {
                    bareCarriageReturns += 1
                    state = .text
                    take(byte, into: &output)
                }
            }
        }
        return output
    }

    /// A byte in the middle of a line.
    private mutating func take(_ byte: UInt8, into output: inout Output) {
        if byte == UInt8(ascii: "\r") {
            emit(byte, into: &output)
            state = .textCR
        } else if byte == UInt8(ascii: "\n") {
            // A bare LF is data, never a line end: what follows is not at a line start.
            bareLineFeeds += 1
            emit(byte, into: &output)
            state = .text
        } else {
            emit(byte, into: &output)
            state = .text
        }
    }

    private mutating func emit(_ byte: UInt8, into output: inout Output) {
        output.data.append(byte)
        size += 1
        lineLength += 1
    }

    private mutating func endLine() {
        longestLine = max(longestLine, lineLength)
        lineLength = 0
        state = .lineStart
    }
}
