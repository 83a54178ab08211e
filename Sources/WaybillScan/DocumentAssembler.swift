import CPoppler
import CTIFF
import CTurboJPEG
public import Foundation
public import WaybillCore

/// One page of one scanned file: the unit a job is made of.
public struct PageReference: Sendable, Hashable, Codable {
    public var file: String
    /// 0-based, as the decoder numbers pages.
    public var page: Int

    public init(file: String, page: Int) {
        self.file = file
        self.page = page
    }
}

/// Builds the PDF a destination receives: the job's pages, in order, from any mix of scanned
/// files, with the scan's own image data passed through rather than re-encoded.
///
/// - PDF pages are drawn by poppler in printing mode onto a cairo PDF surface: poppler hands each
///   JPEG, JPX, JBIG2 or CCITT stream to cairo as its original bytes (cairo's "mime data"), and
///   cairo embeds those bytes as they are. Vector content stays vector.
/// - A JPEG file becomes one page whose image is the file's bytes, sized by its JFIF density.
/// - PNG and TIFF pages are decoded and written losslessly (cairo finds gray and bilevel images
///   and writes them as such).
///
/// The file is written under a temporary name, fsynced and renamed: a reader never sees half a PDF.
public enum DocumentAssembler {
    /// What a page is assumed to have been scanned at when the file does not say.
    public static let defaultDPI = 200.0

