import ArgumentParser
import Dispatch
import Foundation
import Logging
import Synchronization
import WaybillCore
import WaybillDelivery
import WaybillIngest
import WaybillStore

/// `waybill ingest`: folders of scans (and `.eml` files) through the same pipeline as `serve`.
struct IngestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Route scanned files (PDF, TIFF, JPEG, PNG) and .eml messages from folders.",
        discussion: """
            Each file goes through the same pipeline as mail to 'waybill serve': routing sheets found and \
            verified, documents delivered without them, refusals quarantined with a named reason. Files are \
            recognized by their content: running again skips what was ingested (unless --force) and resumes \
            an interrupted run. The exit status is 1 if any file was quarantined or failed.
            """)

    @OptionGroup var settings: SettingsOptions
    @Argument(help: "Files and folders to ingest.") var paths: [String]
    @Flag(help: "Walk folders recursively.") var recursive = false
    @Flag(help: "Say what would happen to each file; change nothing.") var dryRun = false
    @Option(help: "Files routed at once (default: the number of cores).") var jobs: Int?
    @Flag(help: "One JSON object per file on standard output.") var json = false
    @Option(help: "Write a report: FILE.csv or FILE.json.") var report: String?
    @Option(help: "Move each ingested or quarantined file into this folder.") var moveTo: String?
    @Flag(help: "Ingest again files ingested before.") var force = false
    @Option(help: "Route every file to this directive instead of searching for routing sheets.") var directive: String?
    @Flag(help: "Keep watching the folders (a hot folder) and ingest files as they are completed.") var watch = false
    @Option(help: "With --watch: seconds a file's size must stay unchanged before it is ingested.") var settle: Double = 2

    func validate() throws {
        if let jobs, !(1...64).contains(jobs) { throw ValidationError("--jobs must be from 1 to 64") }
        if watch && dryRun { throw ValidationError("--watch and --dry-run do not go together") }
        if let report, !report.hasSuffix(".csv") && !report.hasSuffix(".json") {
            throw ValidationError("--report must name a .csv or .json file")
        }
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .warning
            return handler
        }
        let context = try CommandContext(settings)
        let override: DirectiveID?
        if let directive { override = try await context.directive(directive).id } else { override = nil }
        let pipeline = try context.pipeline(
            rules: try context.settings.routingRules(),
            batchRules: BatchRules(firstPageMustBeSheet: try context.settings.bool(.firstPageMustBeSheet)))
        let ingest = FolderIngest(pipeline: pipeline, directive: override, force: force, actor: QuarantineCommand.actor)
        if let moveTo { try FileManager.default.createDirectory(atPath: moveTo, withIntermediateDirectories: true) }
        let output = try IngestOutput(json: json, report: report, dryRun: dryRun)
        let workers = jobs ?? ProcessInfo.processInfo.activeProcessorCount
        let moveTo = self.moveTo
        let dryRun = self.dryRun

        if watch {
            try await HotFolder(paths: paths, recursive: recursive, settle: settle).run { url in
                let result = await ingest.ingest(url, dryRun: false)
                output.record(result)
                Self.move(url, result, to: moveTo)
            }
            output.finish()
            return
        }
        var total = 0
        try await FolderIngest.walk(paths, recursive: recursive) { _ in total += 1 }
        output.start(total: total)
        try await withThrowingTaskGroup(of: Void.self) { group in
            var running = 0
            try await FolderIngest.walk(paths, recursive: recursive) { url in
                if running >= workers {
                    try await group.next()
                    running -= 1
                }
                running += 1
                group.addTask {
                    let result = await ingest.ingest(url, dryRun: dryRun)
                    output.record(result)
                    if !dryRun { Self.move(url, result, to: moveTo) }
                }
            }
            try await group.waitForAll()
        }
        output.finish()
        if output.anyFailed { throw ExitCode(1) }
    }

    /// `--move-to`: files that are done with (delivered, quarantined, ingested before) leave the folder.
    static func move(_ url: URL, _ result: FolderIngest.Result, to moveTo: String?) {
        guard let moveTo, ["delivered", "quarantined", "already-ingested"].contains(result.outcome) else { return }
        let folder = URL(fileURLWithPath: moveTo, isDirectory: true)
        let base = url.deletingPathExtension().lastPathComponent
        let ext = url.pathExtension
        for n in 1...1000 {
            let name = n == 1 ? url.lastPathComponent : "\(base)-\(n)" + (ext.isEmpty ? "" : ".\(ext)")
            let target = folder.appendingPathComponent(name)
            // link + unlink: never over an existing file.
            if link(url.path, target.path) == 0 {
                unlink(url.path)
                return
            }
            if errno != EEXIST {
                // Another file system: copy, then remove.
                if (try? FileManager.default.copyItem(at: url, to: target)) != nil {
                    try? FileManager.default.removeItem(at: url)
                    return
                }
            }
        }
    }
}

/// Progress, per-file lines, the report and the summary. Shared by the ingest tasks.
final class IngestOutput: Sendable {
    struct State {
        var total = 0
        var files = 0
        var pages = 0
        var outcomes: [String: Int] = [:]
        var reasons: [String: Int] = [:]
        var reportRows = 0
        var lastDraw = ContinuousClock.now - .seconds(1)
    }

    let json: Bool
    let dryRun: Bool
    let isTerminal = isatty(STDERR_FILENO) == 1
    let started = ContinuousClock.now
    let state = Mutex(State())
    let reportHandle: FileHandle?
    let reportIsCSV: Bool

