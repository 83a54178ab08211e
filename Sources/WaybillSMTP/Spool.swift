import CXattr
public import Foundation

/// The spool: where an accepted message lives, durably, from the SMTP server's `250` until the
/// worker has routed it (DESIGN.md, "Durability and failure").
///
/// One file per message, and one fsync before its 250. The file's name is made durable in advance:
/// the spool keeps a few files in `queue/` reserved (created in batches, or recycled from removed
/// messages, with one directory fsync per batch). A message is held in memory as it streams in and
/// written into a reserved file in large pieces (all at once, for a scan of ordinary size). To
/// commit, its envelope (JSON), size and id go into extended attributes of that same file
/// (`user.waybill.envelope`, `.size`, `.id`) and the file is fsynced: data, attributes and (since
/// the reservation) its directory entry are then on disk, and only then may the server say 250.
/// A file in `queue/` is a committed message when it carries an envelope, is as long as its
/// recorded size and is named after its recorded id; a reserved, recycled or half-written one is
/// not (after a crash it is deleted on start: its client never heard 250).
///
/// Why recycle: on ext4 without a journal (as here) every new inode is allocated past all those
/// freed in the last 30 seconds (`recently_deleted`), which made creating a file the largest CPU
/// cost of accepting a message under load; a removed message's file, truncated and renamed, is
/// reused instead.
///
/// Where extended attributes are missing (some file systems) or too small (ext4 holds one block of
/// them; hundreds of recipients make a large envelope), the envelope is `queue/<id>.json` instead,
/// written, fsynced and moved in after the message data is durable (so its presence is the commit
/// marker), and followed by a directory fsync. Directory fsyncs are grouped: one that finds another
/// running waits for the next, which covers every caller that came meanwhile (group commit).
///
/// On start, `incoming/` and uncommitted files are removed, and `pending()` lists everything
/// committed and not yet removed, oldest first. Ids are time-ordered and strictly increasing in a
/// process; their clock part is the time the file was reserved. Files are mode 0600.
///
/// Blocking file work: call `flush`, `commit`, `pending`, `envelope` and `remove` off the event
/// loops (the SMTP server runs them on its `NIOThreadPool`). `begin` and `Writer.append` do no I/O.
public struct Spool: Sendable {
    public let directory: URL
    var incoming: URL { directory.appendingPathComponent("incoming", isDirectory: true) }
    var queue: URL { directory.appendingPathComponent("queue", isDirectory: true) }
    /// Plain paths for the per-message work: building `URL`s costs more than the syscalls here.
    let queuePath: String
    let incomingPath: String

    func queued(_ name: String) -> String { queuePath + "/" + name }
    let queueSync: GroupSync
    let reservations: Reservations

    static let envelopeAttribute = "user.waybill.envelope"
    static let sizeAttribute = "user.waybill.size"
    static let idAttribute = "user.waybill.id"
    static let extendedAttributes = FileAttributeKey("NSFileExtendedAttributes")

    public struct SpoolError: Error, CustomStringConvertible {
        public let description: String
    }

    public init(directory: URL) throws {
        self.directory = directory
        queuePath = directory.appendingPathComponent("queue", isDirectory: true).path
        incomingPath = directory.appendingPathComponent("incoming", isDirectory: true).path
        queueSync = GroupSync(path: queuePath)
        reservations = Reservations()
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
        // Reserved files never used, and messages whose commit did not finish.
        let names = Set((try? FileManager.default.contentsOfDirectory(atPath: queue.path)) ?? [])
        for name in names where name.hasSuffix(".eml") && !isCommitted(String(name.dropLast(4)), names: names) {
            try? FileManager.default.removeItem(at: queue.appendingPathComponent(name))
        }
    }

    /// Time-ordered, unique, safe in file names and logs: 12 hex digits of milliseconds, 8 random.
    public static func newID(now: Date = Date()) -> String {
        let milliseconds = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        return hex(milliseconds & 0xFFFF_FFFF_FFFF, digits: 12) + hex(UInt64(UInt32.random(in: 0...UInt32.max)), digits: 8)
    }

    static func hex(_ value: some BinaryInteger, digits: Int) -> String {
        let text = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }

    /// Reserves up to `count` unused files ahead of the next burst of messages (blocking; the
    /// SMTP server calls it on its thread pool when it starts). Creating a file is the largest
    /// cost of accepting a message on this file system once other programs have deleted files
    /// recently (see "Why recycle"); a server that made them while idle accepts its first burst
    /// as fast as later ones, which reuse the files of routed messages. Empty files cost an
    /// inode each, and a start removes those left unused.
    public func stockReserve(_ count: Int = 1024) throws {
        try reservations.stock(self, target: count)
    }

    /// Files reserved and unused.
    public var reserved: Int { reservations.unused }

    /// Starts a message. Touches no file: it takes a reserved one when the message outgrows its
    /// buffer or is committed.
    public func begin() throws -> Writer {
        Writer(spool: self)
    }

    /// Reserved files: in `queue/`, uncommitted, their names already durable; and recycled ones,
    /// renamed from removed messages, whose new names become durable with the next batch.
    ///
    /// Refilled ahead of need: when fewer than `lowWater` are left, a background thread makes the
    /// next batch (recycled files first, new ones only for the rest) and fsyncs the folder, so a
    /// message's commit does not wait for 32 file creations and a directory fsync. Only when
    /// none is left does `take` make them itself (the first message after a start) or wait for
    /// the refill in progress.
    ///
    /// `@unchecked Sendable`: the stored properties are used only with `condition` locked. `take`
    /// may block (it may create files and fsync the folder): call it on a thread pool.
    final class Reservations: @unchecked Sendable {
        static let batch = 32
        static let lowWater = 16
        /// Recycled files kept at most; more removals unlink. Enough for a burst of a thousand
        /// messages to find every file already made: an empty file costs an inode and nothing
        /// else, and a start removes those unused.
        static let recycleLimit = 1024
        private let condition = NSCondition()
        private var ids: [String] = []
        private var recycled: [String] = []
        private var lastID = ""
        private var refilling = false

        func take(for spool: Spool) throws -> String {
            condition.lock()
            defer { condition.unlock() }
            while ids.isEmpty {
                if refilling {
                    condition.wait()
                    continue
                }
                refilling = true
                condition.unlock()
                let outcome = Result { try refill(spool) }
                condition.lock()
                refilling = false
                condition.broadcast()
                try outcome.get()
            }
            let id = ids.removeFirst()
            if ids.count < Self.lowWater, !refilling {
                refilling = true
                DispatchQueue.global().async {
                    // A failure here is not lost: the next `take` that finds none left makes
                    // them itself and reports it.
                    _ = try? self.refill(spool)
                    self.condition.lock()
                    self.refilling = false
                    self.condition.broadcast()
                    self.condition.unlock()
                }
            }
            return id
        }

        /// Reserves files ahead of a burst, up to `target` unused ones, in batches, while nobody
        /// else refills: a server calls it once it starts, on a thread pool (it blocks). It stops
        /// early when a message needs a refill meanwhile (that one makes its own batch).
        func stock(_ spool: Spool, target: Int) throws {
            while true {
                condition.lock()
                let missing = target - ids.count - recycled.count
                guard missing > 0, !refilling else {
                    condition.unlock()
                    return
                }
                refilling = true
                condition.unlock()
                let outcome = Result { try refill(spool, making: min(missing, Self.batch * 2)) }
                condition.lock()
                refilling = false
                condition.broadcast()
                condition.unlock()
                try outcome.get()
            }
        }

        /// The files kept unused, for tests and the log.
        var unused: Int {
            condition.lock()
            defer { condition.unlock() }
            return ids.count + recycled.count
        }