    public static func writePDF(pages: [PageReference], to url: URL, creationDate: Date) throws(WaybillError) {
        guard !pages.isEmpty else { throw WaybillError(.renderFailed, "a document needs at least one page") }
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).tmp")
        guard let surface = cairo_pdf_surface_create(temporary.path, 612, 792) else {
            throw WaybillError(.ioError, "cannot create \(temporary.path)")
        }
        var finished = false
        defer {
            if !finished {
                cairo_surface_destroy(surface)
                unlink(temporary.path)
            }
        }
        // A fixed creation date (the message's) makes the output the same bytes on every run.
        cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATOR, "Waybill")
        cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATE_DATE, Self.pdfDate(creationDate))
        var sources = Sources()
        for reference in pages {
            try sources.draw(reference, on: surface)
        }
        cairo_surface_finish(surface)
        let status = cairo_surface_status(surface)
        cairo_surface_destroy(surface)
        finished = true
        guard status == CAIRO_STATUS_SUCCESS else {
            unlink(temporary.path)
            throw WaybillError(.renderFailed, "writing the PDF failed: \(String(cString: cairo_status_to_string(status)))")
        }
        try Durable.sync(path: temporary.path)
        guard rename(temporary.path, url.path) == 0 else {
            unlink(temporary.path)
            throw WaybillError(.ioError, "cannot move the PDF into place at \(url.path): \(String(cString: strerror(errno)))")
        }
        Durable.syncDirectory(url.deletingLastPathComponent().path)
    }

    static func pdfDate(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }

    /// Opened source files, each opened once however many of its pages are used.
    struct Sources {
        var pdfs: [String: PDFDocument] = [:]
        var tiffs: [String: TIFFDocument] = [:]

        mutating func draw(_ reference: PageReference, on surface: OpaquePointer) throws(WaybillError) {
            guard let format = ScanFormat(path: reference.file) else {
                throw WaybillError(.unsupportedFormat, "\(reference.file) is not a PDF, TIFF, JPEG or PNG file")
            }
            switch format {
            case .pdf:
                let document: PDFDocument
                if let open = pdfs[reference.file] { document = open } else { document = try PDFDocument(path: reference.file) }
                pdfs[reference.file] = document
                let size = try document.pageSize(reference.page)
                guard size.width.isFinite, size.height.isFinite, size.width >= 1, size.height >= 1, size.width <= 14_400,
                    size.height <= 14_400
                else {
                    throw WaybillError(.unreadableDocument, "page \(reference.page) has unusable dimensions")
                }
                cairo_pdf_surface_set_size(surface, size.width, size.height)
                let cr = cairo_create(surface)!
                defer { cairo_destroy(cr) }
                try document.print(page: reference.page, into: cr)
                cairo_show_page(cr)
            case .jpeg:
                guard reference.page == 0 else { throw WaybillError(.unreadableDocument, "a JPEG has one page") }
                let data = try Self.read(reference.file)
                let info = try JPEGInfo(data)
                try Self.paint(surface: surface, pixelWidth: info.width, pixelHeight: info.height, dpi: info.dpi) { (image: OpaquePointer) throws(WaybillError) in
                    // The JPEG's own bytes: cairo's PDF backend embeds them with /DCTDecode.
                    let copy = malloc(data.count)!
                    data.copyBytes(to: copy.assumingMemoryBound(to: UInt8.self), count: data.count)
                    cairo_surface_set_mime_data(image, CAIRO_MIME_TYPE_JPEG, copy.assumingMemoryBound(to: UInt8.self), UInt(data.count), free, copy)
                }
            case .png:
                guard reference.page == 0 else { throw WaybillError(.unreadableDocument, "a PNG has one page") }
                // cairo reads the PNG in colour; its size is checked from the header first.
                let data = try Self.read(reference.file)
                let head = [UInt8](data.prefix(24))
                guard head.count == 24 else { throw WaybillError(.unreadableDocument, "a truncated PNG") }
                let width = Int(head[16]) << 24 | Int(head[17]) << 16 | Int(head[18]) << 8 | Int(head[19])
                let height = Int(head[20]) << 24 | Int(head[21]) << 16 | Int(head[22]) << 8 | Int(head[23])
                try ImageReaders.checkSize(width, height, "the PNG")
                guard let image = cairo_image_surface_create_from_png(reference.file),
                    cairo_surface_status(image) == CAIRO_STATUS_SUCCESS
                else { throw WaybillError(.unreadableDocument, "not a readable PNG") }
                defer { cairo_surface_destroy(image) }
                try Self.paint(
                    surface: surface, pixelWidth: Int(cairo_image_surface_get_width(image)),
                    pixelHeight: Int(cairo_image_surface_get_height(image)), dpi: Self.pngDPI(data), image: image)
            case .tiff:
                let document: TIFFDocument
                if let open = tiffs[reference.file] { document = open } else { document = try TIFFDocument(path: reference.file) }
                tiffs[reference.file] = document
                let dpi = document.resolution(reference.page)
                let page = try document.rgbaPage(reference.page)
                try Self.paint(surface: surface, pixelWidth: page.width, pixelHeight: page.height, dpi: dpi) {
                    (image: OpaquePointer) throws(WaybillError) in
                    cairo_surface_flush(image)
                    guard let data = cairo_image_surface_get_data(image) else {
                        throw WaybillError(.renderFailed, "cannot write into the image")
                    }
                    let stride = Int(cairo_image_surface_get_stride(image))
                    page.pixels.withUnsafeBufferPointer { pixels in
                        for y in 0..<page.height {
                            let row = UnsafeMutableRawPointer(data + y * stride).assumingMemoryBound(to: UInt32.self)
                            for x in 0..<page.width {
                                // libtiff's ABGR, alpha premultiplied, onto white as cairo's xRGB.
                                let pixel = pixels[y * page.width + x]
                                let white = 255 - (pixel >> 24)
                                let r = min(255, (pixel & 0xFF) + white)
                                let g = min(255, ((pixel >> 8) & 0xFF) + white)
                                let b = min(255, ((pixel >> 16) & 0xFF) + white)
                                row[x] = 0xFF00_0000 | r << 16 | g << 8 | b
                            }
                        }
                    }
                    cairo_surface_mark_dirty(image)
                }
            }
        }

        static func read(_ path: String) throws(WaybillError) -> Data {
            do { return try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
                throw WaybillError(.ioError, "cannot read \(path): \(error.localizedDescription)")
            }
        }

        /// One page holding one image at its scanned size. `prepare` fills or labels the image.
        static func paint(
            surface: OpaquePointer, pixelWidth: Int, pixelHeight: Int, dpi: (x: Double, y: Double)?,
            prepare: (OpaquePointer) throws(WaybillError) -> Void
        ) throws(WaybillError) {
            try ImageReaders.checkSize(pixelWidth, pixelHeight, "the image")
            // The pixels of a labelled image are never touched: calloc'd pages stay unmapped.
            guard let image = cairo_image_surface_create(CAIRO_FORMAT_RGB24, Int32(pixelWidth), Int32(pixelHeight)),
                cairo_surface_status(image) == CAIRO_STATUS_SUCCESS
            else { throw WaybillError(.renderFailed, "cannot allocate a \(pixelWidth)×\(pixelHeight) image") }
            defer { cairo_surface_destroy(image) }
            try prepare(image)
            try paint(surface: surface, pixelWidth: pixelWidth, pixelHeight: pixelHeight, dpi: dpi, image: image)
        }

        /// One page showing `image` at its scanned size.
        static func paint(
            surface: OpaquePointer, pixelWidth: Int, pixelHeight: Int, dpi: (x: Double, y: Double)?, image: OpaquePointer
        ) throws(WaybillError) {
            let dpi = dpi ?? (DocumentAssembler.defaultDPI, DocumentAssembler.defaultDPI)
            let width = Double(pixelWidth) * 72 / dpi.x
            let height = Double(pixelHeight) * 72 / dpi.y
            cairo_pdf_surface_set_size(surface, width, height)
            let cr = cairo_create(surface)!
            defer { cairo_destroy(cr) }
            cairo_scale(cr, width / Double(pixelWidth), height / Double(pixelHeight))
            cairo_set_source_surface(cr, image, 0, 0)
            cairo_paint(cr)
            cairo_show_page(cr)
        }

        /// The pHYs chunk's resolution, if the PNG has one in metres.
        static func pngDPI(_ data: Data) -> (x: Double, y: Double)? {
            let bytes = [UInt8](data.prefix(4096))
            var offset = 8
            func be32(_ at: Int) -> Int { Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3]) }
            while offset + 8 <= bytes.count {
                let length = be32(offset)
                let type = String(decoding: bytes[offset + 4..<offset + 8], as: UTF8.self)
                if type == "pHYs", offset + 17 <= bytes.count, bytes[offset + 16] == 1 {
                    let x = Double(be32(offset + 8)) * 0.0254
                    let y = Double(be32(offset + 12)) * 0.0254
                    return x >= 10 && y >= 10 && x <= 10_000 && y <= 10_000 ? (x, y) : nil
                }
                if type == "IDAT" || length < 0 || length > 1 << 24 { return nil }
                offset += 12 + length
            }
            return nil
        }
    }
}

