public import Hummingbird
public import WaybillCore

/// The request context of the web app: Hummingbird's core storage plus the signed-in user,
/// which `TokenAuthenticator` sets before any `/api` route runs.
public struct WebRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var user: User?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        user = nil
    }

    /// The signed-in user; the authenticator guarantees one on `/api` routes.
    func requireUser() throws -> User {
        guard let user else { throw APIError.unauthorized("authentication-required", "sign in or send an API token") }
        return user
    }
}

extension WebRequestContext {
    /// The signed-in user if they are an admin; 403 `forbidden` otherwise (401 with no user).
    func requireAdmin(_ what: String) throws -> User {
        let user = try requireUser()
        guard user.isAdmin else { throw APIError.forbidden("only an admin \(what)") }
        return user
    }
}
