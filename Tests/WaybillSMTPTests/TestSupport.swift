import Foundation
import Logging
import Synchronization
import WaybillSMTP

/// A clock the test moves: sleeps resume only when `advance` passes their deadline.
final class TestClock: SMTPClock {
    private struct Sleeper {
        let deadline: Duration
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: Duration = .zero
        var sleepers: [UInt64: Sleeper] = [:]
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())

    var now: Duration { state.withLock { $0.now } }

    func sleep(until deadline: Duration) async throws {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                // Registered under the lock, after checking cancellation: a cancel that came first
                // has set the flag, one that comes later finds the sleeper.
                let verdict: Result<Void, any Error>? = state.withLock { state in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if deadline <= state.now { return .success(()) }
                    state.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    return nil
                }
                if let verdict { continuation.resume(with: verdict) }
            }
        } onCancel: {
            let sleeper = state.withLock { $0.sleepers.removeValue(forKey: id) }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    func advance(by duration: Duration) {
        let due = state.withLock { state in
            state.now += duration
            let now = state.now
            let due = state.sleepers.filter { $0.value.deadline <= now }
            for id in due.keys { state.sleepers[id] = nil }
            return due.values.map(\.continuation)
        }
        for continuation in due { continuation.resume() }
    }

    /// Waits (in real time, up to 10 s) until something sleeps until exactly `deadline`.
    func waitForSleeper(until deadline: Duration) async {
        for _ in 0..<2000 {
            if state.withLock({ $0.sleepers.values.contains { $0.deadline == deadline } }) { return }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }
}

/// Collects log lines for the tests that check what the server says to its operator.
final class LogCapture: Sendable {
    let lines = Mutex<[String]>([])

    var logger: Logger {
        Logger(label: "waybill.smtp.test") { _ in Handler(capture: self) }
    }

    var text: String { lines.withLock { $0.joined(separator: "\n") } }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let all = self.metadata.merging(event.metadata ?? [:]) { $1 }
            let fields = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            capture.lines.withLock { $0.append("\(event.level) \(event.message) \(fields)") }
        }
    }
}

/// A blocking TCP client on a Dispatch thread, for tests that interleave the wire with the clock.
final class LineClient: @unchecked Sendable {
    // @unchecked: used by one test at a time, each call awaited before the next.
    private let fd: Int32
    private var buffer: [UInt8] = []

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            close(fd)
            throw POSIXError(.ECONNREFUSED)
        }
    }

    deinit { close(fd) }

    func send(_ text: String) async {
        let bytes = Array(text.utf8)
        await onOwnThread { _ = bytes.withUnsafeBytes { Foundation.send(self.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }
    }

    /// One reply (its lines, without CRLF); empty at end of stream or after 10 s of silence.
    func reply() async -> [String] {
        await onOwnThread { self.readReply() }
    }

    /// Everything until the server closes (or 10 s pass).
    func rest() async -> String {
        await onOwnThread {
            var lines: [String] = []
            while let line = self.readLine() { lines.append(line) }
            return lines.joined(separator: "\n")
        }
    }

    private func readReply() -> [String] {
        var lines: [String] = []
        while let line = readLine() {
            lines.append(line)
            if line.count < 4 || Array(line.utf8)[3] != UInt8(ascii: "-") { break }
        }
        return lines
    }

    private func readLine() -> String? {
        while true {
            if let end = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<end], as: UTF8.self).trimmingCharacters(in: .newlines)
                buffer.removeSubrange(...end)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return nil }
            buffer += chunk[..<count]
        }
    }
}

/// Runs blocking work on a thread of its own. Not on the concurrency pool, whose few threads the
/// server's connection tasks need, and not on Dispatch's global queues either: on Linux they share
/// a small pool with it, and a handful of clients blocked in `recv` would starve the server.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: body()) }.start()
    }
}

/// Runs a Python client on a thread of its own (see `onOwnThread`).
func python(_ script: String, _ arguments: [String]) async throws -> (Int32, String) {
    try await withCheckedThrowingContinuation { continuation in
        Thread {
            continuation.resume(
                with: Result {
                    let process = Process()
                    process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
                    process.arguments = ["-c", script] + arguments
                    let out = Pipe()
                    process.standardOutput = out
                    process.standardError = out
                    try process.run()
                    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                    process.waitUntilExit()
                    return (process.terminationStatus, text)
                })
        }.start()
    }
}

/// A self-signed certificate for `localhost`, made with the openssl CLI for one test run.
struct TestCertificate: Sendable {
    let directory: URL
    var certificate: String { directory.appendingPathComponent("cert.pem").path }
    var key: String { directory.appendingPathComponent("key.pem").path }

    static func make() throws -> TestCertificate {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory() + "waybill-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let made = TestCertificate(directory: directory)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
            "-days", "1", "-keyout", made.key, "-out", made.certificate,
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw POSIXError(.EIO) }
        return made
    }
}
