public import Foundation
import GRDB
public import WaybillCore

/// The outbox rows, in the same SQLite file as the messages and jobs they belong to.
extension SQLiteDirectiveStore: DeliveryLedger {
    static func registerDeliveryQueueMigration(_ migrator: inout DatabaseMigrator) {
        // The delivery table grows into a queue: an id, a kind, attempts, the next attempt,
        // the last error, the outbox file. Rows of v2 (folder deliveries) are kept as they were.
        migrator.registerMigration("v4-delivery-queue") { db in
            try db.execute(
                sql: """
                    CREATE TABLE delivery_queue (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        message_id TEXT NOT NULL REFERENCES message(id),
                        job INTEGER NOT NULL CHECK (job >= 0),
                        kind TEXT NOT NULL CHECK (kind IN ('document', 'relay', 'notice')),
                        destination TEXT NOT NULL CHECK (length(destination) > 0),
                        state TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'delivered', 'dead', 'purged')),
                        document TEXT NOT NULL,
                        file_name TEXT NOT NULL,
                        sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
                        target TEXT NOT NULL DEFAULT '',
                        attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
                        created_at REAL NOT NULL,
                        retry_since REAL NOT NULL,
                        next_attempt_at REAL,
                        held_until REAL,
                        last_attempt_at REAL,
                        last_error TEXT,
                        delivered_at REAL,
                        UNIQUE (message_id, job, kind, destination)
                    ) STRICT;
                    INSERT INTO delivery_queue (message_id, job, kind, destination, state, document, file_name, sha256, target,
                            attempts, created_at, retry_since, next_attempt_at, delivered_at)
                        SELECT message_id, job, 'document', destination,
                            CASE state WHEN 'delivered' THEN 'delivered' ELSE 'queued' END,
                            '', '', sha256, target, 1, coalesce(delivered_at, 0), coalesce(delivered_at, 0),
                            CASE state WHEN 'delivered' THEN NULL ELSE 0 END, delivered_at
                        FROM delivery;
                    DROP TABLE delivery;
                    ALTER TABLE delivery_queue RENAME TO delivery;
                    CREATE INDEX delivery_due ON delivery(state, next_attempt_at);
                    CREATE INDEX delivery_message ON delivery(message_id, job);
                    ALTER TABLE message ADD COLUMN notify TEXT;
                    """)
        }
    }

    static func delivery(_ row: Row) -> DeliveryRecord {
        DeliveryRecord(
            id: row["id"], messageID: row["message_id"], job: row["job"],
            kind: DeliveryKind(rawValue: row["kind"]) ?? .document, destination: row["destination"],
            state: DeliveryState(rawValue: row["state"]) ?? .queued, document: row["document"], fileName: row["file_name"],
            sha256: row["sha256"], target: row["target"], attempts: row["attempts"],
            createdAt: date(row, "created_at") ?? Date(timeIntervalSince1970: 0), retrySince: date(row, "retry_since"),
            nextAttemptAt: date(row, "next_attempt_at"), lastAttemptAt: date(row, "last_attempt_at"), lastError: row["last_error"],
            deliveredAt: date(row, "delivered_at"))
    }

    public func enqueue(_ deliveries: [NewDelivery], at date: Date, journal: [JournalEntry]) async throws -> [DeliveryRecord] {
        guard !deliveries.isEmpty else { return [] }
        return try await pool.write { db in
            var stored: [DeliveryRecord] = []
            var lines = journal
            for new in deliveries {
                let now = date.timeIntervalSince1970
                try db.execute(
                    sql: """
                        INSERT INTO delivery (message_id, job, kind, destination, state, document, file_name, sha256,
                            created_at, retry_since, next_attempt_at)
                        VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?)
                        ON CONFLICT (message_id, job, kind, destination) DO NOTHING
                        """,
                    arguments: [
                        new.messageID, new.job, new.kind.rawValue, new.destination, new.document, new.fileName, new.sha256, now, now,
                        now,
                    ])
                if db.changesCount > 0 {
                    lines.append(
                        JournalEntry(
                            at: date, messageID: new.messageID, event: "queued",
                            detail: (new.job > 0 ? "job \(new.job) " : "") + "\(new.kind.rawValue) to \(new.destination)"))
                }
                if let row = try Row.fetchOne(
                    db, sql: "SELECT * FROM delivery WHERE message_id = ? AND job = ? AND kind = ? AND destination = ?",
                    arguments: [new.messageID, new.job, new.kind.rawValue, new.destination])
                {
                    stored.append(Self.delivery(row))
                }
            }
            try Self.append(lines, db)
            return stored
        }
    }

