public import Foundation
public import WaybillCore
import WaybillMIME
import WaybillScan
public import WaybillStore

/// The operator's side of quarantine, shared by `waybill quarantine` and the web app: list,
/// inspect, reroute, release, delete, and show a held message's pages. Reroute and release run
/// the very pipeline `serve` runs (DESIGN.md: no second path); every action is journalled
/// with its actor (`cli:<user>`, `web:<user>`).
public struct QuarantineDesk: QuarantineOperations {
    public let pipeline: Pipeline
    public var store: SQLiteDirectiveStore { pipeline.store }

    public init(pipeline: Pipeline) {
        self.pipeline = pipeline
    }

    /// Held entries first, newest first; with `all`, also those released, rerouted or deleted.
    public func entries(all: Bool = false) async throws -> [QuarantineEntry] {
        try await store.quarantineEntries().filter { all || $0.state == .held }
    }

    public func entry(_ messageID: String) async throws -> QuarantineEntry {
        guard let entry = try await store.quarantineEntry(messageID) else {
            throw WaybillError(.unknownMessage, "no quarantined message \(messageID)")
        }
        return entry
    }

    /// Where the original is kept (gone once released, rerouted or deleted).
    public func file(_ messageID: String) -> URL { pipeline.quarantinedFile(messageID) }

    public func reroute(_ messageID: String, to directive: DirectiveID, actor: String) async throws -> QuarantineActionResult {
        guard try await store.directive(directive) != nil else {
            throw WaybillError(.unknownDirective, "no directive \(directive.display)")
        }
        return try await rerun(messageID, override: directive, newState: .rerouted, actor: actor)
    }

    public func release(_ messageID: String, actor: String) async throws -> QuarantineActionResult {
        try await rerun(messageID, override: nil, newState: .released, actor: actor)
    }

    public func delete(_ messageID: String, actor: String) async throws {
        try await held(messageID)
        try? FileManager.default.removeItem(at: file(messageID))
        try await store.setQuarantineState(messageID, .deleted, at: pipeline.now())
        try await store.journal([
            JournalEntry(at: pipeline.now(), messageID: messageID, event: "deleted", detail: "removed from quarantine", actor: actor)
        ])
    }

    @discardableResult
    func held(_ messageID: String) async throws -> QuarantineEntry {
        let entry = try await entry(messageID)
        guard entry.state == .held else {
            throw WaybillError(.invalidQuarantineAction, "message \(messageID) is \(entry.state.rawValue), not held")
        }
        return entry
    }

    /// The message through the pipeline again, with the rules (release) or to one directive
    /// (reroute). Delivered: the entry takes `newState` and the original leaves quarantine.
    /// Refused again: it stays held, with the new reason, and `.stillQuarantined` is thrown.
    func rerun(_ messageID: String, override: DirectiveID?, newState: QuarantineState, actor: String) async throws
        -> QuarantineActionResult
    {
        let entry = try await held(messageID)
        let message = pipeline.quarantinedMessage(
            entry, receivedAt: (try await store.message(messageID))?.receivedAt ?? entry.at, directiveOverride: override)
        try await store.journal([
            JournalEntry(
                at: pipeline.now(), messageID: messageID, event: newState == .rerouted ? "rerouted" : "released",
                detail: override.map { "to directive \($0.display), every page as scanned" } ?? "through the routing rules again",
                actor: actor)
        ])
        switch try await pipeline.process(message, actor: actor, again: true) {
        case .delivered(let jobs, let files, _, let queued):
            try await store.setQuarantineState(messageID, newState, at: pipeline.now())
            try? FileManager.default.removeItem(at: file(messageID))
            return QuarantineActionResult(jobs: jobs, files: files, queued: queued)
        case .quarantined(let reason, let detail, _):
            throw WaybillError(.stillQuarantined, "message \(messageID) is still refused: \(reason): \(detail)")
        }
    }

