import Dispatch
import Foundation
import Synchronization
import WaybillCore
import WaybillIngest

/// `ingest --watch`: a hot folder. Files are ingested once complete: closed by their writer
/// (inotify's `IN_CLOSE_WRITE`, or moved in whole, `IN_MOVED_TO`), or, where inotify sees
/// nothing (a network share written by another machine), with size and modification time
/// unchanged for `settle` seconds. The folders are walked every half second, at once when
/// inotify reports something; SIGINT or SIGTERM ends the watch after the file in hand.
struct HotFolder {
    let paths: [String]
    let recursive: Bool
    let settle: Double

    struct Seen: Hashable {
        var size: Int64
        var modified: Double
    }

    func run(_ ingest: @escaping @Sendable (URL) async -> Void) async throws {
        let stop = Atomic<Bool>(false)
        var sources: [any DispatchSourceSignal] = []
        for signal in [SIGINT, SIGTERM] {
            Foundation.signal(signal, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signal)
            source.setEventHandler { stop.store(true, ordering: .relaxed) }
            source.resume()
            sources.append(source)
        }
        defer { sources.forEach { $0.cancel() } }
        let paths = self.paths.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        var pending: [String: (seen: Seen, since: ContinuousClock.Instant)] = [:]
        var done: [String: Seen] = [:]
        let notify = Inotify()
        // Watched before saying so: a file closed after this line is seen at once.
        for path in paths { notify?.watch(path) }
        FileHandle.standardError.write(Data("Watching \(self.paths.joined(separator: ", ")); Ctrl-C stops.\n".utf8))
        while !stop.load(ordering: .relaxed) {
            var present = Set<String>()
            for path in paths { notify?.watch(path) }
            let closed = notify?.closedFiles() ?? []
            try await FolderIngest.walk(paths, recursive: recursive) { url in
                var info = stat()
                guard stat(url.path, &info) == 0 else { return }
                let seen = Seen(size: Int64(info.st_size), modified: Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9)
                present.insert(url.path)
                if recursive { notify?.watch(url.deletingLastPathComponent().path) }
                if done[url.path] == seen { return }
                if closed.contains(url.path), seen.size > 0, Self.unchanged(url.path, seen, notify) {
                    notify?.take(url.path)
                    pending[url.path] = nil
                    done[url.path] = seen
                    await ingest(url)
                } else if let previous = pending[url.path], previous.seen == seen {
                    guard ContinuousClock.now - previous.since >= .milliseconds(Int(settle * 1000)), seen.size > 0 else { return }
                    pending[url.path] = nil
                    done[url.path] = seen
                    await ingest(url)
                } else {
                    pending[url.path] = (seen, ContinuousClock.now)
                }
            }
            // Forget what left the folder (moved away, deleted): a new file by that name is new.
            done = done.filter { present.contains($0.key) }
            pending = pending.filter { present.contains($0.key) }
            notify?.keep(present)
            if let notify {
                await Pipeline.offPoolWait { notify.wait(milliseconds: 500) }
            } else {
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }
}

extension HotFolder {
    /// A closed file is taken only if nobody wrote to it since (events read again now) and its
    /// size and time are still those just seen.
    static func unchanged(_ path: String, _ seen: Seen, _ notify: Inotify?) -> Bool {
        guard let notify else { return true }
        guard notify.closedFiles().contains(path), !notify.modified.contains(path) else { return false }
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        return Seen(size: Int64(info.st_size), modified: Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9) == seen
    }
}

/// Linux inotify on the watched folders: which files were closed after writing or moved in.
final class Inotify: @unchecked Sendable {
    // Used from one task at a time (the watch loop); @unchecked for the hop to a wait thread.
    private let fd: Int32
    private var watched: [Int32: String] = [:]
    private var watchedPaths: Set<String> = []
    /// Written since their last close: not to be taken until closed again.
    private(set) var modified: Set<String> = []
    /// Closed after writing (or moved in) and not written since; kept until `take`n.
    private(set) var closed: Set<String> = []

    /// The watch loop has taken the file: a later close of it is news again.
    func take(_ path: String) { closed.remove(path) }

    /// Forgets files that are gone: a new file by the same name starts afresh.
    func keep(_ present: Set<String>) {
        closed.formIntersection(present)
        modified.formIntersection(present)
    }

    init?() {
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { return nil }
    }

    deinit { close(fd) }

    func watch(_ path: String) {
        guard !watchedPaths.contains(path) else { return }
        let descriptor = inotify_add_watch(fd, path, UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MODIFY))
        guard descriptor >= 0 else { return }
        watched[descriptor] = path
        watchedPaths.insert(path)
    }

    /// Blocks until an event arrives or the time is up.
    func wait(milliseconds: Int32) {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        _ = poll(&entry, 1, milliseconds)
    }

    /// The paths of files closed after writing, or moved in, since the last call, and not written
    /// again after that: a file created empty and then opened again to be written (as some
    /// scanners and `cp` over a share do) is closed only when its last writer closes it.
    func closedFiles() -> Set<String> {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            var offset = 0
            while offset + MemoryLayout<inotify_event>.size <= count {
                let (descriptor, mask, length, name) = buffer.withUnsafeBytes { raw -> (Int32, UInt32, Int, String) in
                    let event = raw.loadUnaligned(fromByteOffset: offset, as: inotify_event.self)
                    let start = offset + MemoryLayout<inotify_event>.size
                    let bytes = raw[start..<min(count, start + Int(event.len))].prefix { $0 != 0 }
                    return (event.wd, event.mask, Int(event.len), String(decoding: bytes, as: UTF8.self))
                }
                if let folder = watched[descriptor], !name.isEmpty {
                    if mask & UInt32(IN_MODIFY) != 0 {
                        closed.remove(folder + "/" + name)
                        modified.insert(folder + "/" + name)
                    } else {
                        closed.insert(folder + "/" + name)
                        modified.remove(folder + "/" + name)
                    }
                }
                offset += MemoryLayout<inotify_event>.size + length
            }
        }
        return closed
    }
}
