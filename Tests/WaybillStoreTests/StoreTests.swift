import Foundation
import Testing
import WaybillCore
import WaybillStore

@Suite struct StoreTests {
    let directory: String
    init() throws {
        directory = NSTemporaryDirectory() + "waybill-store-\(UUID().uuidString)"
    }

    func makeDirective(_ title: String = "Invoices", createdAt: Date = Date()) -> Directive {
        Directive(
            id: .random(), title: title, owner: "ap@example.com", visibility: .shared,
            destinations: [.email("x@example.com"), .folder(root: "archive", path: ["a", "b"])],
            createdAt: createdAt, expiresAt: createdAt.addingTimeInterval(3600), idleExpiry: 600, maxUses: 5,
            options: DirectiveOptions(deliveryConfirmation: true, outputFormat: .original, fileNamePattern: "{n}", notes: "n"))
    }

    @Test func migratesFromEmptyAndRoundTrips() async throws {
        let data = DataDirectory(path: directory)
        let store = try data.openStore()
        #expect(try store.appliedMigrations() == ["v1-directives", "v2-ingest", "v3-message-attempts", "v4-delivery-queue", "v5-users", "v6-activity-indexes"])
        let directive = makeDirective()
        try await store.insert(directive)
        let back = try #require(try await store.directive(directive.id))
        #expect(back.id == directive.id)
        #expect(back.destinations == directive.destinations)
        #expect(back.options == directive.options)
        #expect(back.maxUses == 5)
        #expect(back.idleExpiry == 600)
        #expect(back.visibility == .shared)
        #expect(abs(back.createdAt.timeIntervalSince(directive.createdAt)) < 0.001)
        // A second open of the same file runs no migration again and sees the row.
        let reopened = try SQLiteDirectiveStore(path: data.databasePath)
        #expect(try await reopened.allDirectives().map(\.id) == [directive.id])
        #expect(FileManager.default.fileExists(atPath: data.databasePath + "-wal"))
    }

    @Test func listsNewestFirstAndRevokes() async throws {
        let store = try DataDirectory(path: directory).openStore()
        let old = makeDirective("old", createdAt: Date(timeIntervalSinceNow: -100))
        let new = makeDirective("new")
        try await store.insert(old)
        try await store.insert(new)
        #expect(try await store.allDirectives().map(\.title) == ["new", "old"])
        let revoked = try await store.revoke(old.id, at: Date())
        #expect(revoked.revokedAt != nil)
        #expect(revoked.status(at: Date()).name == "revoked")
        await #expect(throws: WaybillError.self) { try await store.revoke(.random(), at: Date()) }
        #expect(try await store.directive(.random()) == nil)
    }

    @Test func schemaConstraintsRefuseWhatTheModelRefuses() async throws {
        let store = try DataDirectory(path: directory).openStore()
        var directive = makeDirective()
        try await store.insert(directive)
        await #expect(throws: WaybillError.self) { try await store.insert(directive) }  // duplicate id
        directive.id = .random()
        directive.maxUses = 0
        await #expect(throws: WaybillError.self) { try await store.insert(directive) }
        directive.maxUses = nil
        directive.title = ""
        await #expect(throws: WaybillError.self) { try await store.insert(directive) }
        directive.title = "ok"
        directive.expiresAt = directive.createdAt.addingTimeInterval(-5)
        await #expect(throws: WaybillError.self) { try await store.insert(directive) }
        #expect(try await store.allDirectives().count == 1)
    }

    @Test func keysAreCreatedOnceWithMode0600() throws {
        let data = DataDirectory(path: directory)
        let keys = try data.loadOrCreateKeys()
        #expect(keys.active?.id == "K1")
        let attributes = try FileManager.default.attributesOfItem(atPath: data.keysPath)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let directoryAttributes = try FileManager.default.attributesOfItem(atPath: data.url.path)
        #expect((directoryAttributes[.posixPermissions] as? NSNumber)?.intValue == 0o700)
        #expect(try data.loadOrCreateKeys() == keys)
        var rotated = keys
        rotated.rotate(now: Date())
        try data.saveKeys(rotated)
        #expect(try data.loadKeys().active?.id == "K2")
        let after = try FileManager.default.attributesOfItem(atPath: data.keysPath)
        #expect((after[.posixPermissions] as? NSNumber)?.intValue == 0o600)
    }
}