    public func claimDelivery(_ id: Int64, at date: Date, until: Date) async throws -> DeliveryRecord? {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE delivery SET state = 'sending', held_until = ? WHERE id = ? AND state = 'queued'",
                arguments: [until.timeIntervalSince1970, id])
            guard db.changesCount == 1 else { return nil }
            return try Row.fetchOne(db, sql: "SELECT * FROM delivery WHERE id = ?", arguments: [id]).map(Self.delivery)
        }
    }

    public func planTarget(_ id: Int64, target: String) async throws {
        try await pool.write { db in
            try db.execute(sql: "UPDATE delivery SET target = ? WHERE id = ? AND state = 'sending'", arguments: [target, id])
        }
    }

    public func recordAttempt(_ id: Int64, _ result: DeliveryAttemptResult, at date: Date, journal: [JournalEntry]) async throws {
        let now = date.timeIntervalSince1970
        try await pool.write { db in
            switch result {
            case .delivered(let target):
                try db.execute(
                    sql: """
                        UPDATE delivery SET state = 'delivered', target = ?, attempts = attempts + 1, last_attempt_at = ?,
                            delivered_at = ?, next_attempt_at = NULL, held_until = NULL, last_error = NULL WHERE id = ?
                        """,
                    arguments: [target, now, now, id])
            case .retry(let error, let next):
                try db.execute(
                    sql: """
                        UPDATE delivery SET state = 'queued', attempts = attempts + 1, last_attempt_at = ?, last_error = ?,
                            next_attempt_at = ?, held_until = NULL WHERE id = ?
                        """,
                    arguments: [now, error, next.timeIntervalSince1970, id])
            case .dead(let error):
                try db.execute(
                    sql: """
                        UPDATE delivery SET state = 'dead', attempts = attempts + 1, last_attempt_at = ?, last_error = ?,
                            next_attempt_at = NULL, held_until = NULL WHERE id = ?
                        """,
                    arguments: [now, error, id])
            }
            try Self.append(journal, db)
        }
    }

    public func delivery(_ id: Int64) async throws -> DeliveryRecord? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM delivery WHERE id = ?", arguments: [id]).map(Self.delivery)
        }
    }

    public func deliveries(messageID: String) async throws -> [DeliveryRecord] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM delivery WHERE message_id = ? ORDER BY job, id", arguments: [messageID])
                .map(Self.delivery)
        }
    }

    public func deliveries(states: Set<DeliveryState>, limit: Int) async throws -> [DeliveryRecord] {
        let names = states.map(\.rawValue).sorted()
        guard !names.isEmpty else { return [] }
        var arguments = StatementArguments(names)
        arguments += [limit]
        return try await pool.read { [arguments] db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM delivery WHERE state IN (\(names.map { _ in "?" }.joined(separator: ", "))) ORDER BY id LIMIT ?",
                arguments: arguments
            ).map(Self.delivery)
        }
    }

    public func dueDeliveries(at date: Date, limit: Int) async throws -> [DeliveryRecord] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM delivery WHERE state = 'queued' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
                arguments: [date.timeIntervalSince1970, limit]
            ).map(Self.delivery)
        }
    }

    public func nextDelivery() async throws -> Date? {
        try await pool.read { db in
            try Double.fetchOne(db, sql: "SELECT min(next_attempt_at) FROM delivery WHERE state = 'queued'")
                .map { Date(timeIntervalSince1970: $0) }
        }
    }

    public func requeueAbandoned(before date: Date) async throws -> Int {
        try await pool.write { db in
            try db.execute(
                sql: """
                    UPDATE delivery SET state = 'queued', held_until = NULL, next_attempt_at = coalesce(next_attempt_at, ?)
                    WHERE state = 'sending' AND (held_until IS NULL OR held_until < ?)
                    """,
                arguments: [date.timeIntervalSince1970, date.timeIntervalSince1970])
            return db.changesCount
        }
    }

    public func retryDelivery(_ id: Int64, at date: Date, journal: [JournalEntry]) async throws -> DeliveryRecord? {
        try await pool.write { db in
            try db.execute(
                sql: """
                    UPDATE delivery SET state = 'queued', next_attempt_at = ?, retry_since = ?, held_until = NULL
                    WHERE id = ? AND state IN ('queued', 'dead')
                    """,
                arguments: [date.timeIntervalSince1970, date.timeIntervalSince1970, id])
            guard db.changesCount == 1 else { return nil }
            try Self.append(journal, db)
            return try Row.fetchOne(db, sql: "SELECT * FROM delivery WHERE id = ?", arguments: [id]).map(Self.delivery)
        }
    }

    public func purgeDelivery(_ id: Int64, at date: Date, journal: [JournalEntry]) async throws -> DeliveryRecord? {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE delivery SET state = 'purged', next_attempt_at = NULL, held_until = NULL WHERE id = ? AND state IN ('queued', 'dead')",
                arguments: [id])
            guard db.changesCount == 1 else { return nil }
            try Self.append(journal, db)
            return try Row.fetchOne(db, sql: "SELECT * FROM delivery WHERE id = ?", arguments: [id]).map(Self.delivery)
        }
    }
}
