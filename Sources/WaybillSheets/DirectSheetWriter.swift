import CPango
import CRsvg
import CZlib
import Foundation
import WaybillCore

/// Writes routing-sheet PDFs itself, for compiled templates: what cairo would write, without
/// cairo's per-file work. The template's artwork is drawn once by librsvg onto a cairo PDF
/// surface, and that page's content stream is kept, compressed, as a form every sheet paints.
/// Text is laid out by Pango as on the cairo path, and written as glyph ids of fonts embedded
/// once (`PDFFont`). The two codes are 1-bit image masks, as on the cairo path.
///
/// Why: most of a one-sheet PDF's cost under cairo was per file, not per sheet: subsetting and
/// deflating three font faces (about 30 KB) and replaying the artwork. Here a file costs its
/// own text, two small images and copying bytes made once.
///
/// Anything this writer does not reproduce exactly makes `render` return nil, and the caller
/// uses cairo: artwork whose page needs resources other than graphics states (images,
/// gradients, text librsvg drew), text outside the fonts' palette (`PDFFont.palette`) or that
/// Pango shapes into glyphs with offsets or without a character of their own (ligatures, marks),
/// and translucent text.
///
/// Not `Sendable`, like `SheetRenderer`, which owns it: Pango and HarfBuzz objects.
final class DirectSheetWriter {
    private let fontMap: UnsafeMutablePointer<PangoFontMap>
    private let text: TextDrawing
    /// HarfBuzz faces seen, to their index in `fonts` (nil where a face could not be subset).
    /// Each key holds a reference to its face, so no other face can take its address.
    private var faceIndex: [OpaquePointer: Int?] = [:]
    private var fonts: [PDFFont] = []
    /// The fonts this writer has embedded so far, in resource order (for tests).
    var embeddedFonts: [PDFFont] { fonts }
    private let deflater = Deflater()
    /// Per template path: its page, or nil when this writer cannot draw it.
    private var pages: [String: StaticPage?] = [:]

    struct StaticPage {
        let width: Double
        let height: Double
        /// The artwork's content stream as cairo deflated it, and its resources (a dictionary
        /// of graphics states only, written inline).
        let art: [UInt8]
        let artResources: String
        /// The template's static text, as operators, and the fonts they use.
        let text: [UInt8]
        let fonts: Set<Int>
        let qrBox: RsvgRectangle
        let code128Box: RsvgRectangle
        let viewport: Affine
    }

    /// Why the fast path declined; for the tests and the log.
    private(set) var lastDeclined: String?

    init() {
        fontMap = UnsafeMutableRawPointer(pango_cairo_font_map_new()!).assumingMemoryBound(to: PangoFontMap.self)
        text = TextDrawing(fontMap: fontMap)
    }

    deinit {
        for face in faceIndex.keys { hb_face_destroy(face) }
        g_object_unref(UnsafeMutableRawPointer(fontMap))
    }

    private struct Declined: Error {
        let reason: String
    }

    /// One PDF, one page per sheet; nil if this writer cannot draw them (see the type's notes).
    func render(
        _ sheets: [SheetContent], compiled: CompiledTemplate, template: SheetTemplate, layout: SheetRenderer.Layout,
        encoder: BarcodeEncoder
    ) throws(WaybillError) -> [UInt8]? {
        do {
            guard let page = try staticPage(compiled, template: template, layout: layout) else { return nil }
            var contents: [[UInt8]] = []
            var codes: [(qr: ModuleMatrix, code128: ModuleMatrix)] = []
            var used = page.fonts
            for sheet in sheets {
                var content: [UInt8] = Array("q /Art Do Q\n".utf8)
                content += page.text
                let values = sheet.templateValues
                for element in compiled.texts {
                    let runs = try text.place(element, values: values, template: template.path)
                    try emit(runs, transform: page.viewport.concatenating(element.transform), height: page.height, into: &content, fonts: &used)
                }
                let token = sheet.token.description
                let qr = try encoder.qrCode(token)
                let code128 = try encoder.code128(token)
                try drawCodes(qr: qr, code128: code128, page: page, template: template, into: &content)
                contents.append(content)
                codes.append((qr, code128))
            }
            lastDeclined = nil
            return try assemble(page: page, contents: contents, codes: codes, fonts: used.sorted())
        } catch let declined as Declined {
            lastDeclined = declined.reason
            return nil
        } catch let error as WaybillError {
            throw error
        } catch {
            throw WaybillError(.renderFailed, "cannot write the sheet PDF: \(error)")
        }
    }