/// A JPEG's dimensions (from TurboJPEG) and density (from its JFIF header, when it has one).
struct JPEGInfo {
    let width: Int
    let height: Int
    let dpi: (x: Double, y: Double)?

    init(_ data: Data) throws(WaybillError) {
        guard let handle = tjInitDecompress() else { throw WaybillError(.unreadableDocument, "cannot start the JPEG decoder") }
        defer { tjDestroy(handle) }
        var width: Int32 = 0
        var height: Int32 = 0
        var subsampling: Int32 = 0
        var colorspace: Int32 = 0
        let status = data.withUnsafeBytes { buffer in
            tjDecompressHeader3(
                handle, buffer.bindMemory(to: UInt8.self).baseAddress, UInt(buffer.count), &width, &height, &subsampling, &colorspace)
        }
        guard status == 0 else { throw WaybillError(.unreadableDocument, "not a readable JPEG") }
        self.width = Int(width)
        self.height = Int(height)
        // FF D8, then FF E0 <length> "JFIF\0" <version:2> <units:1> <x:2> <y:2>.
        let head = [UInt8](data.prefix(20))
        if head.count >= 18, head[2] == 0xFF, head[3] == 0xE0, head[6...10].elementsEqual(Array("JFIF\0".utf8)) {
            let units = head[13]
            var x = Double(Int(head[14]) << 8 | Int(head[15]))
            var y = Double(Int(head[16]) << 8 | Int(head[17]))
            if units == 2 {
                x *= 2.54
                y *= 2.54
            }
            dpi = units != 0 && x >= 10 && y >= 10 && x <= 10_000 && y <= 10_000 ? (x, y) : nil
        } else {
            dpi = nil
        }
    }
}

/// fsync helpers shared by everything that must survive a crash.
enum Durable {
    static func sync(path: String) throws(WaybillError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw WaybillError(.ioError, "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw WaybillError(.ioError, "cannot fsync \(path): \(String(cString: strerror(errno)))") }
    }

    static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }
}
