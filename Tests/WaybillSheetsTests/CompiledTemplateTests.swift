import Foundation
import Testing
import WaybillCore
import WaybillScan
@testable import WaybillSheets

@Suite struct CompiledTemplateTests {
    static let templates = SheetRoundTripTests.templates

    func content() throws -> SheetContent {
        var keys = SigningKeys(keys: [])
        keys.rotate(now: Date())
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let directive = Directive(
            id: .random(), title: "Accounts payable & <receivable> 'Q4'", owner: "ap@example.com",
            destinations: [.email("invoices@example.com"), .folder(root: "archive", path: ["2026", "Q4"])],
            createdAt: now, expiresAt: now.addingTimeInterval(86_400 * 30), maxUses: 10,
            options: DirectiveOptions(notes: "Ask Dana  before   scanning"))
        return SheetContent(directive: directive, token: try keys.sign(directive.id), scanAddress: "scan@example.com")
    }

    /// Renders with and without the split, both through cairo, and compares the pages pixel by
    /// pixel. (The direct writer is compared with this cairo path in `SheetWriterTests`.)
    func differingPixels(_ path: String, dpi: Double = 100) throws -> (Int, Int) {
        let sheet = try content()
        let fast = try SheetRenderer(directPDF: false).renderPDF([sheet], template: try SheetTemplate(path: path))
        let reference = try SheetRenderer().renderPDF([sheet], template: try SheetTemplate(path: path, split: false))
        let a = try PDFDocument(data: fast).render(page: 0, dpi: dpi)
        let b = try PDFDocument(data: reference).render(page: 0, dpi: dpi)
        #expect(a.width == b.width && a.height == b.height)
        let differing = zip(a.pixels, b.pixels).filter { abs(Int($0) - Int($1)) > 64 }.count
        return (differing, a.pixels.count)
    }

    @Test(arguments: ["standard-letter.svg", "standard-a4.svg"])
    func shippedTemplatesSplitAndMatchLibrsvg(_ file: String) throws {
        let template = try SheetTemplate(path: Self.templates + "/" + file)
        let compiled = try #require(template.compiled)
        #expect(compiled.texts.count >= 8)
        #expect(compiled.staticTexts.count >= 4)
        let (differing, total) = try differingPixels(template.path)
        #expect(differing * 2000 < total, "\(differing) of \(total) pixels differ from librsvg's rendering")
    }

    func write(_ svg: String) throws -> String {
        let directory = NSTemporaryDirectory() + "waybill-compiled-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/t-letter.svg"
        try svg.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static let head = #"<svg xmlns="http://www.w3.org/2000/svg" width="8.5in" height="11in" viewBox="0 0 612 792" font-family="DejaVu Sans" font-size="12">"#
        + ##"<rect width="612" height="792" fill="#fff"/>"##
        + #"<rect id="waybill-qr" x="430" y="60" width="130" height="130" fill="none"/>"#
        + #"<rect id="waybill-code128" x="90" y="640" width="470" height="54" fill="none"/>"#

    @Test func transformsAnchorsSpansAndStylesMatchLibrsvg() throws {
        let path = try write(
            Self.head + """
                <g transform="translate(40 20) scale(1.5)" fill="#0B4F8A" font-weight="bold">
                  <text x="10" y="40" text-anchor="start">{{title}}</text>
                  <text x="260" y="80" text-anchor="middle" letter-spacing="2">{{id_display}}</text>
                </g>
                <text x="560" y="300" text-anchor="end" style="font-style:italic;font-size:14px">Owner <tspan font-family="DejaVu Sans Mono">{{owner}}</tspan></text>
                <text x="60" y="340" font-family="DejaVu Sans Mono">{{#destinations}}<tspan x="60" dy="18">{{text}}</tspan>{{/destinations}}</text>
                <text x="60" y="460">   {{notes}}   </text>
                <text x="60" y="500" xml:space="preserve">A  B   {{uses}}</text>
                <text x="300" y="560" transform="rotate(-10 300 560)" font-stretch="condensed">Static {{expiry}}</text>
                </svg>
                """)
        let template = try SheetTemplate(path: path)
        #expect(template.compiled?.texts.count == 7)
        let (differing, total) = try differingPixels(path, dpi: 100)
        #expect(differing * 1000 < total, "\(differing) of \(total) pixels differ from librsvg's rendering")
    }

    @Test func unsupportedPlaceholderTextFallsBackToLibrsvg() throws {
        let cases = [
            #"<g opacity="0.5"><text x="10" y="40">{{title}}</text></g>"#,
            #"<text x="10 20 30" y="40">{{title}}</text>"#,
            #"<text x="10" y="40" transform="skewX(10)">{{title}}</text>"#,
            #"<text x="10" y="40"><tspan><tspan>{{title}}</tspan></tspan></text>"#,
            #"<text x="10" y="40" stroke="red">{{title}}</text>"#,
            #"{{#notes}}<text x="10" y="40">{{notes}}</text>{{/notes}}"#,
            #"<title>{{title}}</title>"#,
        ]
        for body in cases {
            let path = try write(Self.head + body + "</svg>")
            let template = try SheetTemplate(path: path)
            #expect(template.compiled == nil, "\(body) should not split")
            // The fallback still renders, and both codes still read.
            let pdf = try SheetRenderer().renderPDF([try content()], template: template)
            #expect(try BarcodeScanner().scan(PDFDocument(data: pdf).render(page: 0, dpi: 150)).count == 2)
        }
    }

    @Test func staticTextOutsideTheFastPathStaysWithLibrsvg() throws {
        let path = try write(Self.head + #"<g opacity="0.5"><text x="10" y="40">Static</text></g><text x="10" y="80">{{title}}</text></svg>"#)
        let compiled = try #require(try SheetTemplate(path: path).compiled)
        #expect(compiled.texts.count == 1)
        #expect(compiled.staticTexts.isEmpty)
        #expect(String(decoding: compiled.staticSVG, as: UTF8.self).contains("Static"))
    }

    @Test func fragmentsAndWhiteSpace() throws {
        let runs = try TextFragment.parse(#"Hi &amp; &#39;you&#x27; <tspan x="5" dy="1.5">a&lt;b</tspan> tail"#)
        #expect(runs.map(\.text) == ["Hi & 'you' ", "a<b", " tail"])
        #expect(runs[1].attributes.map(\.0) == ["x", "dy"])
        #expect(throws: TextFragment.Failure.self) { _ = try TextFragment.parse("<b>x</b>") }
        #expect(throws: TextFragment.Failure.self) { _ = try TextFragment.parse("<tspan>x") }
        #expect(throws: TextFragment.Failure.self) { _ = try TextFragment.parse("&bogus;") }
        #expect(TextDrawing.collapseWhiteSpace(["  a \n b  ", "  c  "], preserve: false) == ["a b ", "c"])
        #expect(TextDrawing.collapseWhiteSpace(["a\tb\n"], preserve: true) == ["a b "])
    }

    @Test func transforms() throws {
        let t = try #require(Affine.parse("translate(10, 20) scale(2)"))
        #expect(t == Affine(a: 2, d: 2, e: 10, f: 20))
        #expect(Affine.parse("matrix(1 0 0 1 5 6)") == Affine(e: 5, f: 6))
        let r = try #require(Affine.parse("rotate(90)"))
        #expect(abs(r.b - 1) < 1e-12 && abs(r.c + 1) < 1e-12)
        #expect(Affine.parse("skewX(3)") == nil)
        #expect(Affine.parse("translate(1") == nil)
    }
}
