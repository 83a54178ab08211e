import CPango
import Dispatch
import Synchronization
import CRsvg
public import Foundation
public import WaybillCore

/// Renders routing sheets: the template as vectors through librsvg onto a cairo PDF surface,
/// then the QR and Code 128 as 1-bit stencils into the boxes the template marks.
///
/// Not `Sendable`: it owns C handles (zint symbols, cached geometry) used by one task at a time.
/// Make one per worker; they share nothing.
public final class SheetRenderer {
    /// QR modules smaller than this do not survive a 100-dpi scan.
    public static let minimumQRModule = 3.0
    /// Code 128 quiet zone, in modules, on each side (ISO/IEC 15417 asks for 10).
    static let code128QuietModules = 10.0
    static let qrQuietModules = 4.0

    private let encoder: BarcodeEncoder
    private var layouts: [String: Layout] = [:]
    /// The writer for compiled templates; nil renders everything through cairo.
    private let direct: DirectSheetWriter?

    struct Layout {
        var width: Double
        var height: Double
        var qrBox: RsvgRectangle
        var code128Box: RsvgRectangle
        /// The viewBox mapping: SVG user space to points.
        var viewport: Affine = .identity
        /// A compiled template's static artwork, recorded once. Painted as a source, cairo writes
        /// it into a PDF once as a form XObject that every page refers to.
        var staticLayer: OpaquePointer?
    }

    /// `directPDF`: write compiled templates' PDFs with `DirectSheetWriter` (the default) rather
    /// than cairo; both draw the same sheet (`SheetWriterTests` compares them).
    public init(directPDF: Bool = true) throws(WaybillError) {
        encoder = try BarcodeEncoder()
        direct = directPDF ? DirectSheetWriter() : nil
    }

    /// Why the last render did not use the direct writer, if it declined; nil when it did.
    var directDeclined: String? { direct?.lastDeclined }
    var embeddedFonts: [PDFFont] { direct?.embeddedFonts ?? [] }

    deinit {
        for layout in layouts.values { if let surface = layout.staticLayer { cairo_surface_destroy(surface) } }
    }

    /// Renders one page per sheet into a PDF file at `path`, written to a temporary file beside it
    /// and renamed into place only when complete: on any error the destination is untouched.
    public func renderPDF(_ sheets: [SheetContent], template: SheetTemplate, to path: String) throws(WaybillError) {
        guard !sheets.isEmpty else { throw WaybillError(.renderFailed, "no sheets to render") }
        let temporary = (path as NSString).deletingLastPathComponent.isEmpty
            ? ".\(UUID().uuidString).pdf.tmp"
            : (path as NSString).deletingLastPathComponent + "/.\(UUID().uuidString).pdf.tmp"
        do throws(WaybillError) {
            if let bytes = try renderDirect(sheets, template: template) {
                try Self.write(bytes, to: temporary)
            } else {
                guard let surface = cairo_pdf_surface_create(temporary, 612, 792) else {
                    throw WaybillError(.ioError, "cannot create \(temporary)")
                }
                try render(sheets, template: template, surface: surface)
            }
            guard rename(temporary, path) == 0 else {
                throw WaybillError(.ioError, "cannot write \(path): \(String(cString: strerror(errno)))")
            }
        } catch {
            unlink(temporary)
            throw error
        }
    }

    /// Renders into memory (for the web app and tests).
    public func renderPDF(_ sheets: [SheetContent], template: SheetTemplate) throws(WaybillError) -> Data {
        guard !sheets.isEmpty else { throw WaybillError(.renderFailed, "no sheets to render") }
        if let bytes = try renderDirect(sheets, template: template) { return Data(bytes) }
        return try Self.cairoPDF(width: 612, height: 792) { surface throws(WaybillError) in
            try render(sheets, template: template, surface: surface)
        }
    }

