internal import CGMime
import Foundation

/// The message text a person wrote, for routing hints: bounded, UTF-8, LF line ends.
enum BodyText {
    static let maximumBytes = 64 * 1024

    /// Streams at most `maximumBytes` of a text part's decoded content from the spool file.
    ///
    /// Reads through a filter chain (transfer decoding, charset to UTF-8, CRLF to LF) rather than
    /// `g_mime_text_part_get_text`, which would load a part of any size into memory.
    static func read(_ part: UnsafeMutablePointer<GMimePart>, object: UnsafeMutablePointer<GMimeObject>) -> String? {
        guard let content = g_mime_part_get_content(part), let raw = g_mime_data_wrapper_get_stream(content),
            g_mime_stream_reset(raw) == 0, let stream = g_mime_stream_filter_new(raw)
        else { return nil }
        defer { g_object_unref(stream) }

        let encoding = g_mime_data_wrapper_get_encoding(content)
        switch encoding {
        case GMIME_CONTENT_ENCODING_BASE64, GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE, GMIME_CONTENT_ENCODING_UUENCODE:
            waybill_stream_filter_add(stream, g_mime_filter_basic_new(encoding, 0))
        default:
            break
        }
        if let charset = g_mime_object_get_content_type_parameter(object, "charset"),
            !["utf-8", "utf8", "us-ascii"].contains(String(cString: charset).lowercased()),
            let filter = g_mime_filter_charset_new(charset, "UTF-8")
        {
            waybill_stream_filter_add(stream, filter)
        }
        waybill_stream_filter_add(stream, g_mime_filter_dos2unix_new(0))

        var bytes = [UInt8](repeating: 0, count: maximumBytes)
        var length = 0
        bytes.withUnsafeMutableBytes { buffer in
            let base = buffer.baseAddress!.assumingMemoryBound(to: CChar.self)
            while length < maximumBytes {
                let count = g_mime_stream_read(stream, base + length, maximumBytes - length)
                // A filter stream returns 0 while its filters are still absorbing input (base64
                // padding, a lone CR); only `eos` says the content is done.
                if count < 0 || (count == 0 && g_mime_stream_eos(stream) != 0) { break }
                length += count
            }
        }
        // Trailing line ends depend on where the part sat (the CRLF before a boundary belongs to
        // the boundary, the last line of a single-part body keeps its own): drop them.
        var text = String(decoding: bytes[..<completeUTF8Prefix(bytes[..<length])], as: UTF8.self)
        while text.last?.isNewline == true { text.removeLast() }
        return text
    }

    /// The end of the longest prefix that does not stop inside a UTF-8 sequence, so that text cut
    /// at `maximumBytes` does not end in a replacement character.
    static func completeUTF8Prefix(_ bytes: ArraySlice<UInt8>) -> Int {
        var start = bytes.endIndex
        // Find the last lead byte among the final four.
        while start > bytes.startIndex, bytes.endIndex - start < 4 {
            start -= 1
            let byte = bytes[start]
            guard byte & 0xC0 == 0x80 else {
                let needed = byte < 0x80 ? 1 : byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1
                return bytes.endIndex - start >= needed ? bytes.endIndex : start
            }
        }
        return bytes.endIndex
    }

    /// Crude on purpose: the text is a hint for people and routing rules, not a rendering. Linear
    /// in the input, whatever the markup (no backtracking regular expressions on hostile HTML).
    static func plainText(fromHTML html: String) -> String {
        var output = ""
        var rest = Substring(html)
        while let open = rest.firstIndex(of: "<") {
            output += rest[..<open]
            guard let close = rest[open...].firstIndex(of: ">") else {
                rest = rest[open...]
                break
            }
            let tag = rest[rest.index(after: open)..<close].drop { $0 == "/" }
            let name = tag.prefix { $0.isLetter || $0.isNumber }.lowercased()
            rest = rest[rest.index(after: close)...]
            if (name == "script" || name == "style") && !rest.isEmpty {
                guard let end = rest.range(of: "</\(name)", options: .caseInsensitive) else {
                    rest = rest[rest.endIndex...]
                    break
                }
                rest = rest[end.upperBound...]
                rest = rest.firstIndex(of: ">").map { rest[rest.index(after: $0)...] } ?? rest[rest.endIndex...]
            } else if ["br", "p", "div", "tr", "li", "table", "h1", "h2", "h3", "h4", "h5", "h6"].contains(name) {
                output += "\n"
            }
        }
        output += rest
        for (entity, character) in [("&nbsp;", " "), ("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&#39;", "'"),
                                    ("&apos;", "'"), ("&amp;", "&")] {
            output = output.replacingOccurrences(of: entity, with: character)
        }
        return output.split(whereSeparator: \.isNewline)
            .map { $0.split(whereSeparator: \.isWhitespace).joined(separator: " ") }
            .filter { !$0.isEmpty }
            .joined(separator: "\n")
    }
}
