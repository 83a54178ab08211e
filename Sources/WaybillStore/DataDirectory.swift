public import Foundation
public import WaybillCore

/// The data directory: database, signing keys, (later) spool and quarantine.
/// Created with mode 0700; secrets inside it with 0600.
public struct DataDirectory: Sendable {
    public let url: URL

    public init(path: String) {
        url = URL(fileURLWithPath: path, isDirectory: true).standardizedFileURL
    }

    public var databasePath: String { url.appendingPathComponent("waybill.sqlite").path }
    public var keysPath: String { url.appendingPathComponent("keys.json").path }

    /// Creates the directory if it is missing.
    public func prepare() throws(WaybillError) {
        do {
            try FileManager.default.createDirectory(
                at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw WaybillError(.ioError, "cannot create the data directory \(url.path): \(error.localizedDescription)")
        }
    }

    public func openStore() throws -> SQLiteDirectiveStore {
        try prepare()
        return try SQLiteDirectiveStore(path: databasePath)
    }

    /// The signing keys, created (one key, `K1`) on first use.
    public func loadOrCreateKeys(now: Date = Date()) throws(WaybillError) -> SigningKeys {
        try prepare()
        if FileManager.default.fileExists(atPath: keysPath) {
            return try loadKeys()
        }
        var keys = SigningKeys(keys: [])
        keys.rotate(now: now)
        try saveKeys(keys, createOnly: true)
        // Another process may have won the race to create the file: theirs is the one to use.
        return try loadKeys()
    }

    /// A random secret in `<data>/<name>` (64 hex digits, mode 0600), made on first use: the
    /// webhook signing secret. The key is the text itself (its ASCII bytes, without the line
    /// end), so a receiver uses the string the administrator gives it as it is.
    public func loadOrCreateSecret(named name: String) throws(WaybillError) -> [UInt8] {
        try prepare()
        let path = url.appendingPathComponent(name).path
        if !FileManager.default.fileExists(atPath: path) {
            let secret = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
            try SecretFile.write(Data((secret + "\n").utf8), to: path, createOnly: true)
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw WaybillError(.keyError, "cannot read the secret in \(path)")
        }
        let secret = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard secret.utf8.count >= 16 else { throw WaybillError(.keyError, "the secret in \(path) is shorter than 16 characters") }
        return Array(secret.utf8)
    }

    public func loadKeys() throws(WaybillError) -> SigningKeys {
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: keysPath))
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            return try decoder.decode(SigningKeys.self, from: data)
        } catch {
            throw WaybillError(.keyError, "cannot read the signing keys in \(keysPath): \(error.localizedDescription)")
        }
    }

    /// Runs `body` (load, change, save) holding an exclusive lock on the key file, so two
    /// `waybill key rotate` runs cannot both create K2 and lose one of the secrets.
    public func withKeysLocked<T>(_ body: () throws -> T) throws -> T {
        try prepare()
        let fd = open(url.appendingPathComponent("keys.lock").path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw WaybillError(.ioError, "cannot lock the signing keys: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw WaybillError(.ioError, "cannot lock the signing keys: \(String(cString: strerror(errno)))") }
        }
        return try body()
    }

    /// Writes the keys with mode 0600 through a temporary file, fsync and rename, so a crash
    /// leaves the old file or the new one, never half of one.
    public func saveKeys(_ keys: SigningKeys, createOnly: Bool = false) throws(WaybillError) {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data: Data
        do { data = try encoder.encode(keys) } catch {
            throw WaybillError(.keyError, "cannot encode the signing keys: \(error)")
        }
        try SecretFile.write(data, to: keysPath, createOnly: createOnly)
    }
}

/// Writes small secret files: mode 0600 from the first byte, durable before it is visible.
public enum SecretFile {
    public static func write(_ data: Data, to path: String, createOnly: Bool) throws(WaybillError) {
        let temporary = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw WaybillError(.ioError, "cannot create \(temporary): \(String(cString: strerror(errno)))") }
        var ok = data.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Foundation.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 { if errno == EINTR { continue } else { return false } }
                offset += written
            }
            return true
        }
        ok = ok && fsync(fd) == 0
        close(fd)
        guard ok else {
            unlink(temporary)
            throw WaybillError(.ioError, "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        // link() refuses to replace an existing file: the first writer of a new secret wins.
        let moved = createOnly ? (link(temporary, path) == 0 || errno == EEXIST) : rename(temporary, path) == 0
        let savedErrno = errno
        unlink(temporary)
        guard moved else { throw WaybillError(.ioError, "cannot install \(path): \(String(cString: strerror(savedErrno)))") }
        syncDirectory(of: path)
    }

    static func syncDirectory(of path: String) {
        let directory = (path as NSString).deletingLastPathComponent
        let fd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }
}
