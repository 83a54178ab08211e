import Foundation
import Testing
import WaybillCore
import WaybillScan
@testable import WaybillSheets

/// The direct PDF writer against cairo: the same sheet, drawn both ways, must look the same,
/// read the same (text extraction) and be a valid PDF; what the writer cannot draw goes to cairo.
@Suite struct SheetWriterTests {
    let keys: SigningKeys = {
        var keys = SigningKeys(keys: [])
        keys.rotate(now: Date())
        return keys
    }()

    func sheet(title: String, owner: String = "ap@example.com", notes: String? = nil) throws -> SheetContent {
        let now = Date()
        let directive = Directive(
            id: .random(), title: title, owner: owner,
            destinations: [.email("invoices@example.com"), .folder(root: "archive", path: ["2026", "Q4"])], createdAt: now,
            expiresAt: now.addingTimeInterval(86_400 * 30), maxUses: 10, options: DirectiveOptions(notes: notes ?? ""))
        return SheetContent(directive: directive, token: try keys.sign(directive.id), scanAddress: "scan@example.com")
    }

    func template(_ paper: Paper) throws -> SheetTemplate {
        try TemplateLocator(explicitDirectory: SheetRoundTripTests.templates, environment: [:], executablePath: nil)
            .locate(name: "standard", paper: paper)
    }

    /// Mean absolute difference of two renders (0–255) and the share of pixels that differ by
    /// more than half the range.
    func difference(_ first: GrayImage, _ second: GrayImage) -> (mean: Double, far: Double) {
        #expect(first.width == second.width && first.pixels.count == second.pixels.count)
        var total = 0
        var far = 0
        for (a, b) in zip(first.pixels, second.pixels) {
            let delta = abs(Int(a) - Int(b))
            total += delta
            if delta > 128 { far += 1 }
        }
        return (Double(total) / Double(first.pixels.count), Double(far) / Double(first.pixels.count))
    }

    @Test(arguments: [Paper.letter, .a4])
    func theDirectWriterDrawsWhatCairoDraws(paper: Paper) throws {
        let content = try sheet(title: "Quarterly freight manifest — Zürich “Nord” · 12½ € café", notes: "Bring the blue folder")
        let template = try template(paper)
        let direct = try SheetRenderer()
        let directPDF = try direct.renderPDF([content], template: template)
        #expect(direct.directDeclined == nil)
        let cairoPDF = try SheetRenderer(directPDF: false).renderPDF([content], template: template)
        #expect(directPDF != cairoPDF)
        let first = try PDFDocument(data: directPDF)
        let second = try PDFDocument(data: cairoPDF)
        let (size, reference) = (try first.pageSize(0), try second.pageSize(0))
        #expect(abs(size.width - reference.width) < 0.01 && abs(size.height - reference.height) < 0.01)
        // Not pixel for pixel: cairo drops glyph adjustments under 3/1000 em (so its glyphs sit up
        // to that far from where Pango put them; this writer puts them exactly there), and it
        // embeds hinted outlines. Edges move by a fraction of a pixel; anything misplaced or
        // missing would cost far more than this.
        let (mean, far) = difference(try first.render(page: 0, dpi: 100), try second.render(page: 0, dpi: 100))
        #expect(mean < 1.5, "mean difference \(mean)")
        #expect(far < 0.003, "\(far * 100)% of pixels differ by more than half")
        let codes = try BarcodeScanner().scan(first.render(page: 0, dpi: 150))
        #expect(Set(codes.map(\.text)) == [content.token.description])
    }

    /// Text extraction goes through the fonts' ToUnicode maps: what a person searches for is there.
    @Test func theTextCanBeSearched() throws {
        let content = try sheet(title: "Über-invoices — naïve “quotes”", owner: "zoë@example.com")
        let text = try extractText(try SheetRenderer().renderPDF([content], template: template(.letter)))
        for expected in ["Über-invoices — naïve “quotes”", "zoë@example.com", content.directive.id.display, "invoices@example.com",
            "Place this sheet on top of your documents"]
        {
            #expect(text.contains(expected), "\(expected) missing from:\n\(text)")
        }
    }

