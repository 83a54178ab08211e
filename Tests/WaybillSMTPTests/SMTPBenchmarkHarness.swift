import Dispatch
import Foundation
import Testing
import WaybillSMTP

/// Not a test: a bare SMTP server (no ingest worker behind it) for Benchmarks/bench-smtp.sh's
/// `BENCH_LISTENER` column, to tell the listener's own cost from the routing behind `waybill serve`.
/// Runs only with WAYBILL_SMTP_HARNESS=DIR:PORT set, until DIR/stop exists.
@Suite struct SMTPBenchmarkHarness {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["WAYBILL_SMTP_HARNESS"] != nil))
    func serve() async throws {
        let setting = try #require(ProcessInfo.processInfo.environment["WAYBILL_SMTP_HARNESS"])
        let parts = setting.split(separator: ":")
        let directory = URL(fileURLWithPath: String(parts[0]))
        let spool = try Spool(directory: directory.appendingPathComponent("spool"))
        // Like Postfix's discard transport: each accepted message is removed again, off the loops.
        let remover = DispatchQueue(label: "waybill.harness.remove")
        let server = SMTPServer(
            host: "127.0.0.1", port: Int(parts[1]) ?? 0, configuration: SMTPConfiguration(greetingDelay: .zero), spool: spool,
            recipientPolicy: { $0 == "scan@localhost" ? .accept : .refuse("not scan@localhost") },
            onSpooled: { id in remover.async { try? spool.remove(id) } })
        let task = Task { try await server.run { print("listening on \($0)") } }
        while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("stop").path) {
            try await Task.sleep(for: .milliseconds(100))
        }
        task.cancel()
    }
}
