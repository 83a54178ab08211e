import Foundation
import GRDB
public import WaybillCore

/// Journal search and "my activity", in SQL over the ledger's tables.
extension SQLiteDirectiveStore: ActivityLog {
    static func registerActivityMigration(_ migrator: inout DatabaseMigrator) {
        // A person's activity goes from their directives to the jobs on them (the job table's
        // key starts with the message), and journal searches by time read a range of `at`.
        migrator.registerMigration("v6-activity-indexes") { db in
            try db.execute(
                sql: """
                    CREATE INDEX job_directive ON job(directive_id, message_id);
                    CREATE INDEX journal_at ON journal(at);
                    """)
        }
    }

    public func journal(matching query: JournalQuery) async throws -> [JournalEntry] {
        var conditions: [String] = []
        var arguments = StatementArguments()
        if let id = query.messageID {
            conditions.append("message_id = ?")
            arguments += [id]
        }
        if let directive = query.directive {
            conditions.append("message_id IN (SELECT message_id FROM job WHERE directive_id = ?)")
            arguments += [directive.rawValue]
        }
        if let owner = query.owner {
            conditions.append(
                "message_id IN (SELECT job.message_id FROM job JOIN directive ON directive.id = job.directive_id WHERE directive.owner = ? COLLATE NOCASE)"
            )
            arguments += [owner]
        }
        if let actor = query.actor {
            conditions.append("actor = ?")
            arguments += [actor]
        }
        if let since = query.since {
            conditions.append("at >= ?")
            arguments += [since.timeIntervalSince1970]
        }
        if let until = query.until {
            conditions.append("at < ?")
            arguments += [until.timeIntervalSince1970]
        }
        arguments += [max(0, query.limit)]
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        return try await pool.read { [arguments] db in
            try Row.fetchAll(db, sql: "SELECT * FROM journal \(filter) ORDER BY sequence DESC LIMIT ?", arguments: arguments)
                .map(Self.journalEntry)
        }
    }

    public func messages(touchingDirectivesOf owner: String, limit: Int) async throws -> [MessageRecord] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM message WHERE id IN (
                        SELECT job.message_id FROM job JOIN directive ON directive.id = job.directive_id
                        WHERE directive.owner = ? COLLATE NOCASE)
                    OR sender = ? COLLATE NOCASE
                    ORDER BY received_at DESC, id DESC LIMIT ?
                    """,
                arguments: [owner, owner, max(0, limit)]
            ).map(Self.message)
        }
    }
}
