import CPoppler
public import Foundation
public import WaybillCore

/// A PDF opened with poppler-glib, pages rendered to grayscale at a chosen resolution.
///
/// One owner per document: not `Sendable`; open the file once per task that reads it.
public final class PDFDocument {
    private let document: OpaquePointer
    public let pageCount: Int
    /// The largest raster we allocate for one page: 400 megapixels (a Letter page at about 2,400 dpi).
    public static let maximumPixels = 400_000_000.0

    public init(data: Data) throws(WaybillError) {
        var error: UnsafeMutablePointer<GError>?
        let bytes = data.withUnsafeBytes { g_bytes_new($0.baseAddress, gsize($0.count)) }
        defer { g_bytes_unref(bytes) }
        guard let document = poppler_document_new_from_bytes(bytes, nil, &error) else { throw Self.openError(error) }
        self.document = document
        pageCount = Int(poppler_document_get_n_pages(document))
    }

    /// Opens a file; poppler reads it through its own small buffers, so a large scan is never
    /// in memory whole.
    public init(path: String) throws(WaybillError) {
        var error: UnsafeMutablePointer<GError>?
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        guard let uri = g_filename_to_uri(absolute, nil, &error) else {
            throw WaybillError(.ioError, "cannot name \(path) as a URI: \(Self.take(error))")
        }
        defer { g_free(uri) }
        guard let document = poppler_document_new_from_file(uri, nil, &error) else {
            throw Self.openError(error)
        }
        self.document = document
        pageCount = Int(poppler_document_get_n_pages(document))
    }

    static func openError(_ error: UnsafeMutablePointer<GError>?) -> WaybillError {
        let encrypted = error?.pointee.code == Int32(POPPLER_ERROR_ENCRYPTED.rawValue)
        let message = take(error)
        if encrypted { return WaybillError(.encryptedDocument, "the PDF is encrypted with a password") }
        return WaybillError(.unreadableDocument, "not a readable PDF: \(message)")
    }

    static func take(_ error: UnsafeMutablePointer<GError>?) -> String {
        guard let error else { return "unknown error" }
        defer { g_error_free(error) }
        return String(cString: error.pointee.message)
    }

    deinit { g_object_unref(UnsafeMutableRawPointer(document)) }

    /// Page size in points.
    public func pageSize(_ index: Int) throws(WaybillError) -> (width: Double, height: Double) {
        let page = try self.page(index)
        defer { g_object_unref(UnsafeMutableRawPointer(page)) }
        var width = 0.0
        var height = 0.0
        poppler_page_get_size(page, &width, &height)
        return (width, height)
    }

    /// Renders page `index` (0-based) on white at `dpi`, as grayscale. With `fitting`, a page
    /// that would be more pixels than that at `dpi` is rendered at the resolution that fits
    /// (worked out from the page size, before any raster is made); without, a page over
    /// `maximumPixels` is refused.
    public func render(page index: Int, dpi requested: Double, fitting: Double? = nil) throws(WaybillError) -> GrayImage {
        let page = try self.page(index)
        defer { g_object_unref(UnsafeMutableRawPointer(page)) }
        var width = 0.0
        var height = 0.0
        poppler_page_get_size(page, &width, &height)
        var dpi = requested
        let area = width * height * (dpi / 72) * (dpi / 72)
        // NaN and infinite sizes fall through to the check below.
        if let fitting, fitting >= 1, area.isFinite, area > fitting { dpi *= (fitting / area).squareRoot() * 0.999 }
        // A hostile MediaBox can be huge, infinite or NaN: check in floating point before converting.
        let scaledWidth = (width * dpi / 72).rounded(.up)
        let scaledHeight = (height * dpi / 72).rounded(.up)
        guard scaledWidth.isFinite, scaledHeight.isFinite, scaledWidth >= 1, scaledHeight >= 1,
            scaledWidth * scaledHeight <= Self.maximumPixels
        else {
            throw WaybillError(.unreadableDocument, "page \(index) has unusable dimensions \(width)x\(height) pt at \(dpi) dpi")
        }
        let pixelWidth = Int(scaledWidth)
        let pixelHeight = Int(scaledHeight)
        guard let surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, Int32(pixelWidth), Int32(pixelHeight)) else {
            throw WaybillError(.unreadableDocument, "cannot allocate a \(pixelWidth)x\(pixelHeight) raster")
        }
        defer { cairo_surface_destroy(surface) }
        let cr = cairo_create(surface)
        defer { cairo_destroy(cr) }
        cairo_set_source_rgb(cr, 1, 1, 1)
        cairo_paint(cr)
        cairo_scale(cr, dpi / 72, dpi / 72)
        poppler_page_render(page, cr)
        cairo_surface_flush(surface)
        guard cairo_surface_status(surface) == CAIRO_STATUS_SUCCESS, let data = cairo_image_surface_get_data(surface) else {
            throw WaybillError(.unreadableDocument, "rendering page \(index) failed")
        }
        let stride = Int(cairo_image_surface_get_stride(surface))
        var pixels = [UInt8](repeating: 0, count: pixelWidth * pixelHeight)
        pixels.withUnsafeMutableBufferPointer { out in
            for y in 0..<pixelHeight {
                let row = UnsafeRawPointer(data + y * stride).assumingMemoryBound(to: UInt32.self)
                for x in 0..<pixelWidth {
                    let pixel = row[x]
                    // ITU-R BT.601 luma in integer arithmetic.
                    let r = (pixel >> 16) & 0xFF
                    let g = (pixel >> 8) & 0xFF
                    let b = pixel & 0xFF
                    out[y * pixelWidth + x] = UInt8((r * 77 + g * 150 + b * 29) >> 8)
                }
            }
        }
        return GrayImage(width: pixelWidth, height: pixelHeight, pixels: pixels)
    }

    /// Draws page `index` onto a cairo context (in points) the way poppler prints: image streams
    /// (JPEG, JPX, JBIG2, CCITT) are handed to cairo as their original bytes, so a PDF surface
    /// embeds them unchanged.
    func print(page index: Int, into cr: OpaquePointer) throws(WaybillError) {
        let page = try self.page(index)
        defer { g_object_unref(UnsafeMutableRawPointer(page)) }
        poppler_page_render_for_printing(page, cr)
    }

    func page(_ index: Int) throws(WaybillError) -> OpaquePointer {
        guard index >= 0, index < pageCount, let page = poppler_document_get_page(document, Int32(index)) else {
            throw WaybillError(.unreadableDocument, "no page \(index) (the document has \(pageCount))")
        }
        return page
    }
}
