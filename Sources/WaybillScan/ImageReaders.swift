import CPNG
import CTIFF
import CTurboJPEG
public import Foundation
public import WaybillCore

/// Decoders for scanned images, each producing grayscale. Every one checks the dimensions a file
/// claims before allocating anything for them.
public enum ImageReaders {
    /// Pixels we agree to decode for one page: 100 megapixels, a Letter page at 1,000 dpi.
    public static let maximumPixels = 100_000_000

    static func checkSize(_ width: Int, _ height: Int, _ what: String) throws(WaybillError) {
        guard width > 0, height > 0, width <= 1_000_000, height <= 1_000_000, width * height <= maximumPixels else {
            throw WaybillError(.unreadableDocument, "\(what) claims \(width)×\(height) pixels, more than Waybill decodes")
        }
    }

    /// JPEG through TurboJPEG, scaled in the DCT (1/2, 1/4, 1/8) so the long side is at most
    /// `maximumSide`: a 600-dpi photo decodes at a fraction of the cost, straight to gray.
    public static func jpeg(_ data: Data, maximumSide: Int = 2600, maximumScale: Double = 1) throws(WaybillError)
        -> GrayImage
    {
        guard let handle = tjInitDecompress() else { throw WaybillError(.unreadableDocument, "cannot start the JPEG decoder") }
        defer { tjDestroy(handle) }
        let result = data.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) -> Result<GrayImage, WaybillError> in
            Result { () throws(WaybillError) -> GrayImage in
            let bytes = buffer.bindMemory(to: UInt8.self)
            var width: Int32 = 0
            var height: Int32 = 0
            var subsampling: Int32 = 0
            var colorspace: Int32 = 0
            guard tjDecompressHeader3(handle, bytes.baseAddress, UInt(bytes.count), &width, &height, &subsampling, &colorspace) == 0
            else { throw WaybillError(.unreadableDocument, "not a readable JPEG: \(String(cString: tjGetErrorStr2(handle)))") }
            try checkSize(Int(width), Int(height), "the JPEG")
            var count: Int32 = 0
            let factors = UnsafeBufferPointer(start: tjGetScalingFactors(&count), count: Int(count))
            // The largest scale no bigger than 1 that brings the long side under the limit.
            var chosen = tjscalingfactor(num: 1, denom: 1)
            let longSide = Int(max(width, height))
            let limit = min(maximumSide, Int((Double(longSide) * maximumScale).rounded(.up)))
            for factor in factors where factor.num <= factor.denom {
                let side = (longSide * Int(factor.num) + Int(factor.denom) - 1) / Int(factor.denom)
                let chosenSide = (longSide * Int(chosen.num) + Int(chosen.denom) - 1) / Int(chosen.denom)
                if side <= limit, side > 0, chosenSide > limit || side > chosenSide { chosen = factor }
            }
            let scaledWidth = (Int(width) * Int(chosen.num) + Int(chosen.denom) - 1) / Int(chosen.denom)
            let scaledHeight = (Int(height) * Int(chosen.num) + Int(chosen.denom) - 1) / Int(chosen.denom)
            var pixels = [UInt8](repeating: 0, count: scaledWidth * scaledHeight)
            let status = pixels.withUnsafeMutableBufferPointer { out in
                tjDecompress2(
                    handle, bytes.baseAddress, UInt(bytes.count), out.baseAddress, Int32(scaledWidth), 0, Int32(scaledHeight),
                    Int32(TJPF_GRAY.rawValue), 0)
            }
            // A warning (truncated data, say) still leaves a usable picture; only hard errors stop.
            if status != 0, tjGetErrorCode(handle) == Int32(TJERR_FATAL.rawValue) {
                throw WaybillError(.unreadableDocument, "JPEG decoding failed: \(String(cString: tjGetErrorStr2(handle)))")
            }
            return GrayImage(width: scaledWidth, height: scaledHeight, pixels: pixels)
            }
        }
        return try result.get()
    }

    /// PNG through libpng's simplified API, converted to gray (alpha composited on white).
    public static func png(_ data: Data) throws(WaybillError) -> GrayImage {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        defer { png_image_free(&image) }
        let begun = data.withUnsafeBytes { png_image_begin_read_from_memory(&image, $0.baseAddress, $0.count) }
        guard begun != 0 else { throw WaybillError(.unreadableDocument, "not a readable PNG: \(message(of: image))") }
        try checkSize(Int(image.width), Int(image.height), "the PNG")
        image.format = UInt32(PNG_FORMAT_GRAY)
        var pixels = [UInt8](repeating: 0, count: Int(image.width) * Int(image.height))
        var background = png_color(red: 255, green: 255, blue: 255)
        let finished = pixels.withUnsafeMutableBytes { png_image_finish_read(&image, &background, $0.baseAddress, 0, nil) }
        guard finished != 0 else { throw WaybillError(.unreadableDocument, "PNG decoding failed: \(message(of: image))") }
        return GrayImage(width: Int(image.width), height: Int(image.height), pixels: pixels)
    }

    private static func message(of image: png_image) -> String {
        withUnsafeBytes(of: image.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}

/// A TIFF file, one page per directory (multi-page fax and scanner output), any compression
/// libtiff reads: G3/G4, LZW, JPEG, Deflate, with or without alpha. One owner per handle.
public final class TIFFDocument {
    private let tiff: OpaquePointer
    public let pageCount: Int

    public init(path: String) throws(WaybillError) {
        TIFFDocument.silenceLibtiff
        guard let tiff = TIFFOpen(path, "r") else {
            throw WaybillError(.unreadableDocument, "not a readable TIFF")
        }
        self.tiff = tiff
        var count = 0
        repeat { count += 1 } while TIFFReadDirectory(tiff) != 0 && count < 100_000
        pageCount = count
    }

    deinit { TIFFClose(tiff) }

    /// libtiff prints warnings and errors to stderr by default; Waybill reports its own.
    private static let silenceLibtiff: Void = {
        TIFFSetWarningHandler(nil)
        TIFFSetErrorHandler(nil)
    }()

    /// Pixels per inch of page `index`, nil when the file does not say.
    public func resolution(_ index: Int) -> (x: Double, y: Double)? {
        guard index >= 0, index < pageCount, TIFFSetDirectory(tiff, UInt32(index)) != 0 else { return nil }
        var x: Float = 0
        var y: Float = 0
        waybillTIFFGetResolution(tiff, &x, &y)
        guard x >= 10, y >= 10, x <= 10_000, y <= 10_000 else { return nil }
        return (Double(x), Double(y))
    }

    public func page(_ index: Int) throws(WaybillError) -> GrayImage {
        let page = try rgbaPage(index)
        var pixels = [UInt8](repeating: 255, count: page.pixels.count)
        for index in page.pixels.indices {
            let pixel = page.pixels[index]  // ABGR, alpha premultiplied: composite on white
            let alpha = (pixel >> 24) & 0xFF
            let r = pixel & 0xFF
            let g = (pixel >> 8) & 0xFF
            let b = (pixel >> 16) & 0xFF
            let luma = (r * 77 + g * 150 + b * 29) >> 8
            pixels[index] = UInt8(min(255, luma + (255 - alpha)))
        }
        return GrayImage(width: page.width, height: page.height, pixels: pixels)
    }

    /// Page `index` in colour: libtiff's ABGR pixels (alpha premultiplied), top row first.
    public func rgbaPage(_ index: Int) throws(WaybillError) -> (width: Int, height: Int, pixels: [UInt32]) {
        guard index >= 0, index < pageCount, TIFFSetDirectory(tiff, UInt32(index)) != 0 else {
            throw WaybillError(.unreadableDocument, "no page \(index) in the TIFF")
        }
        var width: UInt32 = 0
        var height: UInt32 = 0
        guard waybillTIFFGetDimensions(tiff, &width, &height) else {
            throw WaybillError(.unreadableDocument, "TIFF page \(index) has no dimensions")
        }
        try ImageReaders.checkSize(Int(width), Int(height), "TIFF page \(index)")
        var raster = [UInt32](repeating: 0, count: Int(width) * Int(height))
        let read = raster.withUnsafeMutableBufferPointer {
            TIFFReadRGBAImageOriented(tiff, width, height, $0.baseAddress, Int32(ORIENTATION_TOPLEFT), 0)
        }
        guard read != 0 else { throw WaybillError(.unreadableDocument, "TIFF page \(index) could not be decoded") }
        return (Int(width), Int(height), raster)
    }
}
