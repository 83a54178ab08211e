import Foundation

/// Parses the rendered content of one `<text>` element: character data and `<tspan>` elements
/// holding character data, as `CompiledTemplate` admits them. Values reach it through Mustache's
/// escaping, so markup in a value can never become a tag.
struct TextFragment {
    struct Run {
        var attributes: [(String, String)]
        var text: String
    }

    enum Failure: Error { case malformed(String) }

    /// Works on UTF-8 bytes and copies character data in whole stretches: it runs for every
    /// text element of every sheet, and character by character it was a tenth of a sheet's cost.
    static func parse(_ xml: String) throws(Failure) -> [Run] {
        var xml = xml
        let result = xml.withUTF8 { bytes in Result { () throws(Failure) in try parse(bytes) } }
        return try result.get()
    }

    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(Failure) -> [Run] {
        let lessThan = UInt8(ascii: "<")
        let ampersand = UInt8(ascii: "&")
        // The common case: a placeholder's value with nothing to decode.
        if !bytes.contains(lessThan) && !bytes.contains(ampersand) {
            return bytes.isEmpty ? [] : [Run(attributes: [], text: String(decoding: bytes, as: UTF8.self))]
        }
        var runs: [Run] = []
        var text: [UInt8] = []
        var inSpan: [(String, String)]? = nil
        func flush() {
            if !text.isEmpty || inSpan != nil { runs.append(Run(attributes: inSpan ?? [], text: String(decoding: text, as: UTF8.self))) }
            text.removeAll(keepingCapacity: true)
        }
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == lessThan {
                guard let end = bytes[index...].firstIndex(of: UInt8(ascii: ">")) else { throw .malformed("unterminated tag") }
                let tag = String(decoding: bytes[(index + 1)..<end], as: UTF8.self)
                index = end + 1
                if tag.hasPrefix("/") {
                    guard inSpan != nil else { throw .malformed("unexpected <\(tag)>") }
                    flush()
                    inSpan = nil
                } else {
                    guard inSpan == nil, tag.hasPrefix("tspan") else { throw .malformed("unexpected <\(tag)>") }
                    if !text.isEmpty { flush() }
                    let selfClosing = tag.hasSuffix("/")
                    inSpan = try attributes(String(tag.dropFirst(5).dropLast(selfClosing ? 1 : 0)))
                    if selfClosing {
                        flush()
                        inSpan = nil
                    }
                }
            } else if byte == ampersand {
                guard let end = bytes[index...].firstIndex(of: UInt8(ascii: ";")) else { throw .malformed("unterminated entity") }
                let scalar = try entity(String(decoding: bytes[(index + 1)..<end], as: UTF8.self))
                text.append(contentsOf: String(Character(scalar)).utf8)
                index = end + 1
            } else {
                var end = index + 1
                while end < bytes.count, bytes[end] != lessThan, bytes[end] != ampersand { end += 1 }
                text.append(contentsOf: bytes[index..<end])
                index = end
            }
        }
        guard inSpan == nil else { throw .malformed("unclosed <tspan>") }
        flush()
        return runs
    }

    static func entity(_ name: String) throws(Failure) -> Unicode.Scalar {
        switch name {
        case "amp": return "&"
        case "lt": return "<"
        case "gt": return ">"
        case "quot": return "\""
        case "apos": return "'"
        default:
            let value: UInt32?
            if name.hasPrefix("#x") { value = UInt32(name.dropFirst(2), radix: 16) }
            else if name.hasPrefix("#") { value = UInt32(name.dropFirst()) }
            else { value = nil }
            guard let value, let scalar = Unicode.Scalar(value) else { throw .malformed("unknown entity &\(name);") }
            return scalar
        }
    }

    static func attributes(_ text: String) throws(Failure) -> [(String, String)] {
        var result: [(String, String)] = []
        var rest = Substring(text)
        while true {
            rest = rest.drop { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
            guard let equals = rest.firstIndex(of: "=") else {
                guard rest.isEmpty else { throw .malformed("bad attribute '\(rest)'") }
                return result
            }
            let name = rest[..<equals].trimmingCharacters(in: .whitespaces)
            rest = rest[rest.index(after: equals)...].drop { $0 == " " }
            guard let quote = rest.first, quote == "\"" || quote == "'" else { throw .malformed("unquoted attribute") }
            rest = rest.dropFirst()
            guard let close = rest.firstIndex(of: quote) else { throw .malformed("unterminated attribute") }
            var value = ""
            var raw = rest[..<close].unicodeScalars[...]
            while let scalar = raw.first {
                if scalar == "&", let end = raw.firstIndex(of: ";") {
                    value.unicodeScalars.append(try entity(String(String.UnicodeScalarView(raw[raw.index(after: raw.startIndex)..<end]))))
                    raw = raw[raw.index(after: end)...]
                } else {
                    value.unicodeScalars.append(scalar)
                    raw = raw.dropFirst()
                }
            }
            result.append((name, value))
            rest = rest[rest.index(after: close)...]
        }
    }
}
