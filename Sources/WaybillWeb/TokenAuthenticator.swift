import Foundation
import Hummingbird
import WaybillCore

/// Resolves `Authorization: Bearer <token>` (RFC 6750 §2.1) to a user and refuses the request
/// with 401 when there is none: every `/api` route, reads included, needs a signed-in user,
/// because a directive's JSON carries its sheet token and a sheet routes documents.
///
/// A header that is present but wrong (another scheme, a malformed, unknown or revoked token) is
/// always a 401, never an anonymous request.
struct TokenAuthenticator: RouterMiddleware {
    typealias Context = WebRequestContext
    let users: any UserRepository
    let clock: @Sendable () -> Date

    func handle(
        _ request: Request, context: WebRequestContext, next: (Request, WebRequestContext) async throws -> Response
    ) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            throw APIError.unauthorized(
                "authentication-required", "this endpoint needs an API token: Authorization: Bearer <token>")
        }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw APIError.unauthorized("invalid-token", "the Authorization header must be 'Bearer <token>'")
        }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        guard APIToken.looksValid(token),
            let user = try await users.user(forTokenDigest: APIToken.digest(of: token), at: clock())
        else {
            throw APIError.unauthorized("invalid-token", "the API token is unknown or revoked")
        }
        var context = context
        context.user = user
        return try await next(request, context)
    }
}
