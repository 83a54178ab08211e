public import Foundation
public import WaybillCore

/// A message we send (a document to a mailbox, a notice to a sender): text and attachments,
/// written as a complete RFC 5322 / MIME message file for `SMTPClient`.
///
/// What it guarantees: CRLF line ends everywhere; no line over 78 columns except a header word
/// that cannot be split; only ASCII on the wire (RFC 2047 encoded words for non-ASCII header text,
/// RFC 2231 for non-ASCII file names, quoted-printable for non-ASCII or long-lined text, base64 for
/// attachments); and no header injection: a line break (or another control character) in any
/// header field value is refused, not passed on. Attachments are streamed from their files,
/// never held whole in memory.
public struct OutgoingMail: Sendable {
    public struct Attachment: Sendable {
        /// The name the recipient sees (any Unicode).
        public var fileName: String
        /// `application/pdf`.
        public var contentType: String
        public var file: URL

        public init(fileName: String, contentType: String, file: URL) {
            self.fileName = fileName
            self.contentType = contentType
            self.file = file
        }
    }

    /// The sender's address (ASCII).
    public var from: String
    public var fromName: String?
    /// The recipients' addresses (ASCII).
    public var to: [String]
    public var subject: String
    /// Plain text; its line breaks become CRLF and it always ends with one.
    public var body: String
    public var attachments: [Attachment]
    /// Without `<>`: `20260314T101500.K3F9@waybill.example.com`. The caller makes it deterministic
    /// (so a retried delivery is recognisably the same message).
    public var messageID: String
    public var date: Date
    /// Written after the standard fields: `("Auto-Submitted", "auto-generated")`. A name that the
    /// builder writes itself (Date, From, To, Subject, Message-ID, MIME-Version, Content-*) is refused.
    public var extraHeaders: [(String, String)]

    public init(
        from: String, fromName: String? = nil, to: [String], subject: String, body: String,
        attachments: [Attachment] = [], messageID: String, date: Date = Date(), extraHeaders: [(String, String)] = []
    ) {
        self.from = from
        self.fromName = fromName
        self.to = to
        self.subject = subject
        self.body = body
        self.attachments = attachments
        self.messageID = messageID
        self.date = date
        self.extraHeaders = extraHeaders
    }

    /// Writes the whole message to `url` (created or replaced). On failure nothing is left there.
    public func write(to url: URL) throws(WaybillError) {
        let header = try headerLines()
        let writer: MessageWriter
        do {
            writer = try MessageWriter(url: url)
        } catch {
            throw WaybillError(.ioError, "cannot write the message \(url.path): \(error.localizedDescription)")
        }
        do {
            try writeMessage(header: header, to: writer)
            try writer.close()
        } catch {
            try? writer.close()
            try? FileManager.default.removeItem(at: url)
            if let error = error as? WaybillError { throw error }
            throw WaybillError(.ioError, "cannot write the message \(url.path): \(error.localizedDescription)")
        }
    }

    private func writeMessage(header: [String], to writer: MessageWriter) throws {
        for line in header { try writer.write(line + "\r\n") }
        let body = Self.textBody(body)
        guard !attachments.isEmpty else {
            try writer.write(body.headers.map { $0 + "\r\n" }.joined() + "\r\n" + body.content)
            return
        }
        var boundary = Self.makeBoundary()
        while body.content.contains(boundary) { boundary = Self.makeBoundary() }
        try writer.write("Content-Type: multipart/mixed;\r\n boundary=\"\(boundary)\"\r\n\r\n")
        try writer.write("This is a multi-part message in MIME format.\r\n")
        try writer.write("\r\n--\(boundary)\r\n")
        try writer.write(body.headers.map { $0 + "\r\n" }.joined() + "\r\n" + body.content)
        for attachment in attachments {
            try writer.write("\r\n--\(boundary)\r\n")
            let name = attachment.fileName
            let contentType = attachment.contentType.lowercased()
            let fields = [
                "Content-Type: \(contentType);" + Self.parameter("name", name).map { "\r\n \($0)" }.joined(separator: ";"),
                "Content-Disposition: attachment;"
                    + Self.parameter("filename", name).map { "\r\n \($0)" }.joined(separator: ";"),
                "Content-Transfer-Encoding: base64",
            ]
            try writer.write(fields.map { $0 + "\r\n" }.joined() + "\r\n")
            try Self.writeBase64(of: attachment.file, to: writer)
        }
        try writer.write("\r\n--\(boundary)--\r\n")
    }

