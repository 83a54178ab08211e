public import Foundation
import GRDB
public import WaybillCore

/// The pipeline's records in the same SQLite file as the directives, so accepting a job and
/// counting its directive's use are one transaction.
extension SQLiteDirectiveStore: IngestLedger {
    static func registerIngestMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v2-ingest") { db in
            try db.execute(
                sql: """
                    CREATE TABLE message (
                        id TEXT PRIMARY KEY NOT NULL CHECK (length(id) BETWEEN 1 AND 64),
                        received_at REAL NOT NULL,
                        sender TEXT NOT NULL,
                        recipients TEXT NOT NULL,
                        size INTEGER NOT NULL CHECK (size >= 0),
                        state TEXT NOT NULL CHECK (state IN ('received', 'done', 'quarantined')),
                        outcome TEXT,
                        finished_at REAL
                    ) STRICT;
                    CREATE TABLE job (
                        message_id TEXT NOT NULL REFERENCES message(id),
                        number INTEGER NOT NULL CHECK (number >= 1),
                        directive_id TEXT NOT NULL REFERENCES directive(id),
                        accepted_at REAL NOT NULL,
                        PRIMARY KEY (message_id, number)
                    ) STRICT;
                    CREATE TABLE delivery (
                        message_id TEXT NOT NULL,
                        job INTEGER NOT NULL,
                        destination TEXT NOT NULL,
                        state TEXT NOT NULL CHECK (state IN ('planned', 'delivered')),
                        target TEXT NOT NULL,
                        sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
                        delivered_at REAL,
                        PRIMARY KEY (message_id, job, destination),
                        FOREIGN KEY (message_id, job) REFERENCES job(message_id, number)
                    ) STRICT;
                    CREATE TABLE quarantine (
                        message_id TEXT PRIMARY KEY NOT NULL,
                        reason TEXT NOT NULL CHECK (length(reason) > 0),
                        detail TEXT NOT NULL,
                        at REAL NOT NULL,
                        state TEXT NOT NULL CHECK (state IN ('held', 'released', 'rerouted', 'deleted')),
                        sender TEXT NOT NULL,
                        recipients TEXT NOT NULL,
                        subject TEXT
                    ) STRICT;
                    CREATE TABLE journal (
                        sequence INTEGER PRIMARY KEY AUTOINCREMENT,
                        at REAL NOT NULL,
                        message_id TEXT NOT NULL,
                        event TEXT NOT NULL CHECK (length(event) > 0),
                        detail TEXT NOT NULL,
                        actor TEXT NOT NULL
                    ) STRICT;
                    CREATE INDEX journal_message ON journal(message_id, sequence);
                    CREATE TRIGGER journal_append_only_update BEFORE UPDATE ON journal
                        BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
                    CREATE TRIGGER journal_append_only_delete BEFORE DELETE ON journal
                        BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
                    """)
        }
    }

    static func registerAttemptMigration(_ migrator: inout DatabaseMigrator) {
        // How many times the worker started on a message: a message that kills the process
        // every time (a hostile PDF, say) must not take the service down forever.
        migrator.registerMigration("v3-message-attempts") { db in
            try db.execute(sql: "ALTER TABLE message ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0)")
        }
    }

    public func beginAttempt(_ id: String, journal: [JournalEntry]) async throws -> Int {
        try await pool.write { db in
            try db.execute(sql: "UPDATE message SET attempts = attempts + 1 WHERE id = ?", arguments: [id])
            try Self.append(journal, db)
            return try Int.fetchOne(db, sql: "SELECT attempts FROM message WHERE id = ?", arguments: [id]) ?? 0
        }
    }

    public func setNotify(_ id: String, address: String?) async throws {
        try await pool.write { db in
            try db.execute(sql: "UPDATE message SET notify = ? WHERE id = ?", arguments: [address, id])
        }
    }

    static func encode(_ list: [String]) -> String {
        String(decoding: (try? JSONEncoder().encode(list)) ?? Data("[]".utf8), as: UTF8.self)
    }

    static func decodeList(_ text: String) -> [String] {
        (try? JSONDecoder().decode([String].self, from: Data(text.utf8))) ?? []
    }

    static func date(_ row: Row, _ column: String) -> Date? {
        (row[column] as Double?).map { Date(timeIntervalSince1970: $0) }
    }

    static func message(_ row: Row) -> MessageRecord {
        MessageRecord(
            id: row["id"], receivedAt: date(row, "received_at") ?? Date(timeIntervalSince1970: 0), sender: row["sender"],
            recipients: decodeList(row["recipients"]), size: row["size"],
            state: MessageState(rawValue: row["state"]) ?? .received, outcome: row["outcome"],
            finishedAt: date(row, "finished_at"), notify: row["notify"])
    }

    public func openMessage(_ message: MessageRecord) async throws -> MessageRecord {
        try await pool.write { db in try Self.open(message, db) }
    }

    public func startProcessing(_ message: MessageRecord, again: Bool, journal: [JournalEntry]) async throws -> (MessageRecord, attempts: Int) {
        try await pool.write { db in
            let record = try Self.open(message, db)
            guard record.state == .received || again else { return (record, 0) }
            try db.execute(sql: "UPDATE message SET attempts = attempts + 1 WHERE id = ?", arguments: [message.id])
            try Self.append(journal, db)
            return (record, try Int.fetchOne(db, sql: "SELECT attempts FROM message WHERE id = ?", arguments: [message.id]) ?? 0)
        }
    }

    private static func open(_ message: MessageRecord, _ db: Database) throws -> MessageRecord {
            try db.execute(
                sql: """
                    INSERT INTO message (id, received_at, sender, recipients, size, state) VALUES (?, ?, ?, ?, ?, 'received')
                    ON CONFLICT (id) DO NOTHING
                    """,
                arguments: [
                    message.id, message.receivedAt.timeIntervalSince1970, message.sender, Self.encode(message.recipients),
                    message.size,
                ])
            let row = try Row.fetchOne(db, sql: "SELECT * FROM message WHERE id = ?", arguments: [message.id])!
            return Self.message(row)
    }

    public func message(_ id: String) async throws -> MessageRecord? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM message WHERE id = ?", arguments: [id]).map(Self.message)
        }
    }

    public func finishMessage(_ id: String, state: MessageState, outcome: String, at date: Date, journal: [JournalEntry]) async throws {
        try await pool.write { db in
            try Self.finish(id, state: state, outcome: outcome, at: date, db)
            try Self.append(journal, db)
        }
    }

    private static func finish(_ id: String, state: MessageState, outcome: String, at date: Date, _ db: Database) throws {
        try db.execute(
            sql: "UPDATE message SET state = ?, outcome = ?, finished_at = ? WHERE id = ?",
            arguments: [state.rawValue, outcome, date.timeIntervalSince1970, id])
    }

    public func acceptJobs(messageID: String, directives: [DirectiveID], at date: Date) async throws -> [JobRecord] {
        try await pool.write { db in
            let existing = try Self.jobs(db, messageID: messageID)
            if !existing.isEmpty { return existing }
            // Uses this message makes of each directive, checked against what is left.
            var uses: [DirectiveID: Int] = [:]
            for id in directives { uses[id, default: 0] += 1 }
            for (id, count) in uses.sorted(by: { $0.key < $1.key }) {
                guard let row = try Row.fetchOne(db, sql: "SELECT * FROM directive WHERE id = ?", arguments: [id.rawValue]) else {
                    throw WaybillError(.unknownDirective, "no directive \(id.display)")
                }
                let directive = try Self.directive(from: row, db: db)
                let status = directive.status(at: date)
                guard status.isActive else { throw WaybillError(.directiveInactive, status.explanation(for: id)) }
                if let maxUses = directive.maxUses, directive.useCount + count > maxUses {
                    throw WaybillError(
                        .directiveInactive,
                        "directive \(id.display) has \(maxUses - directive.useCount) uses left and this scan needs \(count)")
                }
                try db.execute(
                    sql: "UPDATE directive SET use_count = use_count + ?, last_used_at = ? WHERE id = ?",
                    arguments: [count, date.timeIntervalSince1970, id.rawValue])
            }
            for (index, id) in directives.enumerated() {
                try db.execute(
                    sql: "INSERT INTO job (message_id, number, directive_id, accepted_at) VALUES (?, ?, ?, ?)",
                    arguments: [messageID, index + 1, id.rawValue, date.timeIntervalSince1970])
            }
            return try Self.jobs(db, messageID: messageID)
        }
    }

    public func jobs(messageID: String) async throws -> [JobRecord] {
        try await pool.read { db in try Self.jobs(db, messageID: messageID) }
    }

    private static func jobs(_ db: Database, messageID: String) throws -> [JobRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM job WHERE message_id = ? ORDER BY number", arguments: [messageID]).compactMap { row in
            guard let id = DirectiveID(row["directive_id"] as String) else { return nil }
            return JobRecord(
                messageID: row["message_id"], number: row["number"], directive: id,
                acceptedAt: date(row, "accepted_at") ?? Date(timeIntervalSince1970: 0))
        }
    }

    public func quarantine(_ entry: QuarantineEntry, journal: [JournalEntry]) async throws {
        try await pool.write { db in
            try Self.finish(entry.messageID, state: .quarantined, outcome: entry.reason, at: entry.at, db)
            try Self.append(journal, db)
            try db.execute(
                sql: """
                    INSERT INTO quarantine (message_id, reason, detail, at, state, sender, recipients, subject)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (message_id) DO UPDATE SET reason = excluded.reason, detail = excluded.detail,
                        at = excluded.at, state = excluded.state
                    """,
                arguments: [
                    entry.messageID, entry.reason, entry.detail, entry.at.timeIntervalSince1970, entry.state.rawValue,
                    entry.sender, Self.encode(entry.recipients), entry.subject,
                ])
        }
    }

    private static func quarantineEntry(_ row: Row) -> QuarantineEntry {
        QuarantineEntry(
            messageID: row["message_id"], reason: row["reason"], detail: row["detail"],
            at: date(row, "at") ?? Date(timeIntervalSince1970: 0), state: QuarantineState(rawValue: row["state"]) ?? .held,
            sender: row["sender"], recipients: decodeList(row["recipients"]), subject: row["subject"])
    }

    public func quarantineEntry(_ messageID: String) async throws -> QuarantineEntry? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM quarantine WHERE message_id = ?", arguments: [messageID]).map(Self.quarantineEntry)
        }
    }

    public func quarantineEntries() async throws -> [QuarantineEntry] {
        try await pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM quarantine ORDER BY state = 'held' DESC, at DESC, message_id DESC"
            ).map(Self.quarantineEntry)
        }
    }

    public func setQuarantineState(_ messageID: String, _ state: QuarantineState, at date: Date) async throws {
        try await pool.write { db in
            try db.execute(sql: "UPDATE quarantine SET state = ? WHERE message_id = ?", arguments: [state.rawValue, messageID])
        }
    }

    public func journal(_ entries: [JournalEntry]) async throws {
        guard !entries.isEmpty else { return }
        try await pool.write { db in try Self.append(entries, db) }
    }

    static func append(_ entries: [JournalEntry], _ db: Database) throws {
        for entry in entries {
            try db.execute(
                sql: "INSERT INTO journal (at, message_id, event, detail, actor) VALUES (?, ?, ?, ?, ?)",
                arguments: [entry.at.timeIntervalSince1970, entry.messageID, entry.event, entry.detail, entry.actor])
        }
    }

    public func journal(messageID: String) async throws -> [JournalEntry] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM journal WHERE message_id = ? ORDER BY sequence", arguments: [messageID])
                .map(Self.journalEntry)
        }
    }

    static func journalEntry(_ row: Row) -> JournalEntry {
        JournalEntry(
            sequence: row["sequence"], at: date(row, "at") ?? Date(timeIntervalSince1970: 0), messageID: row["message_id"],
            event: row["event"], detail: row["detail"], actor: row["actor"])
    }
}
