import Foundation
import Crypto

/// A stored password: PBKDF2-HMAC-SHA256 (RFC 8018 §5.2), written as one self-describing string,
/// `pbkdf2-sha256$<iterations>$<salt, base64>$<hash, base64>`, so the iteration count can rise
/// later without invalidating the hashes already in a configuration file.
///
/// Built on swift-crypto's `HMAC<SHA256>` (its `_CryptoExtras` PBKDF2 is not a dependency here).
/// Verification compares in constant time. Hashing is deliberately slow (tens of milliseconds at
/// the default count): call `verify` off the event loops.
public struct PasswordHash: Sendable, Hashable, CustomStringConvertible {
    public static let scheme = "pbkdf2-sha256"
    /// Enough to make guessing expensive while one SMTP AUTH stays well under a second on a small
    /// server; the count is stored in each hash, so it can be raised without a migration.
    public static let defaultIterations = 100_000

    public let iterations: Int
    public let salt: [UInt8]
    public let hash: [UInt8]

    public init(iterations: Int, salt: [UInt8], hash: [UInt8]) {
        self.iterations = iterations
        self.salt = salt
        self.hash = hash
    }

    /// Parses the stored form; a malformed one is a configuration error naming what is wrong.
    public init(parsing encoded: String) throws {
        let fields = encoded.split(separator: "$", omittingEmptySubsequences: false)
        guard fields.count == 4, fields[0] == Self.scheme else {
            throw WaybillError(.configError, "a password hash must look like \(Self.scheme)$<iterations>$<salt>$<hash>")
        }
        guard let iterations = Int(fields[1]), iterations >= 1 else {
            throw WaybillError(.configError, "the password hash's iteration count \"\(fields[1])\" is not a positive number")
        }
        guard let salt = Data(base64Encoded: String(fields[2])), let hash = Data(base64Encoded: String(fields[3])),
            !salt.isEmpty, hash.count >= 16
        else {
            throw WaybillError(.configError, "the password hash's salt or hash is not valid base64 (or is too short)")
        }
        self.init(iterations: iterations, salt: Array(salt), hash: Array(hash))
    }

    /// A new hash with a random 16-byte salt: what `waybill` prints for a configuration file.
    public static func make(password: String, iterations: Int = defaultIterations) -> PasswordHash {
        var generator = SystemRandomNumberGenerator()
        let salt = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let hash = pbkdf2SHA256(password: Array(password.utf8), salt: salt, iterations: iterations, length: 32)
        return PasswordHash(iterations: iterations, salt: salt, hash: hash)
    }

    /// The stored form.
    public var encoded: String {
        "\(Self.scheme)$\(iterations)$\(Data(salt).base64EncodedString())$\(Data(hash).base64EncodedString())"
    }

    public var description: String { encoded }

    /// True if `password` hashes to this value. Constant time in the comparison; the work itself
    /// depends only on the stored iteration count, never on the guess.
    public func verify(_ password: String) -> Bool {
        let candidate = Self.pbkdf2SHA256(password: Array(password.utf8), salt: salt, iterations: iterations, length: hash.count)
        return Self.constantTimeEqual(candidate, hash)
    }

    /// Compares without an early exit, so the time says nothing about where two values differ.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }

    /// PBKDF2 (RFC 8018 §5.2) with HMAC-SHA256 as the pseudo-random function.
    public static func pbkdf2SHA256(password: [UInt8], salt: [UInt8], iterations: Int, length: Int) -> [UInt8] {
        precondition(iterations >= 1 && length >= 1)
        // Keyed once: each iteration copies the keyed state instead of hashing the key again.
        let keyed = HMAC<SHA256>(key: SymmetricKey(data: password))
        var output: [UInt8] = []
        output.reserveCapacity(length + 32)
        var block: UInt32 = 1
        while output.count < length {
            var mac = keyed
            mac.update(data: salt)
            mac.update(data: withUnsafeBytes(of: block.bigEndian) { Array($0) })
            var u = Array(mac.finalize())
            var t = u
            for _ in 1..<iterations {
                var next = keyed
                next.update(data: u)
                u = Array(next.finalize())
                for index in 0..<t.count { t[index] ^= u[index] }
            }
            output += t
            block += 1
        }
        return Array(output.prefix(length))
    }
}
