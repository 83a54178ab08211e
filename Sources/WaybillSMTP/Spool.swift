public import Foundation

/// The spool: where an accepted message lives, durably, from the SMTP server's `250` until the
/// worker has routed it (DESIGN.md, "Durability and failure").
///
/// A message is written to `incoming/` as it streams in, then committed: the message file and
/// its envelope are fsynced, renamed into `queue/` (message first, envelope last: the envelope is
/// the commit marker), and the directory is fsynced. Only then may the server say 250. On start,
/// `incoming/` is emptied (those clients never heard 250 and will retry) and `pending()` lists
/// everything committed and not yet removed, oldest first. Files are mode 0600.
///
/// Blocking file work: call it off the event loops.
public struct Spool: Sendable {
    public let directory: URL
    var incoming: URL { directory.appendingPathComponent("incoming", isDirectory: true) }
    var queue: URL { directory.appendingPathComponent("queue", isDirectory: true) }

    public struct SpoolError: Error, CustomStringConvertible {
        public let description: String
    }

    public init(directory: URL) throws {
        self.directory = directory
        for folder in [directory, incoming, queue] {
            do {
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw SpoolError(description: "cannot create the spool folder \(folder.path): \(error.localizedDescription)")
            }
        }
        // Half-received messages from before a crash: their senders were never told 250.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: incoming.path)) ?? [] {
            try? FileManager.default.removeItem(at: incoming.appendingPathComponent(name))
        }
    }

    /// Time-ordered, unique, safe in file names and logs: 12 hex digits of milliseconds, 8 random.
    public static func newID(now: Date = Date()) -> String {
        let milliseconds = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        return String(format: "%012llX%08X", milliseconds, UInt32.random(in: 0...UInt32.max))
    }

    public func begin() throws -> Writer {
        try Writer(spool: self, id: Self.newID())
    }

    /// Streams one message into `incoming/`. One owner; not shared between tasks.
    public final class Writer {
        public let id: String
        let spool: Spool
        private let fd: Int32
        private var open = true
        public private(set) var size = 0

        init(spool: Spool, id: String) throws {
            self.spool = spool
            self.id = id
            let path = spool.incoming.appendingPathComponent(id + ".eml").path
            fd = Foundation.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw SpoolError(description: "cannot create \(path): \(String(cString: strerror(errno)))") }
        }

        deinit { abort() }

        public func write(_ bytes: [UInt8]) throws {
            var offset = 0
            while offset < bytes.count {
                let written = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
                if written < 0 {
                    if errno == EINTR { continue }
                    throw SpoolError(description: "cannot write message \(id): \(String(cString: strerror(errno)))")
                }
                offset += written
            }
            size += bytes.count
        }

        /// Makes the message durable with its envelope (any JSON-encodable value) and returns its id.
        public func commit(envelope: some Encodable) throws -> String {
            guard fsync(fd) == 0 else { throw SpoolError(description: "cannot fsync message \(id): \(String(cString: strerror(errno)))") }
            close(fd)
            open = false
            let envelopeData: Data
            do { envelopeData = try JSONEncoder().encode(envelope) } catch {
                throw SpoolError(description: "cannot encode the envelope of \(id): \(error)")
            }
            let envelopeTemp = spool.incoming.appendingPathComponent(id + ".json").path
            let envelopeFD = Foundation.open(envelopeTemp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard envelopeFD >= 0 else { throw SpoolError(description: "cannot create \(envelopeTemp)") }
            let ok = envelopeData.withUnsafeBytes { Foundation.write(envelopeFD, $0.baseAddress!, $0.count) == $0.count }
                && fsync(envelopeFD) == 0
            close(envelopeFD)
            guard ok else { throw SpoolError(description: "cannot write the envelope of \(id)") }
            for suffix in [".eml", ".json"] {
                let from = spool.incoming.appendingPathComponent(id + suffix).path
                let to = spool.queue.appendingPathComponent(id + suffix).path
                guard rename(from, to) == 0 else { throw SpoolError(description: "cannot move \(id)\(suffix) into the queue") }
            }
            Spool.syncDirectory(spool.queue.path)
            Spool.syncDirectory(spool.incoming.path)
            return id
        }

        /// Drops a message that will not be accepted (too big, client gone).
        public func abort() {
            guard open else { return }
            close(fd)
            open = false
            unlink(spool.incoming.appendingPathComponent(id + ".eml").path)
        }
    }

    /// Committed messages not yet removed, oldest first.
    public func pending() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: queue.path)) ?? []
        return names.filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }
            .filter { names.contains($0 + ".eml") }.sorted()
    }

    public func messageURL(_ id: String) -> URL { queue.appendingPathComponent(id + ".eml") }

    public func envelope<T: Decodable>(_ id: String, as type: T.Type) throws -> T {
        let data = try Data(contentsOf: queue.appendingPathComponent(id + ".json"))
        return try JSONDecoder().decode(type, from: data)
    }

    /// After routing: the envelope goes first, so a crash in between leaves no half-entry listed.
    public func remove(_ id: String) throws {
        try FileManager.default.removeItem(at: queue.appendingPathComponent(id + ".json"))
        try? FileManager.default.removeItem(at: queue.appendingPathComponent(id + ".eml"))
        Spool.syncDirectory(queue.path)
    }

    static func syncDirectory(_ path: String) {
        let fd = Foundation.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }
}

