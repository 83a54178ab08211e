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
