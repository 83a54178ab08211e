import Crypto
public import Foundation
import Synchronization
import WaybillCore

/// A signed-in browser: who, since when, until when. The cookie carries it, signed with the
/// server's session secret (`<data>/session-secret`, 0600), so no session table is needed.
///
/// `passwordStamp` ties a session to the password it was opened with: changing a password ends
/// every other session at once. Signing out clears the cookie; a copied cookie stays valid until
/// it expires (12 hours), as with any bearer credential — rotate the secret to end all at once.
public struct WebSession: Sendable, Hashable {
    public var user: String
    public var issuedAt: Date
    public var expiresAt: Date
    /// Random, per session: the CSRF token is derived from it.
    public var nonce: String
    public var passwordStamp: String

    public static let lifetime: TimeInterval = 12 * 3600

    static func stamp(_ user: User) -> String {
        Base64URL.encode(Array(SHA256.hash(data: Data(user.passwordHash.utf8))).prefix(9))
    }
}

/// Seals and opens session cookies and derives CSRF tokens: HMAC-SHA256 with one secret.
public struct SessionSealer: Sendable {
    let key: SymmetricKey

    public init(secret: [UInt8]) {
        key = SymmetricKey(data: secret)
    }

    /// `v1.<user, base64url>.<issued>.<expires>.<nonce>.<stamp>.<mac>`: no field holds a dot.
    public func seal(_ session: WebSession) -> String {
        let body = [
            "v1", Base64URL.encode(Array(session.user.utf8)), String(Int(session.issuedAt.timeIntervalSince1970)),
            String(Int(session.expiresAt.timeIntervalSince1970)), session.nonce, session.passwordStamp,
        ].joined(separator: ".")
        return body + "." + mac(body)
    }

    /// The session, if the cookie is whole, signed by this secret and not expired.
    public func open(_ cookie: String, now: Date) -> WebSession? {
        let parts = cookie.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 7, parts[0] == "v1" else { return nil }
        let body = parts[0..<6].joined(separator: ".")
        guard Self.constantTimeEqual(mac(body), parts[6]),
            let userBytes = Base64URL.decode(parts[1]), let user = String(bytes: userBytes, encoding: .utf8),
            let issued = Int(parts[2]), let expires = Int(parts[3])
        else { return nil }
        let session = WebSession(
            user: user, issuedAt: Date(timeIntervalSince1970: TimeInterval(issued)),
            expiresAt: Date(timeIntervalSince1970: TimeInterval(expires)), nonce: parts[4], passwordStamp: parts[5])
        guard now < session.expiresAt, now >= session.issuedAt.addingTimeInterval(-300) else { return nil }
        return session
    }

    /// The token every form of this session carries (synchronizer token pattern).
    public func csrfToken(for session: WebSession) -> String { mac("csrf." + session.nonce) }

    /// The token of the sign-in form, bound to the pre-session cookie's random value.
    func loginToken(for value: String) -> String { mac("login." + value) }

    func mac(_ text: String) -> String {
        Base64URL.encode(Array(HMAC<SHA256>.authenticationCode(for: Data(text.utf8), using: key)))
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        PasswordHash.constantTimeEqual(Array(a.utf8), Array(b.utf8))
    }

    static func randomValue() -> String {
        var generator = SystemRandomNumberGenerator()
        return Base64URL.encode((0..<18).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }
}

enum Base64URL {
    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ text: String) -> [UInt8]? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64).map(Array.init)
    }
}

/// Slows password guessing: after 5 failed sign-ins for one account name, or 20 from one
/// address, within 15 minutes, that name (or address) must wait: 1 minute, doubling with each
/// further failure, at most 15. A success clears the account's count. Kept in memory: a restart
/// forgets it, which costs an attacker a restart they cannot cause.
public final class LoginThrottle: Sendable {
    struct Record {
        var failures: [Date] = []
        var lockedUntil: Date?
    }

    let perAccount: Int
    let perAddress: Int
    let window: TimeInterval = 15 * 60
    private let records = Mutex<[String: Record]>([:])

    public init(perAccount: Int = 5, perAddress: Int = 20) {
        self.perAccount = perAccount
        self.perAddress = perAddress
    }

    /// When the name or address may try again, if it must wait now.
    public func wait(account: String, address: String?, now: Date) -> Date? {
        records.withLock { records in
            [Self.accountKey(account), address.map(Self.addressKey)].compactMap { $0 }
                .compactMap { records[$0]?.lockedUntil }.filter { $0 > now }.max()
        }
    }

    public func failed(account: String, address: String?, now: Date) {
        records.withLock { records in
            var keys = [(Self.accountKey(account), perAccount)]
            if let address { keys.append((Self.addressKey(address), perAddress)) }
            for (key, limit) in keys {
                var record = records[key] ?? Record()
                record.failures = record.failures.filter { now.timeIntervalSince($0) < window } + [now]
                if record.failures.count >= limit {
                    let extra = min(record.failures.count - limit, 4)
                    record.lockedUntil = now.addingTimeInterval(min(60 * pow(2, Double(extra)), window))
                }
                records[key] = record
            }
            if records.count > 10_000 {
                records = records.filter { $0.value.failures.contains { now.timeIntervalSince($0) < window } }
            }
        }
    }

    public func succeeded(account: String) {
        _ = records.withLock { $0.removeValue(forKey: Self.accountKey(account)) }
    }

    static func accountKey(_ name: String) -> String { "u:" + name.lowercased() }
    static func addressKey(_ address: String) -> String { "a:" + address }
}
