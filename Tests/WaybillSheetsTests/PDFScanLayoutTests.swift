import Foundation
import Testing
import WaybillCore
@testable import WaybillScan
import WaybillSheets

/// The JPEG fast path: image-only scanned PDFs are read without poppler, everything else is not.
@Suite struct PDFScanLayoutTests {
    static let corpusScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Benchmarks/make_decode_corpus.py").path

    func sheetPDF() throws -> (Data, SheetContent, SigningKeys) {
        var keys = SigningKeys(keys: [])
        keys.rotate(now: Date())
        let directive = Directive(
            id: .random(), title: "Fast path", owner: "a@example.com", destinations: [.email("b@example.com")], createdAt: Date())
        let content = SheetContent(directive: directive, token: try keys.sign(directive.id), scanAddress: "scan@localhost")
        let template = try TemplateLocator(explicitDirectory: SheetRoundTripTests.templates, environment: [:], executablePath: nil)
            .locate(name: "standard", paper: .letter)
        return (try SheetRenderer().renderPDF([content], template: template), content, keys)
    }

    @Test func scannerStylePDFsAreReadStraightFromTheirJPEGs() throws {
        let (sheet, content, keys) = try sheetPDF()
        let directory = NSTemporaryDirectory() + "waybill-layout-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try sheet.write(to: URL(fileURLWithPath: directory + "/sheet.pdf"))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [Self.corpusScript, directory + "/sheet.pdf", directory + "/corpus", "--files", "1", "--pages", "3"]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let path = directory + "/corpus/batch-0000.pdf"
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let pages = try #require(PDFScanLayout.imagePages(in: data, expectedPageCount: 3))
        #expect(pages.count == 3)
        for page in pages {
            let image = try #require(page)
            #expect(data[image.jpeg].prefix(2) == Data([0xFF, 0xD8]))
            #expect(data[image.jpeg].suffix(2) == Data([0xFF, 0xD9]))
            #expect(image.pixelWidth == 2550 && image.pageWidthPoints == 612)
        }
        // And the decoder finds the sheet through that path.
        var sheets: [SheetFinding] = []
        let count = try ScanDecoder(keys: keys).decode(path: path) { if let sheet = $0.sheet { sheets.append(sheet) } }
        #expect(count == 3)
        #expect(sheets.map(\.page) == [0])
        #expect(sheets.first?.verification == .valid(content.directive.id))
    }

    @Test func vectorPDFsAndOddFilesTakeTheOrdinaryPath() throws {
        let (sheet, _, _) = try sheetPDF()
        // cairo's sheet has fonts and vectors: no page qualifies, or the structure is not understood.
        let pages = PDFScanLayout.imagePages(in: sheet, expectedPageCount: 1)
        #expect(pages == nil || pages?.allSatisfy { $0 == nil } == true)
        #expect(PDFScanLayout.imagePages(in: Data("%PDF-1.4 garbage".utf8), expectedPageCount: 1) == nil)
        #expect(PDFScanLayout.imagePages(in: HostilePDFTests.pdf(mediaBox: "0 0 612 792"), expectedPageCount: 1)?.first! == nil)
        // A wrong page count (an object stream hid some pages, say) is not trusted.
        #expect(PDFScanLayout.imagePages(in: HostilePDFTests.pdf(mediaBox: "0 0 612 792"), expectedPageCount: 2) == nil)
    }
}

@Suite struct DecoderCancellationTests {
    @Test func aCancelledTaskStopsBetweenPages() async throws {
        let (sheet, _, keys) = try PDFScanLayoutTests().sheetPDF()
        let path = NSTemporaryDirectory() + "waybill-cancel-\(UUID().uuidString).pdf"
        try sheet.write(to: URL(fileURLWithPath: path))
        let task = Task { () -> (pages: Int, error: WaybillError?) in
            withUnsafeCurrentTask { $0?.cancel() }
            var seen = 0
            do {
                try ScanDecoder(keys: keys).decode(path: path) { _ in seen += 1 }
                return (seen, nil)
            } catch {
                return (seen, error as? WaybillError)
            }
        }
        let result = await task.value
        #expect(result.error?.code == .cancelled)
        #expect(result.pages == 0)
    }
}