    init(json: Bool, report: String?, dryRun: Bool) throws {
        self.json = json
        self.dryRun = dryRun
        if let report {
            guard FileManager.default.createFile(atPath: report, contents: nil),
                let handle = FileHandle(forWritingAtPath: report)
            else { throw WaybillError(.ioError, "cannot write the report \(report)") }
            reportHandle = handle
            reportIsCSV = report.hasSuffix(".csv")
            handle.write(Data((reportIsCSV ? "file,id,outcome,reason,pages,sheets,jobs,delivered,ms,detail\n" : "[\n").utf8))
        } else {
            reportHandle = nil
            reportIsCSV = false
        }
    }

    var anyFailed: Bool { state.withLock { $0.outcomes.filter { ["quarantined", "would-quarantine", "failed"].contains($0.key) }.values.reduce(0, +) > 0 } }

    func start(total: Int) { state.withLock { $0.total = total } }

    func record(_ result: FolderIngest.Result) {
        state.withLock { state in
            state.files += 1
            state.pages += result.pages
            state.outcomes[result.outcome, default: 0] += 1
            if let reason = result.reason, result.failed { state.reasons[reason, default: 0] += 1 }
            if json {
                Self.printJSON(result)
            } else if isTerminal {
                if result.failed { FileHandle.standardError.write(Data("\r\u{1B}[K\(Self.line(result))\n".utf8)) }
                drawProgress(&state, force: false)
            } else {
                print(Self.line(result))
            }
            if let reportHandle {
                if reportIsCSV {
                    let fields = [
                        result.file, result.id ?? "", result.outcome, result.reason ?? "", String(result.pages), String(result.sheets),
                        result.jobs.map(\.directive).joined(separator: " "), result.delivered.joined(separator: " "), String(result.ms),
                        result.detail ?? "",
                    ]
                    reportHandle.write(Data((fields.map(Self.csv).joined(separator: ",") + "\n").utf8))
                } else {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                    let data = (try? encoder.encode(result)) ?? Data("{}".utf8)
                    reportHandle.write(Data(((state.reportRows > 0 ? ",\n" : "") + String(decoding: data, as: UTF8.self)).utf8))
                }
                state.reportRows += 1
            }
        }
    }

    static func line(_ result: FolderIngest.Result) -> String {
        switch result.outcome {
        case "delivered", "would-deliver":
            let jobs = result.jobs.map { job in
                "\(DirectiveID(job.directive)?.display ?? job.directive)" + (job.destinations.isEmpty ? "" : " → " + job.destinations.joined(separator: ", "))
            }
            return "\(result.outcome)  \(result.file)  (\(result.pages) pages, \(result.sheets > 0 ? "\(result.sheets) sheets, " : "")\(jobs.joined(separator: "; ")))"
        case "already-ingested", "skipped":
            return "\(result.outcome)  \(result.file)  \(result.detail ?? "")"
        default:
            return "\(result.outcome)  \(result.file)  \(result.reason ?? ""): \(result.detail ?? "")"
        }
    }

    static func printJSON(_ result: FolderIngest.Result) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        if let data = try? encoder.encode(result) { print(String(decoding: data, as: UTF8.self)) }
    }

    static func csv(_ field: String) -> String {
        field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : field
    }

    /// `[#####-----] 40/100 files  1234 pages  12.3 pages/s  1:23 left  2 failed`, redrawn at most 10 times a second.
    func drawProgress(_ state: inout State, force: Bool) {
        let now = ContinuousClock.now
        guard force || now - state.lastDraw > .milliseconds(100) else { return }
        state.lastDraw = now
        let elapsed = max(0.001, Double((now - started).components.seconds) + Double((now - started).components.attoseconds) / 1e18)
        let rate = Double(state.pages) / elapsed
        var bar = ""
        var left = ""
        if state.total > 0 {
            let filled = 24 * state.files / state.total
            bar = "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: 24 - filled) + "] "
            let perFile = elapsed / Double(max(1, state.files))
            let remaining = Int(perFile * Double(state.total - state.files))
            left = String(format: "  %d:%02d left", remaining / 60, remaining % 60)
        }
        let failed = state.outcomes.filter { ["quarantined", "would-quarantine", "failed"].contains($0.key) }.values.reduce(0, +)
        let text = "\r\u{1B}[K\(bar)\(state.files)\(state.total > 0 ? "/\(state.total)" : "") files  \(state.pages) pages  "
            + String(format: "%.1f pages/s", rate) + left + (failed > 0 ? "  \(failed) failed" : "")
        FileHandle.standardError.write(Data(text.utf8))
    }

    func finish() {
        state.withLock { state in
            if isTerminal && !json {
                drawProgress(&state, force: true)
                FileHandle.standardError.write(Data("\n".utf8))
            }
            if let reportHandle {
                if !reportIsCSV { reportHandle.write(Data("\n]\n".utf8)) }
                try? reportHandle.close()
            }
            let elapsed = ContinuousClock.now - started
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            func row(_ name: String, _ value: String) -> String { name.padding(toLength: 22, withPad: " ", startingAt: 0) + value }
            var lines = [
                dryRun ? "Dry run: nothing was delivered, quarantined or counted." : nil,
                row("files", String(state.files)),
                row("pages", String(state.pages)),
            ].compactMap { $0 }
            for (outcome, count) in state.outcomes.sorted(by: { $0.key < $1.key }) {
                lines.append(row(outcome, String(count)))
            }
            for (reason, count) in state.reasons.sorted(by: { $0.key < $1.key }) {
                lines.append(row("  " + reason, String(count)))
            }
            lines.append(row("time", String(format: "%.1f s (%.1f pages/s)", seconds, Double(state.pages) / max(0.001, seconds))))
            let summary = lines.joined(separator: "\n") + "\n"
            if json { FileHandle.standardError.write(Data(summary.utf8)) } else { print(summary, terminator: "") }
        }
    }
}
