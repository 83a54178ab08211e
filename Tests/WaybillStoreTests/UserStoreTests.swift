import Foundation
import Testing
import WaybillCore
import WaybillStore

@Suite struct UserStoreTests {
    let store: SQLiteDirectiveStore

    init() throws {
        store = try DataDirectory(path: NSTemporaryDirectory() + "waybill-users-\(UUID().uuidString)").openStore()
    }

    func user(_ name: String, _ role: UserRole = .user) -> User {
        User(name: name, role: role, passwordHash: PasswordHash.make(password: "secret pass", iterations: 10).encoded, createdAt: Date())
    }

    @Test func usersAreUniqueAndEmailAddresses() async throws {
        try await store.addUser(user("alice@example.com", .admin))
        await #expect(throws: WaybillError.self) { try await store.addUser(user("Alice@Example.com")) }
        await #expect(throws: (any Error).self) { try await store.addUser(user("alice")) }
        let alice = try #require(try await store.user(named: "alice@example.com"))
        #expect(alice.role == .admin)
        #expect(try PasswordHash(parsing: alice.passwordHash).verify("secret pass"))
        #expect(try await store.allUsers().map(\.name) == ["alice@example.com"])
    }

    @Test func tokensResolveUntilRevokedAndOnlyDigestsAreStored() async throws {
        try await store.addUser(user("bob@example.com"))
        let token = APIToken.generate()
        #expect(APIToken.looksValid(token))
        #expect(!APIToken.looksValid(token + "x"))
        let record = try await store.addToken(digest: APIToken.digest(of: token), user: "bob@example.com", at: Date())
        #expect(try await store.user(forTokenDigest: APIToken.digest(of: token), at: Date())?.name == "bob@example.com")
        #expect(try await store.tokens(user: "bob@example.com").first?.lastUsedAt != nil)
        #expect(try await store.user(forTokenDigest: APIToken.digest(of: APIToken.generate()), at: Date()) == nil)
        // The schema takes a SHA-256 in hex, never the token itself.
        await #expect(throws: (any Error).self) {
            _ = try await store.addToken(digest: token, user: "bob@example.com", at: Date())
        }
        await #expect(throws: WaybillError.self) {
            _ = try await store.addToken(digest: APIToken.digest(of: "x"), user: "nobody@example.com", at: Date())
        }
        let revoked = try await store.revokeToken(record.id, at: Date())
        #expect(revoked.revokedAt != nil)
        #expect(try await store.user(forTokenDigest: APIToken.digest(of: token), at: Date()) == nil)
        await #expect(throws: WaybillError.self) { _ = try await store.revokeToken(999, at: Date()) }
    }

    @Test func directivesAreUpdatedInPlace() async throws {
        let now = Date()
        let directive = Directive(
            id: .random(), title: "Invoices", owner: "ap@example.com", destinations: [.email("x@example.com")], createdAt: now,
            useCount: 2)
        try await store.insert(directive)
        var changed = directive
        changed.title = "Receipts"
        changed.destinations = [.folder(root: "archive", path: ["r"]), .email("y@example.com")]
        changed.maxUses = 9
        let stored = try await store.update(changed)
        #expect(stored.title == "Receipts")
        #expect(stored.destinations == changed.destinations)
        #expect(stored.maxUses == 9)
        #expect(stored.useCount == 2)
        var unknown = changed
        unknown.id = .random()
        await #expect(throws: WaybillError.self) { _ = try await store.update(unknown) }
        let statistics = try await store.statistics(at: now)
        #expect(statistics.directives["active"] == 1)
        #expect(statistics.queueDepth == 0)
    }
}
