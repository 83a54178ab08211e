import Dispatch
import Foundation
import Synchronization
import WaybillCore
import WaybillIngest

/// `ingest --watch`: a hot folder. Files are ingested once complete: their size and modification
/// time unchanged for `settle` seconds (a scanner writing to a share closes the file when done,
/// and a file still growing is left for the next look). The folders are looked at every half
/// second; SIGINT or SIGTERM ends the watch after the file in hand.
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
        FileHandle.standardError.write(Data("Watching \(paths.joined(separator: ", ")); Ctrl-C stops.\n".utf8))
        var pending: [String: (seen: Seen, since: ContinuousClock.Instant)] = [:]
        var done: [String: Seen] = [:]
        while !stop.load(ordering: .relaxed) {
            var present = Set<String>()
            try await FolderIngest.walk(paths, recursive: recursive) { url in
                var info = stat()
                guard stat(url.path, &info) == 0 else { return }
                let seen = Seen(size: Int64(info.st_size), modified: Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9)
                present.insert(url.path)
                if done[url.path] == seen { return }
                if let previous = pending[url.path], previous.seen == seen {
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
            try? await Task.sleep(for: .milliseconds(500))
        }
    }
}
