public import Foundation
public import WaybillCore
public import WaybillSheets

/// Everything the web app needs, made by the one place where concrete types meet (the CLI's
/// `serve`, or a test): the app itself takes protocols.
public struct WebConfiguration: Sendable {
    public typealias Store = EditableDirectiveRepository & UserRepository & StatisticsSource & IngestLedger & ActivityLog

    public var store: any Store
    public var keys: SigningKeys
    /// The same policy `waybill directive create` checks destinations against.
    public var policy: DestinationPolicy
    /// A further check of each destination of a new or edited directive (the CLI resolves folder
    /// destinations under their root, as `directive create` does).
    public var checkDestination: @Sendable (Destination) throws -> Void
    /// The sheet template, looked up when a sheet is asked for: a server whose templates are
    /// missing still routes scans and answers the rest of the API.
    public var template: @Sendable () throws -> SheetTemplate
    /// The address printed on sheets for sending scans.
    public var scanAddress: String
    public var clock: @Sendable () -> Date
    /// Signs the web app's session cookies (`<data>/session-secret`); a fresh random one if not
    /// given, which signs everyone out at each start.
    public var sessionSecret: [UInt8]
    /// `Secure` on cookies: always, never, or (nil) when the request says it came over HTTPS
    /// (`X-Forwarded-Proto: https`, set by a TLS proxy in front).
    public var secureCookies: Bool?
    public var loginThrottle = LoginThrottle()
    /// The configuration an administrator sees on `/admin` (rules, folder roots, allow-lists).
    public var settingsSummary: @Sendable () -> [SettingsSection] = { [] }
    /// The process's live counters, written by `/metrics` after the store's gauges; nil when no
    /// SMTP server, pipeline or delivery queue counts into one here (then only the gauges).
    public var metrics: Metrics?
    /// Reroute, release, delete and page views of quarantined messages: the pipeline's
    /// `QuarantineDesk` in `serve`. Nil: those routes answer 503 `not-configured` (the lists and
    /// the journal still answer, from the store).
    public var quarantine: (any QuarantineOperations)?
    /// Retry and purge of deliveries: the pipeline's `QueueDesk` in `serve`, whose retry wakes the
    /// running delivery queue. Nil: those routes answer 503 `not-configured`.
    public var queue: (any DeliveryQueueOperations)?

    public init(
        store: any Store, keys: SigningKeys, policy: DestinationPolicy,
        template: @escaping @Sendable () throws -> SheetTemplate, scanAddress: String,
        checkDestination: @escaping @Sendable (Destination) throws -> Void = { _ in },
        clock: @escaping @Sendable () -> Date = { Date() }, metrics: Metrics? = nil,
        quarantine: (any QuarantineOperations)? = nil, queue: (any DeliveryQueueOperations)? = nil
    ) {
        self.metrics = metrics
        self.quarantine = quarantine
        self.queue = queue
        self.store = store
        self.keys = keys
        self.policy = policy
        self.template = template
        self.scanAddress = scanAddress
        self.checkDestination = checkDestination
        self.clock = clock
        var generator = SystemRandomNumberGenerator()
        sessionSecret = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }
}

/// One part of the configuration shown to administrators: a title and its lines.
public struct SettingsSection: Sendable {
    public var title: String
    public var items: [String]
    /// What to say when there are no items.
    public var empty: String

    public init(title: String, items: [String], empty: String) {
        self.title = title
        self.items = items
        self.empty = empty
    }
}
