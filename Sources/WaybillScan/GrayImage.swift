/// An 8-bit grayscale raster, one byte a pixel, rows packed (`stride == width`).
public struct GrayImage: Sendable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height)
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

/// A rectangle of pixels; `x`, `y` is the top left corner.
struct PixelRect: Hashable, Sendable {
    var x: Int
    var y: Int
    var width: Int
    var height: Int

    var maxX: Int { x + width }
    var maxY: Int { y + height }
    var area: Int { width * height }

    init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }

    init(minX: Int, minY: Int, maxX: Int, maxY: Int) {
        self.init(x: minX, y: minY, width: maxX - minX, height: maxY - minY)
    }

    func union(_ other: PixelRect) -> PixelRect {
        PixelRect(
            minX: min(x, other.x), minY: min(y, other.y), maxX: max(maxX, other.maxX), maxY: max(maxY, other.maxY))
    }

    /// Overlapping, or nearer than `gap` pixels on both axes.
    func touches(_ other: PixelRect, gap: Int = 0) -> Bool {
        x <= other.maxX + gap && other.x <= maxX + gap && y <= other.maxY + gap && other.y <= maxY + gap
    }

    /// Grown by `dx` and `dy` on each side, then cut to `0..<width`, `0..<height`.
    func expanded(dx: Int, dy: Int, within width: Int, _ height: Int) -> PixelRect {
        PixelRect(minX: max(0, x - dx), minY: max(0, y - dy), maxX: min(width, maxX + dx), maxY: min(height, maxY + dy))
    }
}

extension GrayImage {
    /// The pixels inside `rect`, which must lie within the image.
    func cropped(to rect: PixelRect) -> GrayImage {
        precondition(rect.x >= 0 && rect.y >= 0 && rect.maxX <= width && rect.maxY <= height)
        precondition(rect.width > 0 && rect.height > 0)
        if rect.x == 0 && rect.y == 0 && rect.width == width && rect.height == height { return self }
        var out = [UInt8](repeating: 0, count: rect.area)
        pixels.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { target in
                for row in 0..<rect.height {
                    let from = source.baseAddress! + (rect.y + row) * width + rect.x
                    (target.baseAddress! + row * rect.width).update(from: from, count: rect.width)
                }
            }
        }
        return GrayImage(width: rect.width, height: rect.height, pixels: out)
    }

    /// Each pixel the mean of a 2×2 block (a trailing odd row or column is dropped). Averaging
    /// also quiets sensor noise: four pixels halve its spread.
    func halved() -> GrayImage {
        let outWidth = width / 2
        let outHeight = height / 2
        var out = [UInt8](repeating: 0, count: outWidth * outHeight)
        pixels.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { target in
                for outY in 0..<outHeight {
                    let upper = source.baseAddress! + 2 * outY * width
                    let lower = upper + width
                    let line = target.baseAddress! + outY * outWidth
                    for outX in 0..<outWidth {
                        let sum = UInt16(upper[2 * outX]) &+ UInt16(upper[2 * outX + 1]) &+ UInt16(lower[2 * outX])
                            &+ UInt16(lower[2 * outX + 1])
                        line[outX] = UInt8(truncatingIfNeeded: (sum &+ 2) >> 2)
                    }
                }
            }
        }
        return GrayImage(width: outWidth, height: outHeight, pixels: out)
    }

    /// Rows averaged in bands of four (a trailing partial band dropped), full width kept: vertical
    /// bars keep their edges while noise and text blur. With `transposed`, columns are averaged
    /// instead and the result is stored turned, so horizontal bars become vertical ones.
    func banded(transposed: Bool) -> GrayImage {
        if !transposed {
            let outHeight = height / 4
            var out = [UInt8](repeating: 0, count: width * outHeight)
            pixels.withUnsafeBufferPointer { source in
                out.withUnsafeMutableBufferPointer { target in
                    for outY in 0..<outHeight {
                        let r0 = source.baseAddress! + 4 * outY * width
                        let r1 = r0 + width
                        let r2 = r1 + width
                        let r3 = r2 + width
                        let line = target.baseAddress! + outY * width
                        for x in 0..<width {
                            let sum = UInt16(r0[x]) &+ UInt16(r1[x]) &+ UInt16(r2[x]) &+ UInt16(r3[x])
                            line[x] = UInt8(truncatingIfNeeded: sum >> 2)
                        }
                    }
                }
            }
            return GrayImage(width: width, height: outHeight, pixels: out)
        }
        // Turned: output row `i` is input column band `i`, output column `y` is input row `y`.
        // Rows are taken 16 at a time so each output row is written in runs of 16 bytes.
        let bands = width / 4
        var out = [UInt8](repeating: 0, count: bands * height)
        var sums = [UInt8](repeating: 0, count: bands * 16)
        pixels.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { target in
                sums.withUnsafeMutableBufferPointer { sums in
                    for y0 in stride(from: 0, to: height, by: 16) {
                        let rows = min(16, height - y0)
                        for dy in 0..<rows {
                            let row = source.baseAddress! + (y0 + dy) * width
                            for i in 0..<bands {
                                let sum = UInt16(row[4 * i]) &+ UInt16(row[4 * i + 1]) &+ UInt16(row[4 * i + 2])
                                    &+ UInt16(row[4 * i + 3])
                                sums[i * 16 + dy] = UInt8(truncatingIfNeeded: sum >> 2)
                            }
                        }
                        for i in 0..<bands {
                            let line = target.baseAddress! + i * height + y0
                            line.update(from: sums.baseAddress! + i * 16, count: rows)
                        }
                    }
                }
            }
        }
        return GrayImage(width: height, height: bands, pixels: out)
    }
}