    // MARK: The template's page, made once

    private func staticPage(_ compiled: CompiledTemplate, template: SheetTemplate, layout: SheetRenderer.Layout) throws -> StaticPage? {
        if let cached = pages[template.path] { return cached }
        let page: StaticPage?
        do {
            page = try makeStaticPage(compiled, template: template, layout: layout)
        } catch let declined as Declined {
            lastDeclined = declined.reason
            page = nil
        }
        pages[template.path] = page
        return page
    }

    private func makeStaticPage(_ compiled: CompiledTemplate, template: SheetTemplate, layout: SheetRenderer.Layout) throws -> StaticPage {
        let pdf = try SheetRenderer.renderArtwork(compiled, template: template, width: layout.width, height: layout.height)
        let (art, resources) = try Self.pageContent(of: pdf)
        var text: [UInt8] = []
        var fonts = Set<Int>()
        for element in compiled.staticTexts {
            let runs = try self.text.place(element, values: [:], template: template.path)
            try emit(runs, transform: layout.viewport.concatenating(element.transform), height: layout.height, into: &text, fonts: &fonts)
        }
        return StaticPage(
            width: layout.width, height: layout.height, art: art, artResources: resources, text: text, fonts: fonts,
            qrBox: layout.qrBox, code128Box: layout.code128Box, viewport: layout.viewport)
    }