    /// Characters outside the embedded palette (here Cyrillic and CJK, which DejaVu lacks or the
    /// palette leaves out) send the sheet to cairo, which embeds whatever fonts it needs.
    @Test func textOutsideThePaletteFallsBackToCairo() throws {
        let content = try sheet(title: "Счета 東京")
        let renderer = try SheetRenderer()
        let pdf = try renderer.renderPDF([content], template: template(.letter))
        #expect(renderer.directDeclined?.contains("palette") == true, "\(renderer.directDeclined ?? "nil")")
        #expect(try extractText(pdf).contains("Счета"))
        // And the next sheet, in the palette, takes the direct path again.
        _ = try renderer.renderPDF([try sheet(title: "Plain")], template: template(.letter))
        #expect(renderer.directDeclined == nil)
    }

    /// Ligatures are off (every glyph has one character), so words like "office" and "filing"
    /// stay on the direct path.
    @Test func commonWordsStayOnTheDirectPath() throws {
        let renderer = try SheetRenderer()
        let content = try sheet(title: "Office filing: affluent flows", notes: "fjord fi fl ff ffi ffl Th")
        let pdf = try renderer.renderPDF([content], template: template(.letter))
        #expect(renderer.directDeclined == nil, "\(renderer.directDeclined ?? "")")
        #expect(try extractText(pdf).contains("Office filing: affluent flows"))
    }

    /// Fonts are subset once per process: a second renderer (the web app makes one per
    /// request) reuses the first one's.
    @Test func renderersShareTheirFonts() throws {
        let first = try SheetRenderer()
        let second = try SheetRenderer()
        _ = try first.renderPDF([try sheet(title: "First")], template: template(.letter))
        _ = try second.renderPDF([try sheet(title: "Second")], template: template(.letter))
        #expect(first.embeddedFonts.count >= 3)
        #expect(first.embeddedFonts.count == second.embeddedFonts.count)
        for (a, b) in zip(first.embeddedFonts, second.embeddedFonts) { #expect(a === b) }
        #expect(Set(first.embeddedFonts.map(\.baseFont)).count == first.embeddedFonts.count)
    }

    /// A stack: one file, the fonts and artwork once, one page per sheet, each with its own codes.
    @Test func aStackSharesItsFonts() throws {
        let sheets = try (0..<20).map { try sheet(title: "Sheet \($0)") }
        let renderer = try SheetRenderer()
        let pdf = try renderer.renderPDF(sheets, template: template(.letter))
        #expect(renderer.directDeclined == nil)
        let document = try PDFDocument(data: pdf)
        #expect(document.pageCount == 20)
        let one = try renderer.renderPDF([sheets[0]], template: template(.letter))
        #expect(pdf.count < one.count * 3, "20 sheets: \(pdf.count) bytes; one: \(one.count)")
        let scanner = try BarcodeScanner()
        for page in [0, 7, 19] {
            #expect(Set(scanner.scan(try document.render(page: page, dpi: 100)).map(\.text)) == [sheets[page].token.description])
        }
    }

    /// qpdf finds nothing wrong with the file: objects, offsets, streams and fonts as written.
    @Test func qpdfChecksTheFile() throws {
        let directory = NSTemporaryDirectory() + "waybill-writer-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/sheet.pdf"
        try SheetRenderer().renderPDF([try sheet(title: "Checked")], template: template(.a4), to: path)
        let (status, output) = try run("/usr/bin/qpdf", ["--check", path])
        #expect(status == 0, "\(output)")
        #expect(output.contains("No syntax or stream encoding errors found"), "\(output)")
        let (_, fonts) = try run("/usr/bin/pdffonts", [path])
        #expect(fonts.contains("CID TrueType") && !fonts.contains(" no "), "\(fonts)")
    }

    @Test func numbersAreWrittenAsPDFWantsThem() {
        #expect(PDFNumber.text(0) == "0")
        #expect(PDFNumber.text(612) == "612")
        #expect(PDFNumber.text(-0.5) == "-0.5")
        #expect(PDFNumber.text(0.00004) == "0")
        #expect(PDFNumber.text(1e-5) == "0")
        #expect(PDFNumber.text(12.34567) == "12.3457")
        #expect(PDFNumber.text(-0.25) == "-0.25")
        #expect(PDFNumber.text(791.99999) == "792")
    }

    func extractText(_ pdf: Data) throws -> String {
        let path = NSTemporaryDirectory() + "waybill-text-\(UUID().uuidString).pdf"
        try pdf.write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (status, output) = try run("/usr/bin/pdftotext", ["-enc", "UTF-8", path, "-"])
        #expect(status == 0)
        return output
    }

    func run(_ tool: String, _ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
