import Crypto
public import Foundation
public import WaybillCore
import WaybillScan
import WaybillStore

/// `waybill ingest`: files from folders through the very pipeline `serve` uses. A scan file is a
/// message whose one attachment it is; an `.eml` file is a message as SMTP would have spooled
/// it. Each file's id comes from its content (`F` and 24 hex digits of its SHA-256), so running
/// again skips what is done and resumes what an interruption left open.
public struct FolderIngest: Sendable {
    public let pipeline: Pipeline
    /// Route every file to this directive instead of searching for sheets.
    public let directive: DirectiveID?
    /// Ingest again what was ingested before (a new message id per run).
    public let force: Bool
    public let actor: String

    public init(pipeline: Pipeline, directive: DirectiveID? = nil, force: Bool = false, actor: String = "ingest") {
        self.pipeline = pipeline
        self.directive = directive
        self.force = force
        self.actor = actor
    }

    /// One file's result, for progress lines, `--json` and the report.
    public struct Result: Sendable, Encodable {
        public var file: String
        public var id: String?
        /// `delivered`, `quarantined`, `already-ingested`, `skipped`, `would-deliver`, `would-quarantine`, `failed`.
        public var outcome: String
        public var reason: String?
        public var detail: String?
        public var pages: Int
        public var sheets: Int
        public var jobs: [JobSummary]
        public var delivered: [String]
        public var ms: Int

        public struct JobSummary: Sendable, Encodable {
            public var directive: String
            public var title: String
            public var pages: Int
            public var destinations: [String]
        }

        public var failed: Bool { ["quarantined", "would-quarantine", "failed"].contains(outcome) }
    }

    /// Files Waybill can ingest: scans by their bytes, and mail by its `.eml` name.
    public static func isIngestible(_ url: URL) -> Bool {
        url.pathExtension.lowercased() == "eml" || ScanFormat(path: url.path) != nil
    }

    /// Every regular file under `paths` (folders walked, recursively if asked), lazily and in a
    /// stable order within each folder: memory stays bounded whatever the tree holds.
    public static func walk(_ paths: [String], recursive: Bool, visit: (URL) async throws -> Void) async throws {
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw WaybillError(.ioError, "\(path) does not exist")
            }
            guard isDirectory.boolValue else {
                try await visit(URL(fileURLWithPath: path))
                continue
            }
            try await walkFolder(URL(fileURLWithPath: path, isDirectory: true), recursive: recursive, visit: visit)
        }
    }

    private static func walkFolder(_ folder: URL, recursive: Bool, visit: (URL) async throws -> Void) async throws {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() } catch {
            throw WaybillError(.ioError, "cannot list \(folder.path): \(error.localizedDescription)")
        }
        for name in names where !name.hasPrefix(".") {
            let url = folder.appendingPathComponent(name)
            var info = stat()
            guard lstat(url.path, &info) == 0 else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFREG: try await visit(url)
            case S_IFDIR where recursive: try await walkFolder(url, recursive: true, visit: visit)
            default: continue  // links, devices, sockets: never followed
            }
        }
    }

    public static func contentID(_ url: URL) throws -> String {
        "F" + String(try Pipeline.sha256(url).prefix(24)).uppercased()
    }

    /// Ingests one file (or, with `dryRun`, says what would happen and changes nothing).
    public func ingest(_ url: URL, dryRun: Bool) async -> Result {
        let started = ContinuousClock.now
        var result = Result(file: url.path, id: nil, outcome: "failed", pages: 0, sheets: 0, jobs: [], delivered: [], ms: 0)
        do {
            guard Self.isIngestible(url) else {
                result.outcome = "skipped"
                result.reason = "unsupported-format"
                result.detail = "not a PDF, TIFF, JPEG or PNG scan, nor an .eml message"
                return finish(result, started)
            }
            let hashID = try await Pipeline.offPool { try Self.contentID(url) }
            var id = hashID
            if let record = try await pipeline.store.message(hashID), record.state != .received, !dryRun {
                guard force else {
                    result.id = hashID
                    result.outcome = "already-ingested"
                    result.detail = "ingested before (\(record.outcome ?? record.state.rawValue)); --force ingests it again"
                    return finish(result, started)
                }
                id = hashID + "-" + String(UInt64(Date().timeIntervalSince1970 * 1000), radix: 16).uppercased()
            }
            result.id = id
            let modified = ((try? FileManager.default.attributesOfItem(atPath: url.path))?[.modificationDate] as? Date) ?? Date()
            let message = IngestMessage(
                id: id, file: url, sender: actor, recipients: [], receivedAt: modified, directiveOverride: directive,
                isMail: url.pathExtension.lowercased() == "eml")
            if dryRun {
                return finish(try await plan(message, into: result), started)
            }
            switch try await pipeline.process(message, actor: actor) {
            case .delivered(_, let files, let pages, _):
                result.outcome = "delivered"
                result.delivered = files
                result.pages = pages
                let jobs = try await pipeline.store.jobs(messageID: id)
                if directive == nil { result.sheets = jobs.count }
                for job in jobs {
                    let directive = try await pipeline.store.directive(job.directive)
                    result.jobs.append(
                        Result.JobSummary(
                            directive: job.directive.rawValue, title: directive?.title ?? "", pages: 0,
                            destinations: directive?.destinations.map(\.uri) ?? []))
                }
            case .quarantined(let reason, let detail, let pages):
                result.outcome = "quarantined"
                result.reason = reason
                result.detail = detail
                result.pages = pages
            }
        } catch let error as WaybillError {
            result.outcome = "failed"
            result.reason = error.code.name
            result.detail = error.message
        } catch {
            result.outcome = "failed"
            result.reason = "error"
            result.detail = "\(error)"
        }
        return finish(result, started)
    }

    private func plan(_ message: IngestMessage, into result: Result) async throws -> Result {
        var result = result
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("waybill-dry-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        do {
            let plan = try await pipeline.plan(message, work: work)
            result.outcome = "would-deliver"
            result.pages = plan.pages
            result.sheets = plan.sheets
            result.jobs = plan.jobs.map { job in
                let directive = plan.directives[job.directive]
                return Result.JobSummary(
                    directive: job.directive.rawValue, title: directive?.title ?? "", pages: job.pages.count,
                    destinations: directive?.destinations.map(\.uri) ?? [])
            }
        } catch let refusal as BatchRefusal {
            result.outcome = "would-quarantine"
            result.reason = refusal.reason
            result.detail = refusal.detail
            result.pages = refusal.plan?.pages ?? 0
            result.sheets = refusal.plan?.sheets ?? 0
        }
        return result
    }

    private func finish(_ result: Result, _ started: ContinuousClock.Instant) -> Result {
        var result = result
        result.ms = Pipeline.milliseconds(ContinuousClock.now - started)
        return result
    }
}
