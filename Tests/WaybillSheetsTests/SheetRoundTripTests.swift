import Foundation
import Testing
import WaybillCore
import WaybillScan
import WaybillSheets

/// Renders real sheets, rasterizes them with poppler-glib and decodes them with zbar.
@Suite struct SheetRoundTripTests {
    static let templates = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Templates").path

    let now = Date()
    let keys: SigningKeys = {
        var keys = SigningKeys(keys: [])
        keys.rotate(now: Date())
        return keys
    }()

    func sheet(title: String = "Accounts payable", destinations: [Destination]? = nil) throws -> SheetContent {
        let directive = Directive(
            id: .random(), title: title, owner: "ap@example.com",
            destinations: destinations ?? [.email("invoices@example.com"), .folder(root: "archive", path: ["2026"])],
            createdAt: now, expiresAt: now.addingTimeInterval(86_400 * 30), maxUses: 10)
        return SheetContent(directive: directive, token: try keys.sign(directive.id), scanAddress: "scan@example.com")
    }

    func template(_ paper: Paper) throws -> SheetTemplate {
        try TemplateLocator(explicitDirectory: Self.templates, environment: [:], executablePath: nil)
            .locate(name: "standard", paper: paper)
    }

    @Test(arguments: [Paper.letter, .a4], [100.0, 150.0, 300.0])
    func bothCodesCarryTheTokenAtEveryResolution(paper: Paper, dpi: Double) throws {
        let content = try sheet()
        let pdf = try SheetRenderer().renderPDF([content], template: try template(paper))
        let document = try PDFDocument(data: pdf)
        #expect(document.pageCount == 1)
        let size = try document.pageSize(0)
        if paper == .letter { #expect(size.width == 612 && size.height == 792) }
        if paper == .a4 { #expect(abs(size.width - 595) < 1 && abs(size.height - 842) < 1) }
        let found = try BarcodeScanner().scan(document.render(page: 0, dpi: dpi))
        let token = content.token.description
        #expect(found.contains(DecodedBarcode(symbology: "QR-Code", text: token)), "QR at \(dpi) dpi: \(found)")
        #expect(found.contains(DecodedBarcode(symbology: "CODE-128", text: token)), "Code 128 at \(dpi) dpi: \(found)")
        #expect(keys.verify(token) == .valid(content.directive.id))
        // zbar may now and then report a stray extra decode (seen once in a few hundred renders at
        // 300 dpi); what matters is that nothing else ever verifies as a different directive.
        for barcode in found {
            if case .valid(let other) = keys.verify(barcode.text) { #expect(other == content.directive.id) }
        }
    }

    /// Each code alone must be enough: blank one out and the other still reads.
    @Test func eitherCodeAloneIsEnough() throws {
        let content = try sheet()
        let document = try PDFDocument(data: try SheetRenderer().renderPDF([content], template: try template(.letter)))
        let image = try document.render(page: 0, dpi: 150)
        func blanked(_ rows: Range<Double>) -> GrayImage {
            var copy = image
            let scale = 150.0 / 72
            for y in Int(rows.lowerBound * scale)..<min(image.height, Int(rows.upperBound * scale)) {
                for x in 0..<image.width { copy.pixels[y * image.width + x] = 255 }
            }
            return copy
        }
        let scanner = try BarcodeScanner()
        // The QR sits in the top third, the Code 128 in the bottom third (folds at 264 and 528 pt).
        let withoutQR = scanner.scan(blanked(0..<264))
        let withoutCode128 = scanner.scan(blanked(528..<792))
        #expect(withoutQR.map(\.symbology) == ["CODE-128"])
        #expect(withoutCode128.map(\.symbology) == ["QR-Code"])
        #expect(withoutQR.first?.text == content.token.description)
        #expect(withoutCode128.first?.text == content.token.description)
    }

    @Test func aStackHasOnePagePerDirectiveInOrder() throws {
        let sheets = try (0..<4).map { try sheet(title: "Sheet \($0)") }
        let document = try PDFDocument(data: try SheetRenderer().renderPDF(sheets, template: try template(.letter)))
        #expect(document.pageCount == 4)
        let scanner = try BarcodeScanner()
        for (page, content) in sheets.enumerated() {
            let texts = Set(scanner.scan(try document.render(page: page, dpi: 100)).map(\.text))
            #expect(texts == [content.token.description])
        }
    }

    @Test func longValuesAreClippedNotOverflowing() throws {
        let many = (0..<12).map { Destination.email("person.with.a.long.name\($0)@departments.example.com") }
        let content = try sheet(title: String(repeating: "Very long title ", count: 10), destinations: many)
        let document = try PDFDocument(data: try SheetRenderer().renderPDF([content], template: try template(.letter)))
        let found = try BarcodeScanner().scan(document.render(page: 0, dpi: 150))
        #expect(found.count == 2)
    }

    @Test func fileOutputIsAtomic() throws {
        let directory = NSTemporaryDirectory() + "waybill-sheets-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let output = directory + "/out.pdf"
        try SheetRenderer().renderPDF([try sheet()], template: try template(.letter), to: output)
        let document = try PDFDocument(path: output)
        #expect(document.pageCount == 1)
        // Nothing but the result is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["out.pdf"])
    }
}

@Suite struct TemplateErrorTests {
    let directory: String = NSTemporaryDirectory() + "waybill-templates-\(UUID().uuidString)"

    func write(_ text: String) throws -> String {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/bad-letter.svg"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static let boxes = #"<rect id="waybill-qr" x="400" y="50" width="130" height="130"/><rect id="waybill-code128" x="90" y="600" width="470" height="54"/>"#

    func content() throws -> SheetContent {
        var keys = SigningKeys(keys: [])
        keys.rotate(now: Date())
        let directive = Directive(
            id: .random(), title: "T", owner: "o@example.com", destinations: [.email("a@example.com")], createdAt: Date())
        return SheetContent(directive: directive, token: try keys.sign(directive.id), scanAddress: "scan@localhost")
    }

    func code(of body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let error as WaybillError {
            #expect(error.message.contains(directory) || error.message.contains("bad-letter"), "\(error.message)")
            return error.code.name
        } catch { return "\(error)" }
    }

    @Test func missingTemplateNamesWhereItLooked() {
        let locator = TemplateLocator(explicitDirectory: directory, environment: [:], executablePath: nil)
        #expect(code { _ = try locator.locate(name: "bad", paper: .letter) } == "template-not-found")
    }

    @Test func templateWithoutCodeBoxes() throws {
        let path = try write(#"<svg xmlns="http://www.w3.org/2000/svg" width="8.5in" height="11in"></svg>"#)
        #expect(code { _ = try SheetTemplate(path: path) } == "template-malformed")
    }

    @Test func brokenMustache() throws {
        let path = try write(#"<svg xmlns="http://www.w3.org/2000/svg">{{#title}}"# + Self.boxes + "</svg>")
        #expect(code { _ = try SheetTemplate(path: path) } == "template-malformed")
    }

    @Test func brokenSVGLeavesNoOutputFile() throws {
        let path = try write(#"<svg xmlns="http://www.w3.org/2000/svg" width="8.5in" height="11in">"# + Self.boxes + "<text>")
        let output = directory + "/never.pdf"
        #expect(code { try SheetRenderer().renderPDF([try content()], template: try SheetTemplate(path: path), to: output) } == "template-malformed")
        #expect(!FileManager.default.fileExists(atPath: output))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["bad-letter.svg"])
    }

    @Test func codeBoxTooSmall() throws {
        let path = try write(
            #"<svg xmlns="http://www.w3.org/2000/svg" width="8.5in" height="11in" viewBox="0 0 612 792">"#
                + #"<rect id="waybill-qr" x="400" y="50" width="40" height="40"/>"#
                + #"<rect id="waybill-code128" x="90" y="600" width="470" height="54"/></svg>"#)
        let template = try SheetTemplate(path: path)
        #expect(code { _ = try SheetRenderer().renderPDF([try content()], template: template) } == "template-malformed")
    }
}

@Suite struct HostilePDFTests {
    /// A one-page PDF with the given MediaBox, offsets computed so poppler needs no repair.
    static func pdf(mediaBox: String) -> Data {
        var body = "%PDF-1.4\n"
        var offsets: [Int] = []
        let objects = [
            "<< /Type /Catalog /Pages 2 0 R >>",
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            "<< /Type /Page /Parent 2 0 R /MediaBox [\(mediaBox)] >>",
        ]
        for (index, object) in objects.enumerated() {
            offsets.append(body.utf8.count)
            body += "\(index + 1) 0 obj\n\(object)\nendobj\n"
        }
        let xref = body.utf8.count
        body += "xref\n0 4\n0000000000 65535 f \n"
        for offset in offsets { body += String(format: "%010d 00000 n \n", offset) }
        body += "trailer\n<< /Size 4 /Root 1 0 R >>\nstartxref\n\(xref)\n%%EOF\n"
        return Data(body.utf8)
    }

    /// Poppler itself replaces some absurd boxes with a default page; whatever it does, we never
    /// allocate more than the limit and never crash.
    @Test(arguments: ["0 0 1e30 1e30", "0 0 10000000000 10000000000", "0 0 200000 200000", "0 0 -5 -5"])
    func hugePagesAreRefusedNotAllocated(box: String) throws {
        let document = try PDFDocument(data: Self.pdf(mediaBox: box))
        #expect(document.pageCount == 1)
        do {
            let image = try document.render(page: 0, dpi: 300)
            #expect(Double(image.width * image.height) <= PDFDocument.maximumPixels)
        } catch {
            #expect(error.code == .unreadableDocument)
        }
    }

    @Test func theLimitIsEnforced() throws {
        let document = try PDFDocument(data: Self.pdf(mediaBox: "0 0 14400 14400"))  // 200 inches square
        #expect(throws: WaybillError.self) { _ = try document.render(page: 0, dpi: 300) }
    }

    @Test func ordinaryPageRenders() throws {
        let document = try PDFDocument(data: Self.pdf(mediaBox: "0 0 612 792"))
        let image = try document.render(page: 0, dpi: 72)
        #expect(image.width == 612 && image.height == 792)
        #expect(image.pixels.allSatisfy { $0 == 255 })
        #expect(throws: WaybillError.self) { _ = try document.render(page: 1, dpi: 72) }
        #expect(throws: WaybillError.self) { _ = try document.render(page: 0, dpi: .nan) }
    }

    @Test func notAPDFIsANamedError() {
        #expect(throws: WaybillError.self) { _ = try PDFDocument(data: Data("hello".utf8)) }
        #expect(throws: WaybillError.self) { _ = try PDFDocument(data: Data()) }
        #expect(throws: WaybillError.self) { _ = try PDFDocument(data: Self.pdf(mediaBox: "0 0 612 792").prefix(40)) }
    }
}
