import ArgumentParser
import Foundation
import WaybillCore
import WaybillScan
import WaybillStore

struct DecodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Find and verify routing sheets in scans (PDF, TIFF, JPEG, PNG).",
        discussion: """
            For each file and page: the barcodes found and the routing sheets, with their status \
            (valid, invalid-signature, unknown-key, malformed). Tokens are checked against the signing \
            keys in the data directory; the directive store is not consulted. Exits 1 if any file or \
            page could not be read; the other files are still decoded.
            """)

    @OptionGroup var settings: SettingsOptions
    @Argument(help: "Files to decode.") var files: [String]
    @Flag(help: "One JSON object per file per line.") var json = false
    @Flag(help: "List every barcode, not only those on sheet pages.") var allBarcodes = false
    @Option(help: "Seconds one page may take; past them its remaining clean-up passes are skipped and it reports page-timeout.")
    var pageTimeLimit = ScanDecoder.Configuration.defaultPageTimeLimit / .seconds(1)

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("name at least one file") }
        guard pageTimeLimit.isFinite, pageTimeLimit >= 0, pageTimeLimit <= 86_400 else {
            throw ValidationError("--page-time-limit takes seconds from 0 to 86400")
        }
    }

    func run() async throws {
        let context = try CommandContext(settings)
        let keys = try context.existingKeys()
        let decoder = try ScanDecoder(
            keys: keys, configuration: ScanDecoder.Configuration(pageTimeLimit: .nanoseconds(Int64(pageTimeLimit * 1e9))))
        var failed = false
        for file in files {
            let report = FileReport(file: file, allBarcodes: allBarcodes)
            let clock = ContinuousClock()
            let start = clock.now
            do {
                report.pages = try decoder.decode(path: file) { report.add($0) }
            } catch {
                report.error = error
            }
            report.milliseconds = (clock.now - start).milliseconds
            failed = failed || report.error != nil || !report.pageErrors.isEmpty
            if json { try Output.json(report.json) } else { report.printForPeople() }
        }
        if failed { throw ExitCode(1) }
    }
}

/// What `decode` reports for one file, built page by page as pages stream in.
final class FileReport {
    let file: String
    let allBarcodes: Bool
    var pages = 0
    var sheets: [SheetFinding] = []
    var separators: [Int] = []
    var barcodes: [(page: Int, barcode: DecodedBarcode)] = []
    var pageErrors: [(page: Int, error: WaybillError)] = []
    var error: WaybillError?
    var milliseconds = 0.0

    init(file: String, allBarcodes: Bool) {
        self.file = file
        self.allBarcodes = allBarcodes
    }

    func add(_ page: PageResult) {
        if let sheet = page.sheet { sheets.append(sheet) }
        if page.isSeparator { separators.append(page.page) }
        if let error = page.error { pageErrors.append((page.page, error)) }
        if allBarcodes || page.sheet != nil || page.isSeparator {
            barcodes.append(contentsOf: page.barcodes.map { (page.page, $0) })
        }
    }

    struct JSON: Encodable {
        struct Sheet: Encodable {
            let page: Int
            let directive: String?
            let status: String
        }
        struct Barcode: Encodable {
            let page: Int
            let symbology: String
            let text: String
        }
        struct PageError: Encodable {
            let page: Int
            let error: String
            let message: String
        }
        let file: String
        let pages: Int
        let sheets: [Sheet]
        let separators: [Int]
        let barcodes: [Barcode]
        let page_errors: [PageError]
        let error: String?
        let message: String?
        let ms: Double

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(file, forKey: .file)
            try container.encode(pages, forKey: .pages)
            try container.encode(sheets, forKey: .sheets)
            try container.encode(separators, forKey: .separators)
            try container.encode(barcodes, forKey: .barcodes)
            try container.encode(page_errors, forKey: .page_errors)
            try container.encode(error, forKey: .error)  // null when the file was read
            try container.encode(message, forKey: .message)
            try container.encode((ms * 10).rounded() / 10, forKey: .ms)
        }

        enum CodingKeys: String, CodingKey {
            case file, pages, sheets, separators, barcodes, page_errors, error, message, ms
        }
    }

    var json: JSON {
        JSON(
            file: file, pages: pages,
            sheets: sheets.map { JSON.Sheet(page: $0.page, directive: $0.directive?.rawValue, status: $0.verification.name) },
            separators: separators,
            barcodes: barcodes.map { JSON.Barcode(page: $0.page, symbology: $0.barcode.symbology, text: $0.barcode.text) },
            page_errors: pageErrors.map { JSON.PageError(page: $0.page, error: $0.error.code.name, message: $0.error.message) },
            error: error?.code.name, message: error?.message, ms: milliseconds)
    }

    func printForPeople() {
        if let error {
            print("\(file): error [\(error.code)]: \(error.message)")
            return
        }
        let summary = sheets.isEmpty ? "no routing sheet" : "\(sheets.count) routing sheet\(sheets.count == 1 ? "" : "s")"
        print("\(file): \(pages) page\(pages == 1 ? "" : "s"), \(summary) (\(String(format: "%.0f", milliseconds)) ms)")
        for sheet in sheets {
            print("  page \(sheet.page + 1): directive \(sheet.directive?.display ?? "?") \(sheet.verification.name)")
        }
        for page in separators { print("  page \(page + 1): PATCH T separator") }
        for (page, error) in pageErrors { print("  page \(page + 1): error [\(error.code)]: \(error.message)") }
        if allBarcodes {
            for (page, barcode) in barcodes { print("  page \(page + 1): \(barcode.symbology) \(barcode.text)") }
        }
    }
}

extension Duration {
    var milliseconds: Double {
        Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15
    }
}