        /// Makes the next batch durable and adds it (`making` new files, else enough for a batch).
        /// Called with `condition` unlocked, by the one caller that set `refilling`.
        private func refill(_ spool: Spool, making count: Int? = nil) throws {
            condition.lock()
            let reused = recycled
            recycled = []
            let names = (0..<max(0, count ?? (Self.batch - ids.count - reused.count))).map { _ in nextID() }
            condition.unlock()
            var made = reused
            var failure: (any Error)?
            for id in names {
                let path = spool.queued(id + ".eml")
                let fd = Foundation.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
                guard fd >= 0 else {
                    failure = SpoolError(description: "cannot create \(path): \(Spool.lastError)")
                    break
                }
                close(fd)
                made.append(id)
            }
            if failure == nil {
                do { try spool.queueSync.sync() } catch { failure = error }
            }
            condition.lock()
            defer { condition.unlock() }
            if let failure {
                // Not durable: keep the files for the next try (a restart clears unused ones).
                recycled.append(contentsOf: made)
                throw failure
            }
            // Every name here was made after those still queued: the order stays the id order.
            ids.append(contentsOf: made.sorted())
        }

        /// Renames a removed message's (truncated) file to a fresh id and keeps it for reuse;
        /// false if enough are kept already or the rename failed. The name is made and the file
        /// listed in one step under the lock, so no refill can make a later name in between and
        /// the order of ids stays the order of use.
        func recycle(_ path: String, in spool: Spool) -> Bool {
            condition.lock()
            defer { condition.unlock() }
            guard recycled.count < Self.recycleLimit else { return false }
            let name = nextID()
            guard rename(path, spool.queued(name + ".eml")) == 0 else { return false }
            recycled.append(name)
            return true
        }

        /// `Spool.newID()`, but strictly increasing: FIFO order is id order.
        /// When the clock has not moved past the last id (many made in one millisecond, or the
        /// clock stepped back), the next is the last plus one: never a wait.
        private func nextID() -> String {
            var id = Spool.newID()
            if id <= lastID, let last = UInt128(lastID, radix: 16) {
                id = Spool.hex(last + 1, digits: 20)
            }
            lastID = id
            return id
        }
    }

    /// Streams one message into a reserved file.
    ///
    /// `@unchecked Sendable`: it has one owner at a time. The connection task owns it, and hands
    /// it to a thread-pool thread only for the duration of a `flush` or `commit` it awaits; no
    /// two calls ever overlap.
    public final class Writer: @unchecked Sendable {
        /// Buffered bytes beyond this are written out (`needsFlush`).
        public static let bufferLimit = 256 * 1024

        /// The message's id: set when it takes its file (its first `flush`, or `commit`).
        public private(set) var id = ""
        let spool: Spool
        private var fd: Int32 = -1
        private var buffer: [UInt8] = []
        private var finished = false
        public private(set) var size = 0

        init(spool: Spool) {
            self.spool = spool
        }

        deinit { abort() }

        var path: String { spool.queued(id + ".eml") }

        /// Appends and, past `bufferLimit`, writes out (blocking).
        public func write(_ bytes: [UInt8]) throws {
            append(bytes)
            if needsFlush { try flush() }
        }

        /// Appends to the in-memory buffer; never blocks.
        public func append(_ bytes: some Collection<UInt8>) {
            buffer.append(contentsOf: bytes)
            size += bytes.count
        }

        public var needsFlush: Bool { buffer.count >= Self.bufferLimit }

        /// Writes the buffer to the file, taking a reserved one first if needed. Blocking.
        public func flush() throws {
            if fd < 0 {
                id = try spool.reservations.take(for: spool)
                // A recycled file may hold a removed message (truncated on removal, but a crash
                // may have lost that): start empty.
                fd = Foundation.open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)
                guard fd >= 0 else { throw SpoolError(description: "cannot open \(path): \(Spool.lastError)") }
            }
            var offset = 0
            while offset < buffer.count {
                let written = buffer.withUnsafeBytes { Foundation.write(fd, $0.baseAddress! + offset, $0.count - offset) }
                if written < 0 {
                    if errno == EINTR { continue }
                    throw SpoolError(description: "cannot write message \(id): \(Spool.lastError)")
                }
                offset += written
            }
            buffer.removeAll(keepingCapacity: true)
        }

