/// Turns a message file into what follows `354` on the wire (RFC 5321 §4.1.1.4, §4.5.2): every
/// line ended by CRLF (a bare LF or a bare CR becomes CRLF: servers refuse bare ones, and they are
/// how SMTP smuggling works), a dot doubled at the start of a line, and `CRLF . CRLF` at the end.
///
/// Fed chunk by chunk as the file is read, so a CR at the end of one chunk and an LF at the start
/// of the next are still one line end. A value type without I/O.
struct SMTPClientDataEncoder: Sendable {
    private var atLineStart = true
    private var afterCR = false

    init() {}

    /// Appends the wire form of `chunk` to `output`.
    mutating func encode(_ chunk: some Sequence<UInt8>, into output: inout [UInt8]) {
        let cr = UInt8(ascii: "\r")
        let lf = UInt8(ascii: "\n")
        for byte in chunk {
            if afterCR {
                afterCR = false
                output.append(lf)
                atLineStart = true
                if byte == lf { continue }
            }
            switch byte {
            case cr:
                output.append(cr)
                afterCR = true
            case lf:
                output.append(cr)
                output.append(lf)
                atLineStart = true
            default:
                if atLineStart && byte == UInt8(ascii: ".") { output.append(byte) }
                output.append(byte)
                atLineStart = false
            }
        }
    }

    /// Appends the end of the message: the last line's CRLF if it had none, then `.CRLF`.
    mutating func finish(into output: inout [UInt8]) {
        if afterCR {
            output.append(UInt8(ascii: "\n"))
            afterCR = false
            atLineStart = true
        }
        if !atLineStart { output.append(contentsOf: [UInt8(ascii: "\r"), UInt8(ascii: "\n")]) }
        output.append(contentsOf: [UInt8(ascii: "."), UInt8(ascii: "\r"), UInt8(ascii: "\n")])
        atLineStart = true
    }
}
