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
        clock: @escaping @Sendable () -> Date = { Date() }, quarantine: (any QuarantineOperations)? = nil,
        queue: (any DeliveryQueueOperations)? = nil
    ) {
        self.quarantine = quarantine
        self.queue = queue
        self.store = store
        self.keys = keys
        self.policy = policy
        self.template = template
        self.scanAddress = scanAddress
        self.checkDestination = checkDestination
        self.clock = clock
    }
}