        /// Makes the message durable with its envelope (any JSON-encodable value) and returns its
        /// id. Blocking; returns only once the data, the envelope and the file's name are on disk.
        public func commit(envelope: some Encodable) throws -> String {
            let envelopeData: Data
            do { envelopeData = try (envelope as? SMTPEnvelope)?.json ?? JSONEncoder().encode(envelope) } catch {
                throw SpoolError(description: "cannot encode the envelope of \(id): \(error)")
            }
            try flush()
            // The id last: it is what says these attributes are this message's (a recycled file
            // keeps its last message's), so a failure before it leaves no commit half-recorded.
            let sidecar = !(setAttribute(Spool.envelopeAttribute, envelopeData)
                && setAttribute(Spool.sizeAttribute, Data("\(size)".utf8)) && setAttribute(Spool.idAttribute, Data(id.utf8)))
            guard fsync(fd) == 0 else { throw SpoolError(description: "cannot fsync message \(id): \(Spool.lastError)") }
            if sidecar { try commitSidecar(envelopeData) }
            close(fd)
            fd = -1
            finished = true
            return id
        }

        /// False where the file system has no extended attributes, or no room for this one.
        private func setAttribute(_ name: String, _ value: Data) -> Bool {
            value.withUnsafeBytes { fsetxattr(fd, name, $0.baseAddress, $0.count, 0) == 0 }
        }

        /// The envelope as its own file, moved into `queue/` once the message data is durable.
        private func commitSidecar(_ data: Data) throws {
            let temporary = spool.incomingPath + "/" + id + ".json"
            let envelopeFD = Foundation.open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard envelopeFD >= 0 else { throw SpoolError(description: "cannot create \(temporary): \(Spool.lastError)") }
            let ok = data.withUnsafeBytes { Foundation.write(envelopeFD, $0.baseAddress!, $0.count) == $0.count } && fsync(envelopeFD) == 0
            close(envelopeFD)
            guard ok, rename(temporary, spool.queued(id + ".json")) == 0 else {
                unlink(temporary)
                throw SpoolError(description: "cannot write the envelope of \(id): \(Spool.lastError)")
            }
            try spool.queueSync.sync()
        }

