public import Foundation
import Crypto

/// What a signed-in person may do: every user manages their own directives and uses shared and
/// public ones; an admin sees and changes every directive and may create them for other owners.
public enum UserRole: String, Sendable, Codable, CaseIterable {
    case user
    case admin
}

/// A person who signs in to the web app or calls the API. The name is the person's email
/// address, because directives are owned by an address (`Directive.owner`): the directives a
/// user creates are theirs without a second mapping to keep in step.
public struct User: Sendable, Hashable {
    public var name: String
    public var role: UserRole
    /// `PasswordHash.encoded`: never the password.
    public var passwordHash: String
    public var createdAt: Date

    public init(name: String, role: UserRole, passwordHash: String, createdAt: Date) {
        self.name = name
        self.role = role
        self.passwordHash = passwordHash
        self.createdAt = createdAt
    }

    public var isAdmin: Bool { role == .admin }

    /// A new user, checked: the name must be an email address, the password at least
    /// `minimumPasswordLength` characters. Hashing is slow by design (PBKDF2).
    public static func make(name: String, role: UserRole, password: String, now: Date) throws(WaybillError) -> User {
        let name = name.trimmingSpaces()
        guard Destination.isValidEmail(name) else {
            throw WaybillError(.invalidUser, "a user name is the person's email address; '\(name)' is not one")
        }
        return User(name: name, role: role, passwordHash: try hashPassword(password), createdAt: now)
    }

    /// The stored form of a new password, after checking its length. Slow by design (PBKDF2).
    public static func hashPassword(_ password: String) throws(WaybillError) -> String {
        guard password.count >= minimumPasswordLength else {
            throw WaybillError(.invalidPassword, "the password must have at least \(minimumPasswordLength) characters")
        }
        return PasswordHash.make(password: password, iterations: passwordIterations).encoded
    }

    /// PBKDF2-HMAC-SHA256 iterations for web and API users: OWASP's 2023 figure, which puts it
    /// level with bcrypt at cost 10 or more. A sign-in pays it once; SMTP AUTH, paid on every
    /// scanner connection, keeps `PasswordHash.defaultIterations`. Stored hashes keep the count
    /// they were made with.
    public static let passwordIterations = 600_000

    public static let minimumPasswordLength = 8

    /// True if this user may read (and print the sheet of) `directive`: their own, shared and
    /// public ones; admins every one.
    public func mayRead(_ directive: Directive) -> Bool {
        isAdmin || directive.owner.lowercased() == name.lowercased() || directive.visibility != .private
    }

    /// True if this user may change or revoke `directive`: the owner or an admin.
    public func mayChange(_ directive: Directive) -> Bool {
        isAdmin || directive.owner.lowercased() == name.lowercased()
    }
}

/// A stored API token: who it belongs to and its history. The token itself is never stored,
/// only its SHA-256 (`APIToken.digest`), so a copy of the database signs nobody in.
public struct APITokenRecord: Sendable, Hashable {
    public var id: Int64
    public var user: String
    public var createdAt: Date
    public var lastUsedAt: Date?
    public var revokedAt: Date?

    public init(id: Int64, user: String, createdAt: Date, lastUsedAt: Date?, revokedAt: Date?) {
        self.id = id
        self.user = user
        self.createdAt = createdAt
        self.lastUsedAt = lastUsedAt
        self.revokedAt = revokedAt
    }
}

/// API tokens: `wb_` and 32 random bytes in unpadded base64url (43 characters), so a token is
/// recognisable in a leaked log or a secret scanner and safe in a header without escaping.
public enum APIToken {
    public static let prefix = "wb_"

    /// A new token. Show it once; store only `digest(of:)`.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let base64 = Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return prefix + base64
    }

    /// SHA-256 of the token's UTF-8 bytes, as 64 lower-case hex digits: what the store keeps.
    /// A plain hash suffices (no salt, no stretching): the token has 256 bits of entropy.
    public static func digest(of token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// True for text shaped like a token: cheap to refuse junk before touching the store.
    public static func looksValid(_ token: String) -> Bool {
        token.hasPrefix(prefix) && token.utf8.count == prefix.utf8.count + 43
            && token.utf8.dropFirst(prefix.utf8.count).allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                    || byte == 0x2D || byte == 0x5F
            }
    }
}

/// Where users and API tokens live (the SQLite store implements it beside the directives).
public protocol UserRepository: Sendable {
    /// Stores a new user. Throws `.invalidUser` if the name is taken.
    func addUser(_ user: User) async throws
    func user(named name: String) async throws -> User?
    /// Every user, by name.
    func allUsers() async throws -> [User]
    /// Stores the digest of a new token for `user` (who must exist) and returns its record.
    func addToken(digest: String, user: String, at date: Date) async throws -> APITokenRecord
    /// The user a token digest belongs to, if the token exists and is not revoked; records the use.
    func user(forTokenDigest digest: String, at date: Date) async throws -> User?
    /// Tokens, newest first; all users' when `user` is nil.
    func tokens(user: String?) async throws -> [APITokenRecord]
    /// Revokes a token; unknown ids throw `.unknownToken`.
    func revokeToken(_ id: Int64, at date: Date) async throws -> APITokenRecord
    /// Replaces a user's password hash (which ends their web sessions); unknown names throw `.unknownUser`.
    func setPasswordHash(_ hash: String, forUser name: String) async throws
}