    /// The largest resolution a page is rendered at: a Letter page at 300 dpi is 2550 × 3300.
    public static let dpiRange = 36...300

    /// The scans of a message in message order, as the pipeline reads them: the kept scans of a
    /// delivered message, or a held original's scan attachments (or the scan file itself),
    /// extracted into `work`. Empty when neither is kept.
    func scanFiles(_ messageID: String, work: URL) throws -> [URL] {
        let kept = pipeline.keptScans(messageID)
        if !kept.isEmpty { return kept }
        let original = file(messageID)
        guard FileManager.default.fileExists(atPath: original.path) else { return [] }
        if original.pathExtension == "eml" {
            try Pipeline.createDirectory(work)
            return try MIMEParser.extract(messageAt: original, into: work).attachments.map(\.url)
                .filter { ScanFormat(path: $0.path) != nil }
        }
        return ScanFormat(path: original.path) != nil ? [original] : []
    }

    /// Whether the message is known: quarantined, or with kept scans.
    func requireKnown(_ messageID: String) async throws {
        if pipeline.keptScans(messageID).isEmpty { _ = try await entry(messageID) }
    }

    /// How many pages the message's scans have: a held original's, or a delivered message's kept
    /// scans (0 when neither is kept any more).
    public func pageCount(_ messageID: String) async throws -> Int {
        try await requireKnown(messageID)
        let work = pipeline.workDirectory.appendingPathComponent("count-\(messageID)-\(UUID().uuidString)", isDirectory: true)
        return try await Pipeline.offPool {
            defer { try? FileManager.default.removeItem(at: work) }
            var count = 0
            for scan in try scanFiles(messageID, work: work) {
                switch ScanFormat(path: scan.path) {
                case .pdf: count += (try? PDFDocument(path: scan.path).pageCount) ?? 0
                case .tiff: count += (try? TIFFDocument(path: scan.path).pageCount) ?? 0
                case .jpeg, .png: count += 1
                case nil: continue
                }
            }
            return count
        }
    }

    /// Page `page` (0-based) of the message's scans (see `pageCount`), as a PNG: PDF pages
    /// rendered at `dpi`, images as scanned.
    public func pagePNG(_ messageID: String, page: Int, dpi: Int) async throws -> Data {
        try await requireKnown(messageID)
        guard page >= 0 else { throw WaybillError(.pageNotFound, "pages are numbered from 1") }
        let resolution = Double(min(max(dpi, Self.dpiRange.lowerBound), Self.dpiRange.upperBound))
        let work = pipeline.workDirectory.appendingPathComponent("pages-\(messageID)-\(UUID().uuidString)", isDirectory: true)
        return try await Pipeline.offPool {
            defer { try? FileManager.default.removeItem(at: work) }
            let scans = try scanFiles(messageID, work: work)
            guard !scans.isEmpty else {
                throw WaybillError(.unknownMessage, "the scans of message \(messageID) are no longer kept")
            }
            var first = 0
            for scan in scans {
                let format = ScanFormat(path: scan.path)
                switch format {
                case .pdf:
                    let document = try PDFDocument(path: scan.path)
                    if page < first + document.pageCount {
                        return try PNGWriter.encode(try document.render(page: page - first, dpi: resolution))
                    }
                    first += document.pageCount
                case .tiff:
                    let document = try TIFFDocument(path: scan.path)
                    if page < first + document.pageCount { return try PNGWriter.encode(try document.page(page - first)) }
                    first += document.pageCount
                case .jpeg, .png:
                    if page == first {
                        let data = try Data(contentsOf: scan)
                        return try PNGWriter.encode(format == .jpeg ? try ImageReaders.jpeg(data) : try ImageReaders.png(data))
                    }
                    first += 1
                case nil:
                    continue
                }
            }
            throw WaybillError(.pageNotFound, "message \(messageID) has \(first) page(s) of scans; there is no page \(page + 1)")
        }
    }
}
