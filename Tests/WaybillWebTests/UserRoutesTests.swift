import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import WaybillCore
import WaybillStore
import WaybillWeb

/// `/api/me`, `/api/users`, `/api/tokens`: the CLI's `user` and `token` commands in the app.
@Suite struct UserRoutesTests {
    typealias Fixture = WebAppTests.Fixture

    @Test func meNamesTheTokensUser() async throws {
        let fixture = try await Fixture()
        try await fixture.app.test(.router) { client in
            let me = try await WebAppTests.call(client, .get, "/api/me", token: fixture.root)
            #expect(me.status == .ok)
            #expect(me.json["name"] as? String == "root@example.com")
            #expect(me.json["role"] as? String == "admin")
        }
    }

    @Test func onlyAnAdminListsAndAddsUsers() async throws {
        let fixture = try await Fixture()
        try await fixture.app.test(.router) { client in
            let newUser = #"{"name": "carol@example.com", "password": "long enough", "role": "admin"}"#
            for (method, body) in [(HTTPRequest.Method.get, nil), (.post, newUser)] {
                let reply = try await WebAppTests.call(client, method, "/api/users", token: fixture.alice, body: body)
                #expect(reply.status == .forbidden)
                #expect(reply.code == "forbidden")
            }
            #expect(try await fixture.store.user(named: "carol@example.com") == nil)
            let listed = try await WebAppTests.call(client, .get, "/api/users", token: fixture.root)
            #expect(listed.array.compactMap { $0["name"] as? String }
                == ["alice@example.com", "bob@example.com", "root@example.com"])
            let added = try await WebAppTests.call(client, .post, "/api/users", token: fixture.root, body: newUser)
            #expect(added.status == .created)
            #expect(added.json["role"] as? String == "admin")
            #expect(added.json["password"] == nil)
            let carol = try #require(try await fixture.store.user(named: "carol@example.com"))
            #expect(try PasswordHash(parsing: carol.passwordHash).verify("long enough"))
            for (body, code) in [
                (newUser, "invalid-user"),
                (#"{"name": "dave@example.com", "password": "short"}"#, "invalid-password"),
                (#"{"name": "dave", "password": "long enough"}"#, "invalid-user"),
                (#"{"name": "dave@example.com", "password": "long enough", "role": "king"}"#, "invalid-user"),
            ] {
                let reply = try await WebAppTests.call(client, .post, "/api/users", token: fixture.root, body: body)
                #expect(reply.status == .unprocessableContent, "\(body)")
                #expect(reply.code == code, "\(body): \(reply.text)")
            }
        }
    }

    @Test func usersMakeAndRevokeTheirOwnTokens() async throws {
        let fixture = try await Fixture()
        try await fixture.app.test(.router) { client in
            let made = try await WebAppTests.call(client, .post, "/api/tokens", token: fixture.alice)
            #expect(made.status == .created)
            let token = try #require(made.json["token"] as? String)
            #expect(APIToken.looksValid(token))
            #expect(made.json["user"] as? String == "alice@example.com")
            let me = try await WebAppTests.call(client, .get, "/api/me", token: token)
            #expect(me.json["name"] as? String == "alice@example.com")
            // Listing never shows a token again.
            let listed = try await WebAppTests.call(client, .get, "/api/tokens", token: fixture.alice)
            #expect(listed.array.count == 3)
            #expect(listed.array.allSatisfy { $0["token"] == nil && $0["user"] as? String == "alice@example.com" })
            // Another user's token: not yours to make or revoke.
            let forBob = try await WebAppTests.call(
                client, .post, "/api/tokens", token: fixture.alice, body: #"{"user": "bob@example.com"}"#)
            #expect(forBob.status == .forbidden)
            let bobsID = try #require(try await fixture.store.tokens(user: "bob@example.com").first?.id)
            let notYours = try await WebAppTests.call(client, .delete, "/api/tokens/\(bobsID)", token: fixture.alice)
            #expect(notYours.status == .notFound)
            #expect(try await WebAppTests.call(client, .get, "/api/me", token: fixture.bob).status == .ok)
            // An admin may do both.
            let rootForBob = try await WebAppTests.call(
                client, .post, "/api/tokens", token: fixture.root, body: #"{"user": "bob@example.com"}"#)
            #expect(rootForBob.status == .created)
            #expect(rootForBob.json["user"] as? String == "bob@example.com")
            let revoked = try await WebAppTests.call(
                client, .delete, "/api/tokens/\(made.json["id"] as? Int ?? -1)", token: fixture.alice)
            #expect(revoked.status == .ok)
            #expect(revoked.json["revoked"] is String)
            #expect(try await WebAppTests.call(client, .get, "/api/me", token: token).status == .unauthorized)
        }
    }
}
