import Foundation
import Hummingbird
import NIOCore
import WaybillCore

/// `/api/me`, `/api/users` and `/api/tokens`: what `waybill user` and `waybill token` do, in the app.
///
/// Admins list and add users and make tokens for anyone; a user sees themself and makes and
/// revokes their own tokens. A new token is in the 201 body once and never again.
struct UserRoutes: Sendable {
    let configuration: WebConfiguration

    func add(to group: RouterGroup<WebRequestContext>) {
        group.get("me", use: me)
        group.get("users", use: listUsers)
        group.post("users", use: addUser)
        group.get("tokens", use: listTokens)
        group.post("tokens", use: createToken)
        group.delete("tokens/:id", use: revokeToken)
    }

    struct UserJSON: Encodable {
        let name: String
        let role: String
        let created: String

        init(_ user: User) {
            name = user.name
            role = user.role.rawValue
            created = HumanDate.formatISO(user.createdAt)
        }
    }

    struct TokenJSON: Encodable {
        let id: Int64
        let user: String
        let created: String
        let last_used: String?
        let revoked: String?
        /// Only in the answer to the POST that made it.
        let token: String?

        init(_ record: APITokenRecord, token: String? = nil) {
            id = record.id
            user = record.user
            created = HumanDate.formatISO(record.createdAt)
            last_used = record.lastUsedAt.map(HumanDate.formatISO)
            revoked = record.revokedAt.map(HumanDate.formatISO)
            self.token = token
        }

        enum CodingKeys: String, CodingKey { case id, user, created, last_used, revoked, token }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(user, forKey: .user)
            try container.encode(created, forKey: .created)
            try container.encode(last_used, forKey: .last_used)
            try container.encode(revoked, forKey: .revoked)
            if let token { try container.encode(token, forKey: .token) }
        }
    }

    struct NewUser: Decodable {
        let name: String
        let password: String
        let role: String?
    }

    struct NewToken: Decodable {
        let user: String?
    }

    @Sendable func me(_ request: Request, context: WebRequestContext) async throws -> Response {
        try JSONResponse.make(UserJSON(try context.requireUser()))
    }

    @Sendable func listUsers(_ request: Request, context: WebRequestContext) async throws -> Response {
        try requireAdmin(context)
        return try JSONResponse.make(try await configuration.store.allUsers().map(UserJSON.init))
    }

    /// The password travels in the body (over TLS in front of this service) and is hashed with
    /// PBKDF2 off the cooperative pool; it is never logged or stored.
    @Sendable func addUser(_ request: Request, context: WebRequestContext) async throws -> Response {
        try requireAdmin(context)
        let body = try await decode(NewUser.self, request, context: context)
        let role: UserRole
        switch body.role ?? "user" {
        case "user": role = .user
        case "admin": role = .admin
        case let other: throw WaybillError(.invalidUser, "role must be user or admin, not '\(other)'")
        }
        let now = configuration.clock()
        let user = try await Offload.run { () throws(WaybillError) -> User in
            try User.make(name: body.name, role: role, password: body.password, now: now)
        }
        try await configuration.store.addUser(user)
        return try JSONResponse.make(UserJSON(user), status: .created)
    }

    @Sendable func listTokens(_ request: Request, context: WebRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let tokens = try await configuration.store.tokens(user: user.isAdmin ? nil : user.name)
        return try JSONResponse.make(tokens.map { TokenJSON($0) })
    }

    @Sendable func createToken(_ request: Request, context: WebRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let body = try await decode(NewToken.self, request, context: context)
        let owner = body.user ?? user.name
        if owner.lowercased() != user.name.lowercased(), !user.isAdmin {
            throw APIError.forbidden("only an admin makes tokens for another user")
        }
        guard try await configuration.store.user(named: owner) != nil else {
            throw WaybillError(.unknownUser, "no user \(owner)")
        }
        let token = APIToken.generate()
        let record = try await configuration.store.addToken(
            digest: APIToken.digest(of: token), user: owner, at: configuration.clock())
        return try JSONResponse.make(TokenJSON(record, token: token), status: .created)
    }

    @Sendable func revokeToken(_ request: Request, context: WebRequestContext) async throws -> Response {
        let user = try context.requireUser()
        let id = try context.parameters.require("id", as: Int64.self)
        let tokens = try await configuration.store.tokens(user: user.isAdmin ? nil : user.name)
        guard tokens.contains(where: { $0.id == id }) else {
            throw WaybillError(.unknownToken, "no API token \(id) of yours")
        }
        return try JSONResponse.make(TokenJSON(try await configuration.store.revokeToken(id, at: configuration.clock())))
    }

    func requireAdmin(_ context: WebRequestContext) throws {
        guard try context.requireUser().isAdmin else { throw APIError.forbidden("only an admin manages users") }
    }

    func decode<T: Decodable>(_ type: T.Type, _ request: Request, context: WebRequestContext) async throws -> T {
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        // No body at all reads as `{}`: `POST /api/tokens` needs none.
        let data = buffer.readableBytes == 0 ? Data("{}".utf8) : Data(buffer.readableBytesView)
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            throw APIError(
                .badRequest, code: "invalid-json", "the body is not the JSON object expected: \(DirectiveRoutes.describe(error))")
        }
    }
}