    /// The first page's content stream (still deflated) and resources of a PDF cairo wrote.
    /// Declines resources that refer to other objects: only inline graphics states are copied.
    static func pageContent(of pdf: [UInt8]) throws -> ([UInt8], String) {
        func find(_ text: String, from start: Int = 0) -> Int? {
            let pattern = Array(text.utf8)
            guard pdf.count >= pattern.count, start <= pdf.count - pattern.count else { return nil }
            var index = start
            while index <= pdf.count - pattern.count {
                if pdf[index] == pattern[0] && pdf[index..<index + pattern.count].elementsEqual(pattern) { return index }
                index += 1
            }
            return nil
        }
        func integer(at start: Int) -> (Int, Int)? {
            var index = start
            while index < pdf.count, pdf[index] == 0x20 || pdf[index] == 0x0A || pdf[index] == 0x0D { index += 1 }
            var value = 0
            let first = index
            while index < pdf.count, (0x30...0x39).contains(pdf[index]) {
                value = value * 10 + Int(pdf[index] - 0x30)
                index += 1
            }
            return index > first ? (value, index) : nil
        }
        func reference(after key: String, from start: Int) -> Int? {
            guard let at = find(key, from: start), let (number, end) = integer(at: at + key.utf8.count),
                pdf[end..<min(end + 4, pdf.count)].elementsEqual(" 0 R".utf8)
            else { return nil }
            return number
        }
        func object(_ number: Int) -> Int? {
            // Objects start on a line of their own.
            find("\n\(number) 0 obj").map { $0 + "\n\(number) 0 obj".utf8.count }
        }
        guard let page = find("/Type /Page "), let contents = reference(after: "/Contents ", from: page),
            let resourcesNumber = reference(after: "/Resources ", from: page), let content = object(contents),
            let resources = object(resourcesNumber), let resourcesEnd = find("endobj", from: resources),
            let dictionaryEnd = find(">>", from: content), let streamStart = find("stream\n", from: dictionaryEnd)
        else { throw Declined(reason: "the artwork PDF has an unexpected layout") }
        let dictionary = String(decoding: pdf[content..<dictionaryEnd], as: UTF8.self)
        guard dictionary.contains("/Filter /FlateDecode"), let lengthKey = find("/Length ", from: content), lengthKey < dictionaryEnd,
            let (lengthValue, lengthEnd) = integer(at: lengthKey + 8)
        else { throw Declined(reason: "the artwork's content stream is not deflated") }
        var length = lengthValue
        if pdf[lengthEnd..<min(lengthEnd + 4, pdf.count)].elementsEqual(" 0 R".utf8) {
            guard let lengthObject = object(lengthValue), let (value, _) = integer(at: lengthObject) else {
                throw Declined(reason: "the artwork's stream length is missing")
            }
            length = value
        }
        let bodyStart = streamStart + 7
        guard bodyStart + length <= pdf.count else { throw Declined(reason: "the artwork's content stream is cut short") }
        let text = String(decoding: pdf[resources..<resourcesEnd], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix("<<"), text.range(of: #"\d+ \d+ R"#, options: .regularExpression) == nil,
            !text.contains("/Font"), !text.contains("/XObject"), !text.contains("/Pattern"), !text.contains("/Shading")
        else { throw Declined(reason: "the artwork needs resources this writer does not copy") }
        return (Array(pdf[bodyStart..<bodyStart + length]), text)
    }

    // MARK: Text

    /// Writes Pango's glyphs at Pango's positions: one `TJ` per run, with an adjustment wherever
    /// Pango's advance (kerning, letter spacing) differs from the font's width.
    private func emit(_ runs: [TextDrawing.Placed], transform: Affine, height: Double, into out: inout [UInt8], fonts used: inout Set<Int>)
        throws
    {
        guard runs.contains(where: { $0.style.fill != nil }) else { return }
        // Element space to PDF space: the element's transform, then the page flipped (PDF's y is up).
        let matrix = Affine(a: 1, b: 0, c: 0, d: -1, e: 0, f: height).concatenating(transform)
        out.append(contentsOf: "q ".utf8)
        for value in [matrix.a, matrix.b, matrix.c, matrix.d, matrix.e, matrix.f] {
            PDFNumber.append(value, to: &out)
            out.append(0x20)
        }
        out.append(contentsOf: "cm\n".utf8)
        for run in runs {
            guard let fill = run.style.fill else { continue }
            guard run.style.fillOpacity >= 1 else { throw Declined(reason: "translucent text") }
            for value in [fill.red, fill.green, fill.blue] {
                PDFNumber.append(value, to: &out)
                out.append(0x20)
            }
            out.append(contentsOf: "rg\n".utf8)
            try emitLayout(run, into: &out, fonts: &used)
        }
        out.append(contentsOf: "Q\n".utf8)
    }

    private func emitLayout(_ run: TextDrawing.Placed, into out: inout [UInt8], fonts used: inout Set<Int>) throws {
        guard let iterator = pango_layout_get_iter(run.layout) else { throw Declined(reason: "Pango gave no layout iterator") }
        defer { pango_layout_iter_free(iterator) }
        let scale = Double(PANGO_SCALE)
        repeat {
            guard let glyphItem = pango_layout_iter_get_run_readonly(iterator) else { continue }
            guard glyphItem.pointee.y_offset == 0, let item = glyphItem.pointee.item, let glyphs = glyphItem.pointee.glyphs,
                let pangoFont = item.pointee.analysis.font
            else { throw Declined(reason: "a text run Pango cannot describe plainly") }
            let index = try font(for: pangoFont)
            let font = fonts[index]
            used.insert(index)
            guard let description = pango_font_describe_with_absolute_size(pangoFont) else { throw Declined(reason: "a font without a size") }
            let size = Double(pango_font_description_get_size(description)) / scale
            pango_font_description_free(description)
            guard size > 0 else { throw Declined(reason: "a font without a size") }
            var logical = PangoRectangle()
            pango_layout_iter_get_run_extents(iterator, nil, &logical)
            let baseline = Double(pango_layout_iter_get_baseline(iterator)) / scale
            out.append(contentsOf: "BT /F\(index) ".utf8)
            PDFNumber.append(size, to: &out)
            out.append(contentsOf: " Tf 1 0 0 -1 ".utf8)
            PDFNumber.append(run.x + Double(logical.x) / scale, to: &out)
            out.append(0x20)
            PDFNumber.append(run.y + baseline, to: &out)
            out.append(contentsOf: " Tm [".utf8)
            // Where Pango puts each glyph (its pen position plus its offset; letter spacing is
            // half an offset, half an advance) against where the PDF's text position stands
            // after the last glyph's width: the difference is the TJ adjustment before it.
            var pen = 0.0
            var current = 0.0
            let count = Int(glyphs.pointee.num_glyphs)
            for position in 0..<count {
                let info = glyphs.pointee.glyphs[position]
                defer { pen += Double(info.geometry.width) / scale }
                if info.glyph == PANGO_GLYPH_EMPTY { continue }
                guard info.glyph & PANGO_GLYPH_UNKNOWN_FLAG == 0, info.geometry.y_offset == 0, let width = font.widths[info.glyph] else {
                    throw Declined(reason: "a glyph outside the embedded palette")
                }
                let target = pen + Double(info.geometry.x_offset) / scale
                if abs(target - current) >= 0.0001 {
                    PDFNumber.append((current - target) * 1000 / size, to: &out)
                }
                out.append(0x3C)  // <
                PDFNumber.appendHex4(info.glyph, to: &out)
                out.append(0x3E)  // >
                current = target + width * size / 1000
            }
            out.append(contentsOf: "] TJ ET\n".utf8)
        } while pango_layout_iter_next_run(iterator) != 0
    }

    private func font(for pangoFont: UnsafeMutablePointer<PangoFont>) throws -> Int {
        guard let hbFont = pango_font_get_hb_font(pangoFont), let face = hb_font_get_face(hbFont) else {
            throw Declined(reason: "a font HarfBuzz cannot read")
        }
        if let known = faceIndex[face] {
            guard let known else { throw Declined(reason: "a font HarfBuzz cannot subset") }
            return known
        }
        hb_face_reference(face)
        guard let font = PDFFont.make(face: face) else {
            faceIndex[face] = .some(nil)
            throw Declined(reason: "a font HarfBuzz cannot subset")
        }
        fonts.append(font)
        faceIndex[face] = fonts.count - 1
        return fonts.count - 1
    }

    // MARK: Codes

    private func drawCodes(qr: ModuleMatrix, code128: ModuleMatrix, page: StaticPage, template: SheetTemplate, into out: inout [UInt8])
        throws(WaybillError)
    {
        let qrPlace = try SheetRenderer.qrPlacement(qr, in: page.qrBox, template: template)
        let barPlace = try SheetRenderer.code128Placement(code128, in: page.code128Box, template: template)
        func rectangle(_ x: Double, _ top: Double, _ width: Double, _ height: Double) {
            for value in [x, page.height - top - height, width, height] {
                PDFNumber.append(value, to: &out)
                out.append(0x20)
            }
        }
        // White under each code, then the stencil painted black (image space: first row on top).
        out.append(contentsOf: "1 1 1 rg ".utf8)
        rectangle(qrPlace.background.x, qrPlace.background.y, qrPlace.background.width, qrPlace.background.height)
        out.append(contentsOf: "re f ".utf8)
        rectangle(barPlace.background.x, barPlace.background.y, barPlace.background.width, barPlace.background.height)
        out.append(contentsOf: "re f\n".utf8)
        for (name, place) in [("Qr", qrPlace.code), ("Bc", barPlace.code)] {
            out.append(contentsOf: "q 0 0 0 rg ".utf8)
            for value in [place.width, 0, 0, place.height, place.x, page.height - place.y - place.height] {
                PDFNumber.append(value, to: &out)
                out.append(0x20)
            }
            out.append(contentsOf: "cm /\(name) Do Q\n".utf8)
        }
    }

    /// The first `rows` rows of the matrix as image-mask bits, `pixelsPerModule` pixels a module,
    /// 1 for dark, rows padded to a byte.
    static func maskBits(_ matrix: ModuleMatrix, rows: Int, pixelsPerModule: Int) -> [UInt8] {
        let width = matrix.columns * pixelsPerModule
        let stride = (width + 7) / 8
        var bits = [UInt8](repeating: 0, count: stride * rows)
        for row in 0..<rows {
            for column in 0..<matrix.columns where matrix[row, column] {
                for pixel in column * pixelsPerModule..<(column + 1) * pixelsPerModule {
                    bits[row * stride + pixel / 8] |= 0x80 >> UInt8(pixel % 8)
                }
            }
        }
        return bits
    }

    // MARK: The file

    private func assemble(page: StaticPage, contents: [[UInt8]], codes: [(qr: ModuleMatrix, code128: ModuleMatrix)], fonts used: [Int])
        throws -> [UInt8]
    {
        var pdf = PDFFile()
        let catalog = pdf.reserve()
        let pages = pdf.reserve()
        let art = pdf.reserve()
        var fontObjects: [(index: Int, object: Int)] = []
        for index in used { fontObjects.append((index, pdf.reserve())) }
        let pageObjects = contents.map { _ in pdf.reserve() }

        pdf.object(catalog, "<< /Type /Catalog /Pages \(pages) 0 R >>")
        let kids = pageObjects.map { "\($0) 0 R" }.joined(separator: " ")
        pdf.object(pages, "<< /Type /Pages /Kids [\(kids)] /Count \(pageObjects.count) >>")
        let box = "[0 0 \(PDFNumber.text(page.width)) \(PDFNumber.text(page.height))]"
        pdf.stream(
            art, "/Type /XObject /Subtype /Form /BBox \(box) /Resources \(page.artResources) /Filter /FlateDecode", page.art)
        for (index, object) in fontObjects {
            let font = fonts[index]
            let descendant = pdf.reserve()
            let descriptor = pdf.reserve()
            let file = pdf.reserve()
            let toUnicode = pdf.reserve()
            pdf.object(
                object,
                "<< /Type /Font /Subtype /Type0 /BaseFont /\(font.baseFont) /Encoding /Identity-H /DescendantFonts [\(descendant) 0 R] /ToUnicode \(toUnicode) 0 R >>"
            )
            pdf.object(
                descendant,
                """
                << /Type /Font /Subtype /CIDFontType2 /BaseFont /\(font.baseFont) \
                /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /FontDescriptor \(descriptor) 0 R \
                /DW 0 /W \(font.widthArray) /CIDToGIDMap /Identity >>
                """)
            pdf.object(descriptor, "<< \(font.descriptor) /FontFile2 \(file) 0 R >>")
            pdf.stream(file, "/Filter /FlateDecode /Length1 \(font.fontFileLength)", font.fontFile)
            pdf.stream(toUnicode, "/Filter /FlateDecode", font.toUnicode)
        }
        let fontResources = fontObjects.map { "/F\($0.index) \($0.object) 0 R" }.joined(separator: " ")
        for (number, (content, code)) in zip(pageObjects, zip(contents, codes)) {
            let stream = pdf.reserve()
            let qr = pdf.reserve()
            let bars = pdf.reserve()
            pdf.object(
                number,
                """
                << /Type /Page /Parent \(pages) 0 R /MediaBox \(box) /Contents \(stream) 0 R \
                /Resources << /XObject << /Art \(art) 0 R /Qr \(qr) 0 R /Bc \(bars) 0 R >> /Font << \(fontResources) >> >> \
                /Group << /Type /Group /S /Transparency /I true /CS /DeviceRGB >> >>
                """)
            guard let deflated = deflater.deflate(content) else { throw WaybillError(.renderFailed, "zlib could not compress a page") }
            pdf.stream(stream, "/Filter /FlateDecode", deflated)
            // The QR: one pixel a module, scaled sharp. The Code 128: one row, 8 pixels a module,
            // interpolated (see `SheetRenderer.drawCode128`).
            pdf.stream(
                qr,
                "/Type /XObject /Subtype /Image /ImageMask true /Width \(code.qr.columns) /Height \(code.qr.rows) /BitsPerComponent 1 /Decode [1 0] /Interpolate false",
                Self.maskBits(code.qr, rows: code.qr.rows, pixelsPerModule: 1))
            let pixels = SheetRenderer.code128StencilPixelsPerModule
            pdf.stream(
                bars,
                "/Type /XObject /Subtype /Image /ImageMask true /Width \(code.code128.columns * pixels) /Height 1 /BitsPerComponent 1 /Decode [1 0] /Interpolate true",
                Self.maskBits(code.code128, rows: 1, pixelsPerModule: pixels))
        }
        let info = pdf.reserve()
        pdf.object(info, "<< /Creator (Waybill) /Producer (Waybill) /Title (Waybill routing sheets) >>")
        return pdf.finish(root: catalog, info: info)
    }
}

/// A PDF file being written: objects in any order, the cross-reference table at the end.
struct PDFFile {
    private(set) var bytes: [UInt8] = Array("%PDF-1.7\n%\u{E2}\u{E3}\u{CF}\u{D3}\n".utf8)
    private var offsets: [Int] = [0]

    init() {
        bytes.reserveCapacity(64 * 1024)
    }

    /// A number for an object written later.
    mutating func reserve() -> Int {
        offsets.append(-1)
        return offsets.count - 1
    }

    mutating func object(_ number: Int, _ body: String) {
        offsets[number] = bytes.count
        bytes.append(contentsOf: "\(number) 0 obj\n\(body)\nendobj\n".utf8)
    }

    mutating func stream(_ number: Int, _ dictionary: String, _ data: [UInt8]) {
        offsets[number] = bytes.count
        bytes.append(contentsOf: "\(number) 0 obj\n<< \(dictionary) /Length \(data.count) >>\nstream\n".utf8)
        bytes += data
        bytes.append(contentsOf: "\nendstream\nendobj\n".utf8)
    }

    mutating func finish(root: Int, info: Int) -> [UInt8] {
        let start = bytes.count
        var table = "xref\n0 \(offsets.count)\n0000000000 65535 f \n"
        for offset in offsets.dropFirst() {
            let digits = String(max(offset, 0))
            table += String(repeating: "0", count: max(0, 10 - digits.count)) + digits + " 00000 n \n"
        }
        table += "trailer\n<< /Size \(offsets.count) /Root \(root) 0 R /Info \(info) 0 R >>\nstartxref\n\(start)\n%%EOF\n"
        bytes += Array(table.utf8)
        return bytes
    }
}
