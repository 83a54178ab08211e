import Foundation

/// A client network for routing rules: `10.0.0.0/8`, `192.168.1.20` (one host), `2001:db8::/32`, `::1`.
///
/// Every address is held as 16 bytes, IPv4 as its IPv4-mapped IPv6 form (`::ffff:a.b.c.d`, RFC 4291
/// §2.5.5.2), and an IPv4 prefix length as that plus 96. So `10.0.0.0/8` matches a client seen as
/// `10.0.0.5` and one seen as `::ffff:10.0.0.5` (what a dual-stack listener on `::` reports for an
/// IPv4 client), and `::ffff:0:0/96` matches every IPv4 client. Parsing is strict and by hand: no
/// resolver, no zone lookups; text the parser does not understand is a configuration error, never
/// "matches nothing" silently.
public struct IPNetwork: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The network address, with the bits past the prefix cleared.
    public let address: [UInt8]
    /// 0...128, in the 16-byte form (an IPv4 `/8` is 104 here).
    public let prefixLength: Int
    /// As written in the configuration, for messages and `waybill rules list`.
    public let text: String

    public init(_ text: String) throws(WaybillError) {
        let trimmed = text.trimmingSpaces()
        let parts = trimmed.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let parsed = Self.parseAddress(parts[0]) else {
            throw WaybillError(.configError, "'\(text)' is not a network: use an IPv4 or IPv6 address, or one with a prefix (10.0.0.0/8, fd00::/8)")
        }
        var length = parsed.isIPv4 ? 32 : 128
        if parts.count == 2 {
            guard let value = Int(parts[1]), parts[1].allSatisfy(\.isASCII), value >= 0, value <= length else {
                throw WaybillError(.configError, "'\(text)': the prefix length must be 0 to \(length)")
            }
            length = value
        }
        let full = parsed.isIPv4 ? length + 96 : length
        var bytes = parsed.bytes
        for index in 0..<16 {
            let keep = max(0, min(8, full - index * 8))
            bytes[index] &= keep == 8 ? 0xFF : ~(0xFF >> UInt8(keep))
        }
        address = bytes
        prefixLength = full
        self.text = trimmed
    }

    public var description: String { text }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        try self.init(text)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(text)
    }

    /// Whether a client address (as the listener reports it: `10.0.0.5`, `::1`, `::ffff:10.0.0.5`,
    /// `fe80::1%eth0`) lies in this network. False for anything that is not an IP address.
    public func contains(_ client: String) -> Bool {
        guard let parsed = Self.parseAddress(client) else { return false }
        for index in 0..<16 {
            let keep = max(0, min(8, prefixLength - index * 8))
            if keep == 0 { break }
            let mask: UInt8 = keep == 8 ? 0xFF : ~(0xFF >> UInt8(keep))
            if parsed.bytes[index] & mask != address[index] { return false }
        }
        return true
    }

    /// Whether `text` is an IPv4 or IPv6 address this parser understands.
    public static func isAddress(_ text: String) -> Bool { parseAddress(text) != nil }

    /// 16 bytes (IPv4 mapped), and whether the text was dotted-quad IPv4.
    static func parseAddress(_ text: String) -> (bytes: [UInt8], isIPv4: Bool)? {
        var text = Substring(text.trimmingSpaces())
        if text.hasPrefix("["), text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        if let zone = text.firstIndex(of: "%") { text = text[..<zone] }  // fe80::1%eth0: the zone is not part of the address
        guard !text.isEmpty, text.utf8.count <= 45 else { return nil }
        if !text.contains(":") {
            guard let four = parseIPv4(text) else { return nil }
            return ([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF] + four, true)
        }
        return parseIPv6(text).map { ($0, false) }
    }

    /// Dotted quad, four decimal parts 0...255, no leading zeros (`010` is octal to some parsers).
    static func parseIPv4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
                part == "0" || !part.hasPrefix("0"), let value = UInt8(part)
            else { return nil }
            bytes.append(value)
        }
        return bytes
    }

    /// RFC 4291 §2.2: eight groups of up to four hex digits, one `::` for a run of zero groups,
    /// and an optional dotted quad in place of the last two groups.
    static func parseIPv6(_ text: Substring) -> [UInt8]? {
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String, mayEndInIPv4: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if mayEndInIPv4, index == pieces.count - 1, piece.contains(".") {
                    guard let four = parseIPv4(piece) else { return nil }
                    result.append(UInt16(four[0]) << 8 | UInt16(four[1]))
                    result.append(UInt16(four[2]) << 8 | UInt16(four[3]))
                    continue
                }
                guard !piece.isEmpty, piece.count <= 4, piece.allSatisfy(\.isHexDigit), piece.allSatisfy(\.isASCII),
                    let value = UInt16(piece, radix: 16)
                else { return nil }
                result.append(value)
            }
            return result
        }
        let all: [UInt16]
        if halves.count == 2 {
            guard let head = groups(halves[0], mayEndInIPv4: false), let tail = groups(halves[1], mayEndInIPv4: true),
                head.count + tail.count <= 7
            else { return nil }
            all = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard let only = groups(halves[0], mayEndInIPv4: true), only.count == 8 else { return nil }
            all = only
        }
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }
}