    /// The top-level header fields, each folded (continuation lines joined by CRLF), checked.
    func headerLines() throws(WaybillError) -> [String] {
        try Self.check(address: from, field: "From")
        guard !to.isEmpty else { throw WaybillError(.invalidEmail, "a message needs at least one recipient") }
        for address in to { try Self.check(address: address, field: "To") }
        try Self.checkText(subject, field: "Subject")
        if let fromName { try Self.checkText(fromName, field: "the sender's name") }
        guard messageID.contains("@"), !messageID.hasPrefix("@"), !messageID.hasSuffix("@"),
            messageID.unicodeScalars.allSatisfy({ (0x21...0x7E).contains($0.value) && $0 != "<" && $0 != ">" })
        else {
            throw WaybillError(.invalidEmail, "'\(messageID)' is not a Message-ID (printable ASCII with an @, no <>)")
        }
        for attachment in attachments {
            try Self.checkText(attachment.fileName, field: "an attachment's file name")
            let parts = attachment.contentType.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.unicodeScalars.allSatisfy(Self.isToken) })
            else {
                throw WaybillError(.invalidEmail, "'\(attachment.contentType)' is not a content type (type/subtype)")
            }
        }

        var lines = [
            "Date: \(Self.rfc5322Date(date))",
            Self.mailboxField("From", address: from, name: fromName),
            Self.fold("To: " + to.joined(separator: ", ")),
            Self.unstructuredField("Subject", subject),
            "Message-ID: <\(messageID)>",
            "MIME-Version: 1.0",
        ]
        for (name, value) in extraHeaders {
            guard !name.isEmpty, name.unicodeScalars.allSatisfy({ (0x21...0x7E).contains($0.value) && $0 != ":" })
            else { throw WaybillError(.invalidEmail, "'\(name)' is not a header field name") }
            let lowered = name.lowercased()
            guard !Self.ownFields.contains(lowered), !lowered.hasPrefix("content-") else {
                throw WaybillError(.invalidEmail, "the header field \(name) is the message builder's own")
            }
            try Self.checkText(value, field: name)
            lines.append(Self.unstructuredField(name, value))
        }
        return lines
    }

    /// The builder's own fields, and Bcc, which a sent message must not carry (RFC 5322 §3.6.3).
    private static let ownFields: Set<String> = ["date", "from", "to", "subject", "message-id", "mime-version", "bcc"]

    // MARK: - Checks

    /// A line break in a header value would end the field and start another of the caller's
    /// choosing; other control characters have no business there either. Tab is allowed.
    static func checkText(_ text: String, field: String) throws(WaybillError) {
        for scalar in text.unicodeScalars where (scalar.value < 0x20 && scalar != "\t") || scalar.value == 0x7F {
            let what = scalar == "\r" || scalar == "\n" ? "a line break" : "a control character"
            throw WaybillError(.invalidEmail, "\(field) contains \(what), which is not allowed in a header")
        }
    }

    /// ASCII addresses only (no SMTPUTF8 messages), and nothing that would end the address early.
    static func check(address: String, field: String) throws(WaybillError) {
        guard let at = address.lastIndex(of: "@"), at != address.startIndex, address.index(after: at) != address.endIndex,
            address.unicodeScalars.allSatisfy({
                (0x21...0x7E).contains($0.value) && !"<>(),;:\"[]\\".unicodeScalars.contains($0)
            })
        else {
            throw WaybillError(
                .invalidEmail, "\(field): '\(address.debugDescription.dropFirst().dropLast())' is not a plain ASCII address")
        }
    }

    /// RFC 2045 §5.1 token characters.
    static func isToken(_ scalar: Unicode.Scalar) -> Bool {
        (0x21...0x7E).contains(scalar.value) && !"()<>@,;:\\\"/[]?=".unicodeScalars.contains(scalar)
    }

    // MARK: - Header encoding

    /// `Thu, 05 Mar 2026 14:07:09 +0000` (RFC 5322 §3.3), in UTC, English names whatever the locale.
    static func rfc5322Date(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.weekday, .day, .month, .year, .hour, .minute, .second], from: date)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int?) -> String { String(format: "%02d", value ?? 0) }
        return "\(days[(parts.weekday ?? 1) - 1]), \(two(parts.day)) \(months[(parts.month ?? 1) - 1]) \(parts.year ?? 1970) "
            + "\(two(parts.hour)):\(two(parts.minute)):\(two(parts.second)) +0000"
    }

    /// `Name: value` for unstructured text (RFC 5322 §3.2.5): folded ASCII when the text is
    /// printable ASCII (and has no `=?`, which a reader would take for an encoded word), else RFC
    /// 2047 encoded words of whole characters, each line under 78 columns.
    static func unstructuredField(_ name: String, _ value: String) -> String {
        let plain = value.unicodeScalars.allSatisfy { (0x20...0x7E).contains($0.value) || $0 == "\t" }
        if plain && !value.contains("=?") {
            let folded = fold("\(name): \(value)")
            if folded.split(separator: "\r\n").allSatisfy({ $0.utf8.count <= 998 }) { return folded }
        }
        return encodedWords(value, after: "\(name): ")
    }

    /// `From: "Name" <address>`, `From: =?UTF-8?B?…?= <address>`, or the address alone.
    static func mailboxField(_ field: String, address: String, name: String?) -> String {
        guard let name, !name.isEmpty else { return "\(field): \(address)" }
        let plain = name.unicodeScalars.allSatisfy { (0x20...0x7E).contains($0.value) } && !name.contains("=?")
        let phrase =
            plain
            ? "\(field): \"" + name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                + "\""
            : encodedWords(name, after: "\(field): ")
        let lastLine = phrase.components(separatedBy: "\r\n").last ?? phrase
        return phrase + (lastLine.utf8.count + address.utf8.count + 3 > 78 ? "\r\n <\(address)>" : " <\(address)>")
    }

    /// Folds a header line (RFC 5322 §2.2.3) before spaces so that lines stay within 78 columns
    /// where the words allow. A fold goes only before a space that starts a word, so no line is
    /// whitespace alone, and unfolding (deleting the CRLFs) gives the line back exactly.
    static func fold(_ line: String) -> String {
        let scalars = Array(line.unicodeScalars)
        var lines: [String] = []
        var current = String.UnicodeScalarView()
        var index = 0
        // Words: each starts at a space followed by a non-space (or at the very start).
        while index < scalars.count {
            var end = index + 1
            while end < scalars.count && !(scalars[end] == " " && end + 1 < scalars.count && scalars[end + 1] != " ") {
                end += 1
            }
            let word = scalars[index..<end]
            if !current.isEmpty && current.count + word.count > 78 {
                lines.append(String(current))
                current = String.UnicodeScalarView()
            }
            current.append(contentsOf: word)
            index = end
        }
        lines.append(String(current))
        return lines.joined(separator: "\r\n")
    }

    /// `prefix` then `=?UTF-8?B?…?=` words (RFC 2047 §2, §5(1)), one per line, each line within 78
    /// columns and each word whole characters, so no reader sees half a character.
    static func encodedWords(_ text: String, after prefix: String) -> String {
        let overhead = "=?UTF-8?B??=".utf8.count
        var words: [String] = []
        var chunk: [UInt8] = []
        func budget() -> Int {
            let column = words.isEmpty ? prefix.utf8.count : 1
            return max(4, (78 - column - overhead) / 4 * 3)
        }
        for character in text {
            let bytes = Array(String(character).utf8)
            if !chunk.isEmpty && chunk.count + bytes.count > budget() {
                words.append("=?UTF-8?B?\(Data(chunk).base64EncodedString())?=")
                chunk = []
            }
            chunk += bytes
        }
        if !chunk.isEmpty || words.isEmpty { words.append("=?UTF-8?B?\(Data(chunk).base64EncodedString())?=") }
        return prefix + words.joined(separator: "\r\n ")
    }

    /// A MIME parameter as one or more `name=value` pieces for separate folded lines:
    /// `filename="plain.pdf"` (quotes and backslashes escaped) for printable ASCII, RFC 2231
    /// `filename*=utf-8''Rechnung%20M%C3%A4rz.pdf` otherwise, and RFC 2231 §3 continuations
    /// (`filename*0*=…; filename*1*=…`) when one line would pass 78 columns.
    static func parameter(_ name: String, _ value: String) -> [String] {
        let maximum = 78 - 2  // a leading space, a trailing ';'
        if value.unicodeScalars.allSatisfy({ (0x20...0x7E).contains($0.value) }) {
            func quoted(_ text: Substring) -> String {
                "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
            }
            let whole = "\(name)=\(quoted(value[...]))"
            if whole.utf8.count <= maximum { return [whole] }
            return pieces(of: Array(value), size: maximum - name.utf8.count - 8).enumerated().map { index, piece in
                "\(name)*\(index)=\(quoted(Substring(String(piece))))"
            }
        }
        // Percent-encode character by character so a piece never ends inside a character.
        let encoded = value.map { character in
            String(character).utf8.map { byte in
                attributeCharacters.contains(byte) ? String(UnicodeScalar(byte)) : String(format: "%%%02X", byte)
            }.joined()
        }
        let whole = "\(name)*=utf-8''" + encoded.joined()
        if whole.utf8.count <= maximum { return [whole] }
        var result: [String] = []
        var piece = ""
        for character in encoded {
            let head = result.isEmpty ? "\(name)*0*=utf-8''" : "\(name)*\(result.count)*="
            if !piece.isEmpty && head.utf8.count + piece.utf8.count + character.utf8.count > maximum {
                result.append(head + piece)
                piece = ""
            }
            piece += character
        }
        result.append((result.isEmpty ? "\(name)*0*=utf-8''" : "\(name)*\(result.count)*=") + piece)
        return result
    }

    private static func pieces(of characters: [Character], size: Int) -> [[Character]] {
        stride(from: 0, to: characters.count, by: max(1, size / 2)).map {
            Array(characters[$0..<min($0 + max(1, size / 2), characters.count)])
        }
    }

    /// RFC 2231 §7 attribute-char: what may stand for itself in an extended value.
    private static let attributeCharacters: Set<UInt8> = Set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$&+-.^_`|~".utf8)

    /// `=_` cannot occur in base64 or quoted-printable, so no encoded part can contain the boundary;
    /// only a 7bit body could, and `write` checks that.
    static func makeBoundary() -> String {
        var generator = SystemRandomNumberGenerator()
        let random = (0..<2).map { _ in
            let hex = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
        return "=_waybill_" + random
    }

    // MARK: - Body

    /// The text part: 7bit when the text is ASCII with lines of at most 998 octets (RFC 5322
    /// §2.1.1), quoted-printable otherwise (RFC 2045 §6.7). The content ends with CRLF.
    static func textBody(_ text: String) -> (headers: [String], content: String) {
        var lines = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
            .components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        let sevenBit = lines.allSatisfy { line in
            line.utf8.count <= 998 && line.unicodeScalars.allSatisfy { (0x20...0x7E).contains($0.value) || $0 == "\t" }
        }
        if sevenBit {
            return (
                ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 7bit"],
                lines.map { $0 + "\r\n" }.joined()
            )
        }
        return (
            ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: quoted-printable"],
            lines.map { quotedPrintable(Array($0.utf8)) + "\r\n" }.joined()
        )
    }

    /// One line of text as quoted-printable lines of at most 76 characters, joined by soft breaks.
    static func quotedPrintable(_ line: [UInt8]) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var output: [UInt8] = []
        var column = 0
        for (index, byte) in line.enumerated() {
            let isLast = index == line.count - 1
            var token: [UInt8]
            if (0x21...0x7E).contains(byte) && byte != UInt8(ascii: "=") {
                token = [byte]
            } else if (byte == 0x20 || byte == 0x09) && !isLast {
                token = [byte]
            } else {
                token = [UInt8(ascii: "="), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            }
            // Leave room for the `=` of a soft break, unless this token ends the line.
            if column + token.count > (isLast ? 76 : 75) {
                output += [UInt8(ascii: "="), UInt8(ascii: "\r"), UInt8(ascii: "\n")]
                column = 0
            }
            output += token
            column += token.count
        }
        return String(decoding: output, as: UTF8.self)
    }

    // MARK: - Attachments

    /// The file as base64 in lines of 76 characters (RFC 2045 §6.8) joined by CRLF, read 57 × 1024
    /// bytes at a time (whole lines' worth), so memory stays at that whatever the file's size.
    static func writeBase64(of file: URL, to writer: MessageWriter) throws {
        let input: FileHandle
        do {
            input = try FileHandle(forReadingFrom: file)
        } catch {
            throw WaybillError(.ioError, "cannot read the attachment \(file.path): \(error.localizedDescription)")
        }
        defer { try? input.close() }
        let lineBytes = 57
        var pending = Data()
        var firstLine = true
        var atEnd = false
        while !atEnd {
            let chunk = try input.read(upToCount: lineBytes * 1_024) ?? Data()
            atEnd = chunk.isEmpty
            pending.append(chunk)
            let usable = atEnd ? pending.count : pending.count / lineBytes * lineBytes
            guard usable > 0 else { continue }
            let encoded = Array(pending.prefix(usable).base64EncodedData())
            pending = Data(pending.dropFirst(usable))
            var lines: [UInt8] = []
            lines.reserveCapacity(encoded.count + encoded.count / 76 * 2 + 2)
            for start in stride(from: 0, to: encoded.count, by: 76) {
                if !firstLine { lines += [UInt8(ascii: "\r"), UInt8(ascii: "\n")] }
                firstLine = false
                lines += encoded[start..<min(start + 76, encoded.count)]
            }
            try writer.write(bytes: lines)
        }
    }
}

/// Buffered writes to a new file, 64 KB at a time.
final class MessageWriter {
    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private var closed = false

    init(url: URL) throws {
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
            throw WaybillError(.ioError, "cannot create \(url.path)")
        }
        handle = try FileHandle(forWritingTo: url)
        buffer.reserveCapacity(1 << 17)
    }

    func write(_ text: String) throws {
        try write(bytes: Array(text.utf8))
    }

    func write(bytes: [UInt8]) throws {
        buffer += bytes
        if buffer.count >= 1 << 16 { try flush() }
    }

    private func flush() throws {
        try handle.write(contentsOf: buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    func close() throws {
        guard !closed else { return }
        closed = true
        defer { try? handle.close() }
        try flush()
    }
}
