public import Foundation
import GRDB
public import WaybillCore

/// Users and API tokens, in the same database as the directives they own.
extension SQLiteDirectiveStore: UserRepository {
    static func registerUserMigration(_ migrator: inout DatabaseMigrator) {
        // A token row keeps only the SHA-256 of the token (64 hex digits): the token is shown
        // once, when it is made, and a copy of this file signs nobody in.
        migrator.registerMigration("v5-users") { db in
            try db.execute(
                sql: """
                    CREATE TABLE user (
                        name TEXT PRIMARY KEY NOT NULL COLLATE NOCASE CHECK (name LIKE '%_@_%' AND length(name) <= 254),
                        role TEXT NOT NULL CHECK (role IN ('user', 'admin')),
                        password_hash TEXT NOT NULL CHECK (password_hash LIKE 'pbkdf2-sha256$%'),
                        created_at REAL NOT NULL
                    ) STRICT;
                    CREATE TABLE api_token (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        user TEXT NOT NULL REFERENCES user(name) ON DELETE CASCADE,
                        sha256 TEXT NOT NULL UNIQUE CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),
                        created_at REAL NOT NULL,
                        last_used_at REAL,
                        revoked_at REAL
                    ) STRICT;
                    CREATE INDEX api_token_user ON api_token(user);
                    """)
        }
    }

    public func addUser(_ user: User) async throws {
        do {
            try await pool.write { db in
                try db.execute(
                    sql: "INSERT INTO user (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
                    arguments: [user.name, user.role.rawValue, user.passwordHash, user.createdAt.timeIntervalSince1970])
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            if error.extendedResultCode == .SQLITE_CONSTRAINT_PRIMARYKEY {
                throw WaybillError(.invalidUser, "there is already a user \(user.name)")
            }
            throw WaybillError(.invalidUser, "the store refused user \(user.name): \(error.message ?? "constraint")")
        }
    }

    public func user(named name: String) async throws -> User? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM user WHERE name = ?", arguments: [name]).map(Self.user)
        }
    }

    public func setPasswordHash(_ hash: String, forUser name: String) async throws {
        let changed = try await pool.write { db in
            try db.execute(sql: "UPDATE user SET password_hash = ? WHERE name = ?", arguments: [hash, name])
            return db.changesCount
        }
        guard changed == 1 else { throw WaybillError(.unknownUser, "no user \(name)") }
    }

    public func allUsers() async throws -> [User] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM user ORDER BY name").map(Self.user)
        }
    }

    public func addToken(digest: String, user: String, at date: Date) async throws -> APITokenRecord {
        try await pool.write { db in
            guard let name = try String.fetchOne(db, sql: "SELECT name FROM user WHERE name = ?", arguments: [user]) else {
                throw WaybillError(.unknownUser, "no user \(user)")
            }
            try db.execute(
                sql: "INSERT INTO api_token (user, sha256, created_at) VALUES (?, ?, ?)",
                arguments: [name, digest, date.timeIntervalSince1970])
            return APITokenRecord(id: db.lastInsertedRowID, user: name, createdAt: date, lastUsedAt: nil, revokedAt: nil)
        }
    }

    /// Records the use at most once a minute per token, so a busy script does not turn every
    /// read into a write.
    public func user(forTokenDigest digest: String, at date: Date) async throws -> User? {
        let found = try await pool.read { db -> (Int64, Double?, User)? in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT api_token.id AS token_id, api_token.last_used_at AS token_used, user.*
                        FROM api_token JOIN user ON user.name = api_token.user
                        WHERE api_token.sha256 = ? AND api_token.revoked_at IS NULL
                        """,
                    arguments: [digest])
            else { return nil }
            return (row["token_id"] as Int64, row["token_used"] as Double?, Self.user(row))
        }
        guard let (id, lastUsed, user) = found else { return nil }
        if lastUsed.map({ date.timeIntervalSince1970 - $0 >= 60 }) ?? true {
            try await pool.write { db in
                try db.execute(
                    sql: "UPDATE api_token SET last_used_at = ? WHERE id = ?", arguments: [date.timeIntervalSince1970, id])
            }
        }
        return user
    }

    public func tokens(user: String?) async throws -> [APITokenRecord] {
        try await pool.read { db in
            let rows =
                if let user {
                    try Row.fetchAll(db, sql: "SELECT * FROM api_token WHERE user = ? ORDER BY id DESC", arguments: [user])
                } else {
                    try Row.fetchAll(db, sql: "SELECT * FROM api_token ORDER BY id DESC")
                }
            return rows.map(Self.token)
        }
    }

    public func revokeToken(_ id: Int64, at date: Date) async throws -> APITokenRecord {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE api_token SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?",
                arguments: [date.timeIntervalSince1970, id])
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM api_token WHERE id = ?", arguments: [id]) else {
                throw WaybillError(.unknownToken, "no API token \(id)")
            }
            return Self.token(row)
        }
    }

    static func user(_ row: Row) -> User {
        User(
            name: row["name"], role: UserRole(rawValue: row["role"]) ?? .user, passwordHash: row["password_hash"],
            createdAt: Date(timeIntervalSince1970: row["created_at"]))
    }

    static func token(_ row: Row) -> APITokenRecord {
        func date(_ column: String) -> Date? { (row[column] as Double?).map { Date(timeIntervalSince1970: $0) } }
        return APITokenRecord(
            id: row["id"], user: row["user"], createdAt: date("created_at") ?? Date(timeIntervalSince1970: 0),
            lastUsedAt: date("last_used_at"), revokedAt: date("revoked_at"))
    }
}
