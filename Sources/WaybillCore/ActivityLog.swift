public import Foundation

/// Searches over the pipeline's history: the journal by message, directive, owner, actor and
/// time, and the messages that touched one person's directives ("my activity").
public protocol ActivityLog: Sendable {
    /// Journal lines matching every filter the query sets, newest first, at most `query.limit`.
    func journal(matching query: JournalQuery) async throws -> [JournalEntry]
    /// Messages with at least one job on a directive `owner` owns, or sent from `owner`'s
    /// address (a scanner that sends as the person: so their refused scans show too), compared
    /// case-insensitively; newest first (by receipt), at most `limit`.
    func messages(touchingDirectivesOf owner: String, limit: Int) async throws -> [MessageRecord]
}

/// A journal search. Unset filters match everything; set ones must all match.
public struct JournalQuery: Sendable, Hashable {
    public var messageID: String?
    /// Lines of messages with a job on this directive.
    public var directive: DirectiveID?
    /// Lines of messages with a job on a directive this user owns (case-insensitive): the same
    /// messages as their activity. Who acted is `actor`.
    public var owner: String?
    /// Lines written by exactly this actor (`worker`, `cli:root`, `web:root@example.com`).
    public var actor: String?
    /// At or after.
    public var since: Date?
    /// Before.
    public var until: Date?
    public var limit: Int

    public init(
        messageID: String? = nil, directive: DirectiveID? = nil, owner: String? = nil, actor: String? = nil, since: Date? = nil,
        until: Date? = nil, limit: Int = 100
    ) {
        self.messageID = messageID
        self.directive = directive
        self.owner = owner
        self.actor = actor
        self.since = since
        self.until = until
        self.limit = limit
    }
}
