public import Foundation
import Crypto

/// One HMAC key. Ids are `K` and a number: short, and in QR's alphanumeric set.
public struct SigningKey: Sendable, Hashable, Codable {
    public let id: String
    public let secret: Data
    public let createdAt: Date
    public var retiredAt: Date?

    public init(id: String, secret: Data, createdAt: Date, retiredAt: Date? = nil) {
        self.id = id
        self.secret = secret
        self.createdAt = createdAt
        self.retiredAt = retiredAt
    }

    /// 32 random bytes from the system's generator.
    public static func generate(id: String, now: Date) -> SigningKey {
        let key = SymmetricKey(size: .bits256)
        return SigningKey(id: id, secret: key.withUnsafeBytes { Data($0) }, createdAt: now)
    }

    public var isRetired: Bool { retiredAt != nil }

    static func isValidID(_ text: some StringProtocol) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.count >= 2 && bytes.count <= 6 && bytes[0] == UInt8(ascii: "K")
            && bytes.dropFirst().allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
    }

    var number: Int { Int(id.dropFirst()) ?? 0 }
}

public enum TokenVerification: Sendable, Hashable {
    case valid(DirectiveID)
    case invalidSignature(DirectiveID)
    case unknownKey(String)
    case malformed

    /// The status names `waybill decode` reports.
    public var name: String {
        switch self {
        case .valid: "valid"
        case .invalidSignature: "invalid-signature"
        case .unknownKey: "unknown-key"
        case .malformed: "malformed"
        }
    }
}

/// The server's signing keys: the newest unretired key signs; every unretired key verifies,
/// so sheets printed before a rotation keep working until their key is retired.
public struct SigningKeys: Sendable, Hashable, Codable {
    public private(set) var keys: [SigningKey]

    public init(keys: [SigningKey]) { self.keys = keys }

    /// The key new sheets are signed with.
    public var active: SigningKey? { keys.filter { !$0.isRetired }.max { $0.number < $1.number } }

    /// Adds a new key that signs from now on; older keys still verify.
    @discardableResult
    public mutating func rotate(now: Date) -> SigningKey {
        let next = (keys.map(\.number).max() ?? 0) + 1
        let key = SigningKey.generate(id: "K\(next)", now: now)
        keys.append(key)
        return key
    }

    /// Retires a key: tokens signed with it no longer verify. The last unretired key cannot be retired.
    public mutating func retire(_ id: String, now: Date) throws(WaybillError) {
        guard let index = keys.firstIndex(where: { $0.id == id }) else {
            throw WaybillError(.keyError, "no signing key '\(id)'; `waybill key list` shows them")
        }
        guard !keys[index].isRetired else { throw WaybillError(.keyError, "key \(id) is already retired") }
        guard keys.filter({ !$0.isRetired }).count > 1 else {
            throw WaybillError(.keyError, "key \(id) is the only active key; run `waybill key rotate` first")
        }
        keys[index].retiredAt = now
    }

    public func sign(_ id: DirectiveID) throws(WaybillError) -> SheetToken {
        guard let key = active else { throw WaybillError(.keyError, "there is no active signing key") }
        let unsigned = SheetToken(keyID: key.id, directiveID: id, mac: "")
        return SheetToken(keyID: key.id, directiveID: id, mac: Self.mac(unsigned.signedPart, key: key))
    }

    /// Checks a decoded barcode text. The MAC comparison takes the same time whatever differs.
    public func verify(_ text: String) -> TokenVerification {
        guard let token = SheetToken(parsing: text) else { return .malformed }
        guard let key = keys.first(where: { $0.id == token.keyID && !$0.isRetired }) else {
            return .unknownKey(token.keyID)
        }
        let expected = Self.mac(token.signedPart, key: key)
        return Self.constantTimeEquals(expected, token.mac) ? .valid(token.directiveID) : .invalidSignature(token.directiveID)
    }

    static func mac(_ message: String, key: SigningKey) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Data(message.utf8), using: SymmetricKey(data: key.secret))
        return Crockford.encode(code.prefix(SheetToken.macByteCount))
    }

    static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for index in x.indices { difference |= x[index] ^ y[index] }
        return difference == 0
    }
}
