/// The text both codes on a routing sheet carry: `WB1:K1:K7QM2XR9PC:ABCDEFGHJKMNPQRS`.
///
/// Version, key id, directive id and an HMAC-SHA256 over them truncated to 80 bits, all in QR's
/// alphanumeric character set (upper-case base32, digits, `:`) so the QR stays at version 3.
/// Parsing only checks the shape; `SigningKeys.verify` decides whether it is genuine.
public struct SheetToken: Hashable, Sendable, CustomStringConvertible {
    public static let version = "WB1"
    /// 80 bits: 10 bytes, 16 base32 characters.
    public static let macByteCount = 10
    public static let macLength = 16

    public let keyID: String
    public let directiveID: DirectiveID
    public let mac: String

    public init(keyID: String, directiveID: DirectiveID, mac: String) {
        self.keyID = keyID
        self.directiveID = directiveID
        self.mac = mac
    }

    /// Shape check only. Nil for anything that is not a well-formed Waybill token.
    public init?(parsing text: String) {
        let fields = text.split(separator: ":", omittingEmptySubsequences: false)
        guard fields.count == 4, fields[0] == Self.version, SigningKey.isValidID(fields[1]),
            fields[2].utf8.count == DirectiveID.length, let id = DirectiveID(fields[2]), id.rawValue == fields[2],
            fields[3].utf8.count == Self.macLength,
            fields[3].utf8.allSatisfy({ Crockford.alphabet.contains($0) })
        else { return nil }
        self.init(keyID: String(fields[1]), directiveID: id, mac: String(fields[3]))
    }

    /// What the MAC covers.
    public var signedPart: String { "\(Self.version):\(keyID):\(directiveID.rawValue)" }

    public var description: String { "\(signedPart):\(mac)" }

    /// True when the text looks like an attempt at a Waybill token (for reporting `malformed`).
    public static func looksLikeToken(_ text: String) -> Bool { text.hasPrefix(version + ":") }
}