        /// Drops a message that will not be accepted (too big, client gone, commit failed).
        public func abort() {
            guard !finished else { return }
            finished = true
            buffer = []
            guard fd >= 0 else { return }
            close(fd)
            fd = -1
            unlink(path)
        }
    }

    /// Committed messages not yet removed, oldest first.
    public func pending() -> [String] {
        let names = Set((try? FileManager.default.contentsOfDirectory(atPath: queue.path)) ?? [])
        return names.filter { $0.hasSuffix(".eml") }.map { String($0.dropLast(4)) }
            .filter { isCommitted($0, names: names) }.sorted()
    }

    /// A sidecar envelope (written only after the data was durable), or an envelope attribute on a
    /// file named after its recorded id and as long as its recorded size (a recycled file keeps the
    /// attributes of its last message until reused: the id tells them apart).
    private func isCommitted(_ id: String, names: Set<String>) -> Bool {
        if names.contains(id + ".json") { return true }
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: queued(id + ".eml")),
            let extended = attributes[Self.extendedAttributes] as? [String: Data], extended[Self.envelopeAttribute] != nil,
            let recorded = extended[Self.sizeAttribute].flatMap({ Int(String(decoding: $0, as: UTF8.self)) }),
            extended[Self.idAttribute].map({ String(decoding: $0, as: UTF8.self) }) == id,
            let size = attributes[.size] as? NSNumber
        else { return false }
        return size.intValue == recorded
    }

    public func messageURL(_ id: String) -> URL { queue.appendingPathComponent(id + ".eml") }

    public func envelope<T: Decodable>(_ id: String, as type: T.Type) throws -> T {
        let data = try envelopeAttribute(id) ?? Data(contentsOf: queue.appendingPathComponent(id + ".json"))
        return try JSONDecoder().decode(type, from: data)
    }

    private func envelopeAttribute(_ id: String) -> Data? {
        let attributes = try? FileManager.default.attributesOfItem(atPath: queued(id + ".eml"))
        return (attributes?[Self.extendedAttributes] as? [String: Data])?[Self.envelopeAttribute]
    }

    /// After routing: the envelope file (if any) goes first, then the message's name; a crash in
    /// between leaves no half-entry listed. The file itself is truncated and kept for a later
    /// message under a new name (see "Why recycle" above), or unlinked when enough are kept.
    ///
    /// Not fsynced (Postfix does not sync its queue-file removals either): a crash soon after may
    /// list the message again. That costs a second look, never a loss, and consumers must treat an
    /// id they have finished as done; WaybillIngest's ledger does, by message id. An fsync here
    /// would be a disk flush per message competing with the next message's commit, which its
    /// client is waiting for.
    public func remove(_ id: String) throws {
        let path = queued(id + ".eml")
        guard FileManager.default.fileExists(atPath: path) else {
            throw SpoolError(description: "no message \(id) in the spool")
        }
        if unlink(queued(id + ".json")) != 0 && errno != ENOENT {
            throw SpoolError(description: "cannot remove the envelope of \(id): \(Spool.lastError)")
        }
        if truncate(path, 0) == 0, reservations.recycle(path, in: self) { return }
        guard unlink(path) == 0 || errno == ENOENT else {
            throw SpoolError(description: "cannot remove message \(id): \(Spool.lastError)")
        }
    }

    static var lastError: String { String(cString: strerror(errno)) }

    /// Group commit of one directory's fsync. Each caller has made its change (a rename) before
    /// calling `sync()`; it returns once an fsync that started after that call has finished.
    /// One fsync runs at a time; callers arriving meanwhile wait and are all covered by the next.
    ///
    /// `@unchecked Sendable`: every stored property is read and written only with `condition`
    /// locked. `sync()` blocks its thread: call it on a thread pool, never on an event loop or
    /// Swift's cooperative pool.
    final class GroupSync: @unchecked Sendable {
        let path: String
        private let condition = NSCondition()
        private var requested: UInt64 = 0
        private var completed: UInt64 = 0
        private var running = false
        private var failure: (upTo: UInt64, message: String)?

        init(path: String) {
            self.path = path
        }

        func sync() throws {
            condition.lock()
            defer { condition.unlock() }
            requested += 1
            let ticket = requested
            while completed < ticket {
                if let failure, ticket <= failure.upTo {
                    throw SpoolError(description: "cannot fsync \(path): \(failure.message)")
                }
                if running {
                    condition.wait()
                    continue
                }
                running = true
                let covers = requested
                condition.unlock()
                let error = Self.fsyncDirectory(path)
                condition.lock()
                running = false
                if let error {
                    failure = (covers, error)
                } else {
                    completed = max(completed, covers)
                }
                condition.broadcast()
            }
        }

        /// nil on success, else the reason.
        static func fsyncDirectory(_ path: String) -> String? {
            let fd = Foundation.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard fd >= 0 else { return Spool.lastError }
            defer { close(fd) }
            return fsync(fd) == 0 ? nil : Spool.lastError
        }
    }
}

extension SMTPEnvelope {
    /// The envelope as JSON, the same document `JSONEncoder` makes of it (absent optionals left
    /// out), written directly: it is encoded once per accepted message, and through
    /// `JSONEncoder` that was a twentieth of the server's CPU per message.
    public var json: Data {
        var out: [UInt8] = Array(#"{"helo":"#.utf8)
        Self.appendString(helo, to: &out)
        out.append(contentsOf: #","sender":"#.utf8)
        Self.appendString(sender, to: &out)
        out.append(contentsOf: #","recipients":["#.utf8)
        for (index, recipient) in recipients.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            Self.appendString(recipient, to: &out)
        }
        out.append(UInt8(ascii: "]"))
        if let declaredSize {
            out.append(contentsOf: #","declaredSize":"#.utf8)
            out.append(contentsOf: String(declaredSize).utf8)
        }
        if let authenticatedUser {
            out.append(contentsOf: #","authenticatedUser":"#.utf8)
            Self.appendString(authenticatedUser, to: &out)
        }
        if let clientAddress {
            out.append(contentsOf: #","clientAddress":"#.utf8)
            Self.appendString(clientAddress, to: &out)
        }
        out.append(UInt8(ascii: "}"))
        return Data(out)
    }

    /// A JSON string: quote, backslash and control characters escaped, the rest as UTF-8.
    private static func appendString(_ string: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                out.append(UInt8(ascii: "\\"))
                out.append(byte)
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default:
                out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