    private func renderDirect(_ sheets: [SheetContent], template: SheetTemplate) throws(WaybillError) -> [UInt8]? {
        guard let direct, let compiled = template.compiled else { return nil }
        let layout = try staticLayout(compiled, template: template)
        return try direct.render(sheets, compiled: compiled, template: template, layout: layout, encoder: encoder)
    }

    private static func write(_ bytes: [UInt8], to path: String) throws(WaybillError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw WaybillError(.ioError, "cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                throw WaybillError(.ioError, "cannot write \(path): \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }

    /// A cairo PDF surface writing into memory, handed to `draw` (which must finish or destroy it).
    static func cairoPDF(width: Double, height: Double, _ draw: (OpaquePointer) throws(WaybillError) -> Void) throws(WaybillError) -> Data {
        let sink = PDFSink()
        let context = Unmanaged.passUnretained(sink).toOpaque()
        let surface = cairo_pdf_surface_create_for_stream(
            { closure, data, length in
                guard let closure, let data else { return CAIRO_STATUS_WRITE_ERROR }
                Unmanaged<PDFSink>.fromOpaque(closure).takeUnretainedValue().bytes.append(data, count: Int(length))
                return CAIRO_STATUS_SUCCESS
            }, context, width, height)
        guard let surface else { throw WaybillError(.renderFailed, "cairo could not create a PDF surface") }
        try withExtendedLifetime(sink) { () throws(WaybillError) in
            try draw(surface)
        }
        return sink.bytes
    }

    /// A compiled template's artwork (its text taken out) loaded by librsvg at 72 dpi; the caller unrefs it.
    static func artworkHandle(_ compiled: CompiledTemplate, template: SheetTemplate) throws(WaybillError) -> UnsafeMutablePointer<RsvgHandle> {
        var error: UnsafeMutablePointer<GError>?
        let handle = compiled.staticSVG.withUnsafeBytes {
            rsvg_handle_new_from_data($0.baseAddress?.assumingMemoryBound(to: UInt8.self), gsize($0.count), &error)
        }
        guard let handle else {
            throw WaybillError(.templateMalformed, "template \(template.path) is not valid SVG: \(Self.take(error))")
        }
        rsvg_handle_set_dpi(handle, 72)
        return handle
    }

    /// A compiled template's artwork (its text taken out) as a one-page PDF, drawn by librsvg.
    static func renderArtwork(_ compiled: CompiledTemplate, template: SheetTemplate, width: Double, height: Double) throws(WaybillError)
        -> [UInt8]
    {
        let handle = try Self.artworkHandle(compiled, template: template)
        defer { g_object_unref(UnsafeMutableRawPointer(handle)) }
        var error: UnsafeMutablePointer<GError>?
        let data = try cairoPDF(width: width, height: height) { surface throws(WaybillError) in
            defer { cairo_surface_destroy(surface) }
            guard let cr = cairo_create(surface) else { throw WaybillError(.renderFailed, "cairo_create failed") }
            defer { cairo_destroy(cr) }
            var viewport = RsvgRectangle(x: 0, y: 0, width: width, height: height)
            guard rsvg_handle_render_document(handle, cr, &viewport, &error) != 0 else {
                throw WaybillError(.templateMalformed, "template \(template.path) could not be drawn: \(Self.take(error))")
            }
            cairo_show_page(cr)
            cairo_surface_finish(surface)
            try check(cairo_surface_status(surface), "writing the artwork")
        }
        return Array(data)
    }

    private final class PDFSink {
        var bytes = Data()
    }

    /// Draws every sheet and finishes the surface; always destroys it.
    private func render(_ sheets: [SheetContent], template: SheetTemplate, surface: OpaquePointer) throws(WaybillError) {
        defer { cairo_surface_destroy(surface) }
        try Self.check(cairo_surface_status(surface), "creating the PDF")
        cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATOR, "Waybill")
        cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_TITLE, "Waybill routing sheets")
        guard let cr = cairo_create(surface) else { throw WaybillError(.renderFailed, "cairo_create failed") }
        defer { cairo_destroy(cr) }
        let text = TextDrawing(cr: cr)
        for sheet in sheets {
            if let compiled = template.compiled {
                try drawCompiledPage(sheet, compiled: compiled, template: template, surface: surface, cr: cr, text: text)
            } else {
                try drawPage(sheet, template: template, surface: surface, cr: cr)
            }
        }
        cairo_surface_finish(surface)
        try Self.check(cairo_surface_status(surface), "writing the PDF")
    }

    private func drawPage(_ sheet: SheetContent, template: SheetTemplate, surface: OpaquePointer, cr: OpaquePointer)
        throws(WaybillError)
    {
        let svg = Array(template.render(sheet).utf8)
        var error: UnsafeMutablePointer<GError>?
        let handle = svg.withUnsafeBufferPointer { rsvg_handle_new_from_data($0.baseAddress, gsize($0.count), &error) }
        guard let handle else {
            throw WaybillError(.templateMalformed, "template \(template.path) is not valid SVG: \(Self.take(error))")
        }
        defer { g_object_unref(UnsafeMutableRawPointer(handle)) }
        rsvg_handle_set_dpi(handle, 72)
        let layout = try layout(of: handle, template: template)
        cairo_pdf_surface_set_size(surface, layout.width, layout.height)
        var viewport = RsvgRectangle(x: 0, y: 0, width: layout.width, height: layout.height)
        guard rsvg_handle_render_document(handle, cr, &viewport, &error) != 0 else {
            throw WaybillError(.templateMalformed, "template \(template.path) could not be drawn: \(Self.take(error))")
        }
        let token = sheet.token.description
        try drawQR(encoder.qrCode(token), in: layout.qrBox, cr: cr, template: template)
        try drawCode128(encoder.code128(token), in: layout.code128Box, cr: cr, template: template)
        cairo_show_page(cr)
        try Self.check(cairo_status(cr), "drawing the sheet")
    }

    /// The fast path: static artwork painted from its recording, placeholder text by Pango.
    private func drawCompiledPage(
        _ sheet: SheetContent, compiled: CompiledTemplate, template: SheetTemplate, surface: OpaquePointer,
        cr: OpaquePointer, text: TextDrawing
    ) throws(WaybillError) {
        let layout = try staticLayout(compiled, template: template)
        cairo_pdf_surface_set_size(surface, layout.width, layout.height)
        cairo_set_source_surface(cr, layout.staticLayer, 0, 0)
        cairo_paint(cr)
        let values = sheet.templateValues
        for element in compiled.texts {
            try text.draw(element, values: values, viewport: layout.viewport, template: template.path)
        }
        let token = sheet.token.description
        try drawQR(encoder.qrCode(token), in: layout.qrBox, cr: cr, template: template)
        try drawCode128(encoder.code128(token), in: layout.code128Box, cr: cr, template: template)
        cairo_show_page(cr)
        try Self.check(cairo_status(cr), "drawing the sheet")
    }

    private func staticLayout(_ compiled: CompiledTemplate, template: SheetTemplate) throws(WaybillError) -> Layout {
        if let cached = layouts[template.path] { return cached }
        let handle = try Self.artworkHandle(compiled, template: template)
        defer { g_object_unref(UnsafeMutableRawPointer(handle)) }
        var error: UnsafeMutablePointer<GError>?
        var layout = try measure(handle, template: template)
        var hasWidth: gboolean = 0
        var hasHeight: gboolean = 0
        var hasViewBox: gboolean = 0
        var width = RsvgLength()
        var height = RsvgLength()
        var viewBox = RsvgRectangle()
        rsvg_handle_get_intrinsic_dimensions(handle, &hasWidth, &width, &hasHeight, &height, &hasViewBox, &viewBox)
        if hasViewBox != 0, viewBox.width > 0, viewBox.height > 0 {
            // preserveAspectRatio="xMidYMid meet", the default and the only one the split admits.
            let scale = min(layout.width / viewBox.width, layout.height / viewBox.height)
            layout.viewport = Affine(
                a: scale, d: scale, e: (layout.width - viewBox.width * scale) / 2 - viewBox.x * scale,
                f: (layout.height - viewBox.height * scale) / 2 - viewBox.y * scale)
        }
        var extents = cairo_rectangle_t(x: 0, y: 0, width: layout.width, height: layout.height)
        guard let recording = cairo_recording_surface_create(CAIRO_CONTENT_COLOR_ALPHA, &extents) else {
            throw WaybillError(.renderFailed, "cairo could not create a recording surface")
        }
        let cr = cairo_create(recording)!
        defer { cairo_destroy(cr) }
        var viewport = RsvgRectangle(x: 0, y: 0, width: layout.width, height: layout.height)
        guard rsvg_handle_render_document(handle, cr, &viewport, &error) != 0 else {
            cairo_surface_destroy(recording)
            throw WaybillError(.templateMalformed, "template \(template.path) could not be drawn: \(Self.take(error))")
        }
        do throws(WaybillError) {
            let text = TextDrawing(cr: cr)
            for element in compiled.staticTexts {
                try text.draw(element, values: [:], viewport: layout.viewport, template: template.path)
            }
        } catch {
            cairo_surface_destroy(recording)
            throw error
        }
        layout.staticLayer = recording
        layouts[template.path] = layout
        return layout
    }

    /// Page size and code boxes depend only on the template, so they are measured once.
    private func layout(of handle: UnsafeMutablePointer<RsvgHandle>, template: SheetTemplate) throws(WaybillError) -> Layout {
        if let cached = layouts[template.path] { return cached }
        let layout = try measure(handle, template: template)
        layouts[template.path] = layout
        return layout
    }

    private func measure(_ handle: UnsafeMutablePointer<RsvgHandle>, template: SheetTemplate) throws(WaybillError) -> Layout {
        var width = 0.0
        var height = 0.0
        guard rsvg_handle_get_intrinsic_size_in_pixels(handle, &width, &height) != 0, width > 0, height > 0 else {
            throw WaybillError(.templateMalformed, "template \(template.path) needs an absolute width and height (such as 8.5in)")
        }
        var viewport = RsvgRectangle(x: 0, y: 0, width: width, height: height)
        func box(_ id: String) throws(WaybillError) -> RsvgRectangle {
            var ink = RsvgRectangle()
            var logical = RsvgRectangle()
            var error: UnsafeMutablePointer<GError>?
            guard rsvg_handle_get_geometry_for_layer(handle, "#" + id, &viewport, &ink, &logical, &error) != 0,
                logical.width > 0, logical.height > 0
            else {
                throw WaybillError(.templateMalformed, "template \(template.path): cannot place element #\(id): \(Self.take(error))")
            }
            return logical
        }
        return Layout(
            width: width, height: height, qrBox: try box(SheetTemplate.qrElementID),
            code128Box: try box(SheetTemplate.code128ElementID))
    }

    /// The QR, placed by `qrPlacement`.
    ///
    /// Both codes are drawn as 1-bit stencil masks (`/ImageMask`) painted black: the PDF carries
    /// a few hundred bytes of bits per code instead of hundreds of rectangles. As rectangles the
    /// two codes cost cairo 1.2 of the 2.8 ms a sheet took (number formatting, path replay and
    /// compression); as stencils, almost nothing (`waybill bench sheets --mode single`). The QR
    /// has one pixel per module, scaled sharp: at 3 pt a module is 4 pixels even at 100 dpi.
    private func drawQR(_ matrix: ModuleMatrix, in box: RsvgRectangle, cr: OpaquePointer, template: SheetTemplate)
        throws(WaybillError)
    {
        let place = try Self.qrPlacement(matrix, in: box, template: template)
        paintWhite(place.background, cr: cr)
        // One stencil pixel per module: nearest-neighbour scaling keeps the modules square.
        try paintStencil(
            matrix, pixelsPerModule: 1, x: place.code.x, y: place.code.y, width: place.code.width, height: place.code.height, cr: cr)
    }

    /// Where a code goes: the white area under it (quiet zones included) and the code itself.
    struct Placement {
        var background: RsvgRectangle
        var code: RsvgRectangle
    }

    /// The QR as the largest square that fits the box, quiet zone included.
    static func qrPlacement(_ matrix: ModuleMatrix, in box: RsvgRectangle, template: SheetTemplate) throws(WaybillError) -> Placement {
        let side = min(box.width, box.height)
        let module = side / (Double(matrix.columns) + 2 * qrQuietModules)
        guard module >= minimumQRModule else {
            throw WaybillError(
                .templateMalformed,
                "template \(template.path): the #\(SheetTemplate.qrElementID) box is too small for \(minimumQRModule)-pt QR modules")
        }
        let left = box.x + (box.width - side) / 2
        let top = box.y + (box.height - side) / 2
        return Placement(
            background: RsvgRectangle(x: left, y: top, width: side, height: side),
            code: RsvgRectangle(
                x: left + qrQuietModules * module, y: top + qrQuietModules * module, width: Double(matrix.columns) * module,
                height: Double(matrix.rows) * module))
    }

    /// Code 128 stretched to the box width, quiet zones inside the box, bars the box's full height.
    static func code128Placement(_ matrix: ModuleMatrix, in box: RsvgRectangle, template: SheetTemplate) throws(WaybillError) -> Placement {
        let module = box.width / (Double(matrix.columns) + 2 * code128QuietModules)
        guard module >= 0.9 else {
            throw WaybillError(
                .templateMalformed, "template \(template.path): the #\(SheetTemplate.code128ElementID) box is too narrow for the Code 128")
        }
        return Placement(
            background: box,
            code: RsvgRectangle(x: box.x + code128QuietModules * module, y: box.y, width: Double(matrix.columns) * module, height: box.height))
    }

    /// Code 128 stretched to the box width, quiet zones inside the box, bars the box's full height.
    private func drawCode128(_ matrix: ModuleMatrix, in box: RsvgRectangle, cr: OpaquePointer, template: SheetTemplate)
        throws(WaybillError)
    {
        let place = try Self.code128Placement(matrix, in: box, template: template)
        paintWhite(place.background, cr: cr)
        // One row, 8 pixels per module, interpolated. 8 pixels is about 600 dpi at this module
        // width, so a printer places bar edges within a device pixel, as it would a vector's. The
        // interpolation matters when a renderer scales down (a 100-dpi preview or test): it
        // averages the edge pixels into grey as it would antialias a vector. Scaled down without
        // it, 1.5-pixel bars round to 1 or 2 and Code 128 stops reading; drawn as a dashed
        // stroke, poppler's stroke adjustment does the same.
        try paintStencil(
            matrix, pixelsPerModule: Self.code128StencilPixelsPerModule, rows: 1, smooth: true, x: place.code.x, y: place.code.y,
            width: place.code.width, height: place.code.height, cr: cr)
    }

    static let code128StencilPixelsPerModule = 8

    /// Paints the dark modules of `matrix` (its first `rows` rows) black into the rectangle, as a
    /// 1-bit stencil of `pixelsPerModule` horizontal pixels per module, scaled with interpolation
    /// when `smooth` and sharp (nearest neighbour) otherwise.
    private func paintStencil(
        _ matrix: ModuleMatrix, pixelsPerModule: Int, rows: Int? = nil, smooth: Bool = false, x: Double, y: Double,
        width: Double, height: Double, cr: OpaquePointer
    ) throws(WaybillError) {
        let rows = rows ?? matrix.rows
        let stencil = try Self.stencil(matrix, rows: rows, pixelsPerModule: pixelsPerModule)
        defer { cairo_surface_destroy(stencil) }
        let pattern = cairo_pattern_create_for_surface(stencil)
        defer { cairo_pattern_destroy(pattern) }
        cairo_pattern_set_filter(pattern, smooth ? CAIRO_FILTER_GOOD : CAIRO_FILTER_NEAREST)
        cairo_save(cr)
        cairo_translate(cr, x, y)
        cairo_scale(cr, width / Double(matrix.columns * pixelsPerModule), height / Double(rows))
        cairo_set_source_rgb(cr, 0, 0, 0)
        cairo_mask(cr, pattern)
        cairo_restore(cr)
        try Self.check(cairo_status(cr), "drawing a code")
    }

    /// The first `rows` rows of the matrix as a cairo A1 image, dark modules opaque.
    static func stencil(_ matrix: ModuleMatrix, rows: Int, pixelsPerModule: Int) throws(WaybillError) -> OpaquePointer {
        let width = matrix.columns * pixelsPerModule
        guard let surface = cairo_image_surface_create(CAIRO_FORMAT_A1, Int32(width), Int32(rows)),
            cairo_surface_status(surface) == CAIRO_STATUS_SUCCESS, let data = cairo_image_surface_get_data(surface)
        else { throw WaybillError(.renderFailed, "cairo could not make a barcode image") }
        let wordsPerRow = Int(cairo_image_surface_get_stride(surface)) / 4
        // A1 packs 32 pixels into each native-endian word, the first pixel in the lowest bit on
        // a little-endian machine and the highest on a big-endian one.
        let littleEndian = 1.littleEndian == 1
        data.withMemoryRebound(to: UInt32.self, capacity: wordsPerRow * rows) { words in
            for row in 0..<rows {
                for column in 0..<matrix.columns where matrix[row, column] {
                    for pixel in column * pixelsPerModule..<(column + 1) * pixelsPerModule {
                        let bit = UInt32(pixel % 32)
                        words[row * wordsPerRow + pixel / 32] |= littleEndian ? 1 << bit : 0x8000_0000 >> bit
                    }
                }
            }
        }
        cairo_surface_mark_dirty(surface)
        return surface
    }

    private func paintWhite(_ box: RsvgRectangle, cr: OpaquePointer) {
        cairo_rectangle(cr, box.x, box.y, box.width, box.height)
        cairo_set_source_rgb(cr, 1, 1, 1)
        cairo_fill(cr)
    }

    static func check(_ status: cairo_status_t, _ step: String) throws(WaybillError) {
        guard status == CAIRO_STATUS_SUCCESS else {
            throw WaybillError(.renderFailed, "cairo failed \(step): \(String(cString: cairo_status_to_string(status)))")
        }
    }

    /// The message of a GError, which it frees.
    static func take(_ error: UnsafeMutablePointer<GError>?) -> String {
        guard let error else { return "unknown error" }
        defer { g_error_free(error) }
        return String(cString: error.pointee.message)
    }
}

extension SheetRenderer {
    /// Renders each sheet into its own PDF file (`outputs[i]` for `sheets[i]`) on `workers` threads,
    /// each with its own renderer: nothing is shared but the immutable template. Stops at the first
    /// error and throws it; files already written stay.
    public static func renderFiles(
        _ sheets: [SheetContent], to outputs: [String], template: SheetTemplate, workers: Int
    ) throws(WaybillError) {
        precondition(sheets.count == outputs.count)
        let workers = max(1, min(workers, sheets.count))
        let failure = Mutex<WaybillError?>(nil)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            do throws(WaybillError) {
                let renderer = try SheetRenderer()
                for index in stride(from: worker, to: sheets.count, by: workers) {
                    guard failure.withLock({ $0 == nil }) else { return }
                    try renderer.renderPDF([sheets[index]], template: template, to: outputs[index])
                }
            } catch {
                failure.withLock { if $0 == nil { $0 = error } }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
    }
}
