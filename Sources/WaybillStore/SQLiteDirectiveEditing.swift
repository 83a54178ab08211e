public import Foundation
import GRDB
public import WaybillCore

extension SQLiteDirectiveStore: EditableDirectiveRepository {
    public func update(_ directive: Directive) async throws -> Directive {
        do {
            return try await pool.write { db in
                try db.execute(
                    sql: """
                        UPDATE directive SET title = ?, owner = ?, visibility = ?, expires_at = ?, idle_expiry_seconds = ?,
                            max_uses = ?, delivery_confirmation = ?, output_format = ?, file_name_pattern = ?, notes = ?
                        WHERE id = ?
                        """,
                    arguments: [
                        directive.title, directive.owner, directive.visibility.rawValue,
                        directive.expiresAt?.timeIntervalSince1970, directive.idleExpiry, directive.maxUses,
                        directive.options.deliveryConfirmation, directive.options.outputFormat.rawValue,
                        directive.options.fileNamePattern, directive.options.notes, directive.id.rawValue,
                    ])
                guard db.changesCount == 1 else { throw WaybillError(.unknownDirective, "no directive \(directive.id.display)") }
                try db.execute(
                    sql: "DELETE FROM directive_destination WHERE directive_id = ?", arguments: [directive.id.rawValue])
                for (position, destination) in directive.destinations.enumerated() {
                    try db.execute(
                        sql: "INSERT INTO directive_destination (directive_id, position, uri) VALUES (?, ?, ?)",
                        arguments: [directive.id.rawValue, position, destination.uri])
                }
                guard
                    let row = try Row.fetchOne(
                        db, sql: "SELECT * FROM directive WHERE id = ?", arguments: [directive.id.rawValue])
                else { throw WaybillError(.unknownDirective, "no directive \(directive.id.display)") }
                return try Self.directive(from: row, db: db)
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            throw WaybillError(.invalidDirective, "the store refused directive \(directive.id): \(error.message ?? "constraint")")
        }
    }
}

extension SQLiteDirectiveStore: StatisticsSource {
    public func checkHealth() async throws {
        _ = try await pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM directive") }
    }

    /// The ledger counts come from one read transaction, so they agree with each other; directive
    /// statuses depend on the time, so they are worked out here from the model.
    public func statistics(at date: Date) async throws -> StoreStatistics {
        let directives = try await allDirectives()
        var statistics = try await pool.read { db in
            var statistics = StoreStatistics()
            for row in try Row.fetchAll(db, sql: "SELECT state, count(*) AS n FROM message GROUP BY state") {
                statistics.messages[row["state"] as String] = row["n"] as Int
            }
            for row in try Row.fetchAll(
                db, sql: "SELECT reason, count(*) AS n FROM quarantine WHERE state = 'held' GROUP BY reason")
            {
                statistics.quarantineHeld[row["reason"] as String] = row["n"] as Int
            }
            for row in try Row.fetchAll(
                db, sql: "SELECT kind, state, count(*) AS n FROM delivery GROUP BY kind, state ORDER BY kind, state")
            {
                statistics.deliveries.append(.init(kind: row["kind"] as String, state: row["state"] as String, count: row["n"] as Int))
            }
            statistics.queueDepth =
                try Int.fetchOne(db, sql: "SELECT count(*) FROM delivery WHERE state IN ('queued', 'sending')") ?? 0
            statistics.users = try Int.fetchOne(db, sql: "SELECT count(*) FROM user") ?? 0
            statistics.activeTokens =
                try Int.fetchOne(db, sql: "SELECT count(*) FROM api_token WHERE revoked_at IS NULL") ?? 0
            return statistics
        }
        for directive in directives {
            statistics.directives[directive.status(at: date).name, default: 0] += 1
        }
        return statistics
    }
}
