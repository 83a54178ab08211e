public import Foundation
import GRDB
public import WaybillCore

/// Directives in an SQLite file (WAL mode through GRDB's `DatabasePool`): many readers, one
/// writer, safe to share across tasks. Constraints live in the schema as well as in the model,
/// so a bug above cannot store a directive the model would refuse.
public final class SQLiteDirectiveStore: DirectiveRepository {
    let pool: DatabasePool

    /// Opens (creating if needed) the database at `path` and runs every pending migration.
    public init(path: String) throws {
        do {
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)
            configuration.label = "waybill"
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(pool)
        } catch {
            throw WaybillError(.storeError, "cannot open the database at \(path): \(error)")
        }
    }

    /// Named migrations, applied in order and never edited once shipped (GRDB's Migrations.md).
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-directives") { db in
            try db.execute(
                sql: """
                    CREATE TABLE directive (
                        id TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 10),
                        title TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
                        owner TEXT NOT NULL CHECK (owner LIKE '%_@_%'),
                        visibility TEXT NOT NULL CHECK (visibility IN ('private', 'shared', 'public')),
                        created_at REAL NOT NULL,
                        expires_at REAL,
                        idle_expiry_seconds INTEGER CHECK (idle_expiry_seconds > 0),
                        max_uses INTEGER CHECK (max_uses > 0),
                        use_count INTEGER NOT NULL DEFAULT 0 CHECK (use_count >= 0),
                        last_used_at REAL,
                        revoked_at REAL,
                        delivery_confirmation INTEGER NOT NULL DEFAULT 0 CHECK (delivery_confirmation IN (0, 1)),
                        output_format TEXT NOT NULL DEFAULT 'pdf' CHECK (output_format IN ('pdf', 'original')),
                        file_name_pattern TEXT NOT NULL,
                        notes TEXT NOT NULL DEFAULT '',
                        CHECK (expires_at IS NULL OR expires_at > created_at)
                    ) STRICT;
                    CREATE TABLE directive_destination (
                        directive_id TEXT NOT NULL REFERENCES directive(id) ON DELETE CASCADE,
                        position INTEGER NOT NULL CHECK (position >= 0),
                        uri TEXT NOT NULL CHECK (length(uri) > 0),
                        PRIMARY KEY (directive_id, position),
                        UNIQUE (directive_id, uri)
                    ) STRICT;
                    CREATE INDEX directive_owner ON directive(owner);
                    """)
        }
        registerIngestMigrations(&migrator)
        registerAttemptMigration(&migrator)
        registerDeliveryQueueMigration(&migrator)
        registerUserMigration(&migrator)
        registerActivityMigration(&migrator)
        return migrator
    }

    /// The names of the migrations applied so far.
    public func appliedMigrations() throws -> [String] {
        try pool.read { db in try Self.migrator.appliedMigrations(db) }
    }

    public func insert(_ directive: Directive) async throws {
        do {
            try await pool.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO directive (id, title, owner, visibility, created_at, expires_at,
                            idle_expiry_seconds, max_uses, use_count, last_used_at, revoked_at,
                            delivery_confirmation, output_format, file_name_pattern, notes)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        directive.id.rawValue, directive.title, directive.owner, directive.visibility.rawValue,
                        directive.createdAt.timeIntervalSince1970, directive.expiresAt?.timeIntervalSince1970,
                        directive.idleExpiry, directive.maxUses, directive.useCount,
                        directive.lastUsedAt?.timeIntervalSince1970, directive.revokedAt?.timeIntervalSince1970,
                        directive.options.deliveryConfirmation, directive.options.outputFormat.rawValue,
                        directive.options.fileNamePattern, directive.options.notes,
                    ])
                for (position, destination) in directive.destinations.enumerated() {
                    try db.execute(
                        sql: "INSERT INTO directive_destination (directive_id, position, uri) VALUES (?, ?, ?)",
                        arguments: [directive.id.rawValue, position, destination.uri])
                }
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            throw WaybillError(.invalidDirective, "the store refused directive \(directive.id): \(error.message ?? "constraint")")
        }
    }

    public func directive(_ id: DirectiveID) async throws -> Directive? {
        try await pool.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM directive WHERE id = ?", arguments: [id.rawValue])
            else { return nil }
            return try Self.directive(from: row, db: db)
        }
    }

    public func allDirectives() async throws -> [Directive] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM directive ORDER BY created_at DESC, id").map {
                try Self.directive(from: $0, db: db)
            }
        }
    }

    public func revoke(_ id: DirectiveID, at date: Date) async throws -> Directive {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE directive SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?",
                arguments: [date.timeIntervalSince1970, id.rawValue])
            guard db.changesCount == 1,
                let row = try Row.fetchOne(db, sql: "SELECT * FROM directive WHERE id = ?", arguments: [id.rawValue])
            else { throw WaybillError(.unknownDirective, "no directive \(id.display)") }
            return try Self.directive(from: row, db: db)
        }
    }

    static func directive(from row: Row, db: Database) throws -> Directive {
        let idText: String = row["id"]
        guard let id = DirectiveID(idText) else {
            throw WaybillError(.storeError, "the store holds a malformed directive id '\(idText)'")
        }
        let uris = try String.fetchAll(
            db, sql: "SELECT uri FROM directive_destination WHERE directive_id = ? ORDER BY position", arguments: [idText])
        let destinations = try uris.map { uri throws(WaybillError) in try Destination(uri: uri) }
        func date(_ column: String) -> Date? {
            (row[column] as Double?).map { Date(timeIntervalSince1970: $0) }
        }
        return Directive(
            id: id,
            title: row["title"],
            owner: row["owner"],
            visibility: Visibility(rawValue: row["visibility"]) ?? .private,
            destinations: destinations,
            createdAt: date("created_at") ?? Date(timeIntervalSince1970: 0),
            expiresAt: date("expires_at"),
            idleExpiry: row["idle_expiry_seconds"],
            maxUses: row["max_uses"],
            useCount: row["use_count"],
            lastUsedAt: date("last_used_at"),
            revokedAt: date("revoked_at"),
            options: DirectiveOptions(
                deliveryConfirmation: row["delivery_confirmation"],
                outputFormat: OutputFormat(rawValue: row["output_format"]) ?? .pdf,
                fileNamePattern: row["file_name_pattern"],
                notes: row["notes"]
            )
        )
    }
}
