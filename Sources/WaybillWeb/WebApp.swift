public import Hummingbird
public import Logging
import NIOCore
import WaybillCore

/// The web app's HTTP side: the pages people use (session cookies), the JSON API under `/api`
/// (Bearer tokens), `/health` and `/metrics`.
public enum WebApp {
    /// The routes, for `Application` and for in-process tests (HummingbirdTesting's `.router`).
    public static func router(_ configuration: WebConfiguration) -> Router<WebRequestContext> {
        let router = Router(context: WebRequestContext.self)
        router.add(middleware: APIErrorMiddleware())
        router.add(middleware: PageNotFoundMiddleware(pages: PageRoutes(configuration: configuration)))
        OperatorRoutes(configuration: configuration).add(to: router)
        let api = router.group("api")
            .add(middleware: TokenAuthenticator(users: configuration.store, clock: configuration.clock))
        DirectiveRoutes(configuration: configuration).add(to: api)
        UserRoutes(configuration: configuration).add(to: api)
        QuarantineRoutes(configuration: configuration).add(to: api)
        QueueRoutes(configuration: configuration).add(to: api)
        ActivityRoutes(configuration: configuration).add(to: api)
        PageRoutes(configuration: configuration).add(to: router)
        return router
    }

    /// The application as a `Service`: it stops accepting on graceful shutdown and lets the
    /// requests in hand finish. `onListening` gets the bound port (useful with port 0).
    public static func application(
        _ configuration: WebConfiguration, host: String, port: Int, logger: Logger,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> Application<RouterResponder<WebRequestContext>> {
        Application(
            router: router(configuration),
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? port) },
            logger: logger)
    }
}
