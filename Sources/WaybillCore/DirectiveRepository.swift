public import Foundation

/// Where directives live. SQLite implements it for one machine; a PostgreSQL implementation can
/// follow for several nodes. Implementations enforce the model's constraints in their schema too.
public protocol DirectiveRepository: Sendable {
    /// Stores a new directive. Throws `.invalidDirective` if the id is taken.
    func insert(_ directive: Directive) async throws
    func directive(_ id: DirectiveID) async throws -> Directive?
    /// All directives, newest first.
    func allDirectives() async throws -> [Directive]
    /// Marks a directive revoked and returns it; unknown ids throw `.unknownDirective`.
    func revoke(_ id: DirectiveID, at date: Date) async throws -> Directive
}

/// Directives that can be edited after creation (the web app's PATCH).
public protocol EditableDirectiveRepository: DirectiveRepository {
    /// Replaces the editable fields of a stored directive (title, owner, visibility, destinations,
    /// expiry, idle expiry, max uses, options) and returns it as stored. Uses, creation and
    /// revocation are not touched. Unknown ids throw `.unknownDirective`.
    func update(_ directive: Directive) async throws -> Directive
}

/// Counts an operator watches (`/metrics`), computed by the store when asked.
public struct StoreStatistics: Sendable, Hashable {
    /// Messages by state (`received`, `done`, `quarantined`).
    public var messages: [String: Int] = [:]
    /// Quarantine entries still held, by reason.
    public var quarantineHeld: [String: Int] = [:]
    /// Deliveries by kind and state.
    public var deliveries: [DeliveryCount] = []
    /// Deliveries waiting for an attempt or under way (`queued`, `sending`).
    public var queueDepth = 0
    /// Directives by status name at the time of the count.
    public var directives: [String: Int] = [:]
    public var users = 0
    public var activeTokens = 0

    public struct DeliveryCount: Sendable, Hashable {
        public var kind: String
        public var state: String
        public var count: Int
        public init(kind: String, state: String, count: Int) {
            self.kind = kind
            self.state = state
            self.count = count
        }
    }

    public init() {}
}

public protocol StatisticsSource: Sendable {
    /// Counts from the store; also how `/health` checks that the store answers.
    func statistics(at date: Date) async throws -> StoreStatistics
    /// Throws unless the store answers a trivial query: `/health`.
    func checkHealth() async throws
}
