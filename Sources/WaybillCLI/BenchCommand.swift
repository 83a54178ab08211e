import ArgumentParser
import Foundation
import WaybillCore
import WaybillScan
import WaybillSheets

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks that print their figures.", subcommands: [Sheets.self, Decode.self])

    struct Decode: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "decode",
            abstract: "Decode every scan in a folder and print pages per second and milliseconds per page.",
            discussion: "Files are shared among --jobs workers (default: one per core), each with its own decoder.")

        @OptionGroup var settings: SettingsOptions
        @Argument(help: "A folder of scans (PDF, TIFF, JPEG, PNG).") var directory: String
        @Option(help: "Worker threads.") var jobs: Int?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let context = try CommandContext(settings)
            let keys = try context.existingKeys()
            let files = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
                .map { directory + "/" + $0 }.filter { ScanFormat(path: $0) != nil }
            guard !files.isEmpty else { throw ValidationError("no scans in \(directory)") }
            let workers = max(1, jobs ?? ProcessInfo.processInfo.activeProcessorCount)
            let clock = ContinuousClock()
            let start = clock.now
            let totals = try ScanDecoder.decodeFiles(files, keys: keys, workers: workers)
            let elapsed = (clock.now - start).milliseconds
            let perPage = elapsed / Double(max(1, totals.pages))
            let rate = Double(totals.pages) * 1000 / elapsed
            if json {
                print(#"{"tool":"waybill","files":\#(files.count),"pages":\#(totals.pages),"sheets":\#(totals.sheets),"workers":\#(workers),"ms_per_page":\#(String(format: "%.2f", perPage)),"pages_per_second":\#(String(format: "%.1f", rate))}"#)
            } else {
                print("waybill: \(files.count) files, \(totals.pages) pages, \(totals.sheets) sheets, \(workers) workers: "
                    + "\(String(format: "%.1f", rate)) pages/s, \(String(format: "%.2f", perPage)) ms per page")
            }
        }
    }

    struct Sheets: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sheets",
            abstract: "Render routing sheets and print milliseconds per sheet.",
            discussion: """
                'separate' writes each sheet as its own PDF file (what `waybill sheet ID -o F` does), 'single' \
                writes one PDF of COUNT pages. Directives and keys are made in memory; nothing is stored.
                """)

        @OptionGroup var settings: SettingsOptions
        @Option(help: "Number of sheets.") var count = 1000
        @Option(help: "separate, single or both.") var mode = "both"
        @Option(help: "letter or a4. Env: WAYBILL_PAPER.") var paper: String?
        @Option(help: "Folder for the PDFs (default: a temporary folder, removed afterwards).") var out: String?
        @Flag(help: "Print JSON lines.") var json = false

        func validate() throws {
            guard count > 0 else { throw ValidationError("--count must be positive") }
            guard ["separate", "single", "both"].contains(mode) else { throw ValidationError("--mode: separate, single or both") }
        }

        func run() async throws {
            var extra: [SettingKey: String] = [:]
            extra[.paper] = paper
            let context = try CommandContext(settings, extraFlags: extra)
            let template = try context.locateTemplate()
            let directory = out ?? NSTemporaryDirectory() + "waybill-bench-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { if out == nil { try? FileManager.default.removeItem(atPath: directory) } }

            var keys = SigningKeys(keys: [])
            keys.rotate(now: Date())
            let now = Date()
            let sheets = try (0..<count + 3).map { index in
                let directive = Directive(
                    id: DirectiveID.random(), title: "Accounts payable batch \(index)", owner: "ap@example.com",
                    destinations: [
                        .email("invoices@example.com"), .folder(root: "archive", path: ["invoices", "2026"]),
                        .webhook("https://erp.example.com/hooks/scan"),
                    ],
                    createdAt: now, expiresAt: now.addingTimeInterval(90 * 86_400), maxUses: 500)
                return SheetContent(directive: directive, token: try keys.sign(directive.id), scanAddress: "scan@example.com")
            }
            let renderer = try SheetRenderer()
            // Warm-up: fonts, template layout and code paths, as in the peer script.
            try renderer.renderPDF(Array(sheets.prefix(3)), template: template, to: directory + "/warmup.pdf")
            let timed = Array(sheets.dropFirst(3))

            if mode != "single" {
                let clock = ContinuousClock()
                let elapsed = try clock.measure {
                    for (index, sheet) in timed.enumerated() {
                        try renderer.renderPDF([sheet], template: template, to: directory + "/sheet-\(index).pdf")
                    }
                }
                report(elapsed, mode: "separate")
                let workers = ProcessInfo.processInfo.activeProcessorCount
                if workers > 1 {
                    let outputs = timed.indices.map { directory + "/parallel-\($0).pdf" }
                    let parallel = try clock.measure {
                        try SheetRenderer.renderFiles(timed, to: outputs, template: template, workers: workers)
                    }
                    report(parallel, mode: "separate-\(workers)-cores")
                }
            }
            if mode != "separate" {
                let clock = ContinuousClock()
                let elapsed = try clock.measure {
                    try renderer.renderPDF(timed, template: template, to: directory + "/sheets.pdf")
                }
                report(elapsed, mode: "single")
            }
        }

        private func report(_ elapsed: Duration, mode: String) {
            let seconds = elapsed.milliseconds / 1000
            let perSheet = seconds * 1000 / Double(count)
            if json {
                print(#"{"tool":"waybill","count":\#(count),"mode":"\#(mode)","ms_per_sheet":\#(String(format: "%.3f", perSheet))}"#)
            } else {
                print("waybill: \(count) sheets, \(String(format: "%.2f", perSheet)) ms per sheet (\(mode))")
            }
        }
    }
}
