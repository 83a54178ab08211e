public import Hummingbird
public import WaybillCore

/// The request context of the web app: Hummingbird's core storage plus the signed-in user,
/// which `TokenAuthenticator` sets before any `/api` route runs.
public struct WebRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var user: User?
    /// The browser session a page request came with (pages only; the API takes tokens).
    public var session: WebSession?
    /// The session's CSRF token, which every form that changes something must carry.
    public var csrf: String?
    /// The client's IP address, for throttling sign-in attempts.
    public var remoteAddress: String?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        user = nil
        remoteAddress = source.channel.remoteAddress?.ipAddress
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
