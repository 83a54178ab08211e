import CPNG
public import Foundation
public import WaybillCore

/// Writes grayscale images as PNG through libpng's simplified API (8-bit gray, zlib's default
/// compression): the web app's sheet previews.
public enum PNGWriter {
    public static func encode(_ image: GrayImage) throws(WaybillError) -> Data {
        guard image.width > 0, image.height > 0, image.pixels.count == image.width * image.height else {
            throw WaybillError(.renderFailed, "cannot write a \(image.width)×\(image.height) image as PNG")
        }
        var png = png_image()
        png.version = UInt32(PNG_IMAGE_VERSION)
        png.width = UInt32(image.width)
        png.height = UInt32(image.height)
        png.format = UInt32(PNG_FORMAT_GRAY)
        defer { png_image_free(&png) }
        // First call measures (memory nil), the second writes into a buffer of that size.
        var size: png_alloc_size_t = 0
        let measured = image.pixels.withUnsafeBytes { pixels in
            png_image_write_to_memory(&png, nil, &size, 0, pixels.baseAddress, png_int_32(image.width), nil)
        }
        guard measured != 0, size > 0 else { throw WaybillError(.renderFailed, "PNG encoding failed: \(message(of: png))") }
        var output = Data(count: Int(size))
        let written = output.withUnsafeMutableBytes { buffer in
            image.pixels.withUnsafeBytes { pixels in
                png_image_write_to_memory(&png, buffer.baseAddress, &size, 0, pixels.baseAddress, png_int_32(image.width), nil)
            }
        }
        guard written != 0 else { throw WaybillError(.renderFailed, "PNG encoding failed: \(message(of: png))") }
        return output.prefix(Int(size))
    }

    private static func message(of image: png_image) -> String {
        withUnsafeBytes(of: image.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}
