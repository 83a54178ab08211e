/// The cheap clean-ups that rescue codes zbar misses on noisy scans: a 3×3 box blur to melt
/// sensor noise and salt-and-pepper, then Otsu's global threshold to restore hard edges.
enum ImageFilters {
    static func boxBlur3(_ image: GrayImage) -> GrayImage {
        let width = image.width
        let height = image.height
        guard width >= 3, height >= 3 else { return image }
        var horizontal = [UInt16](repeating: 0, count: width * height)
        var out = image.pixels
        image.pixels.withUnsafeBufferPointer { src in
            horizontal.withUnsafeMutableBufferPointer { tmp in
                for y in 0..<height {
                    let row = y * width
                    tmp[row] = UInt16(src[row]) * 2 + UInt16(src[row + 1])
                    for x in 1..<(width - 1) {
                        tmp[row + x] = UInt16(src[row + x - 1]) + UInt16(src[row + x]) + UInt16(src[row + x + 1])
                    }
                    tmp[row + width - 1] = UInt16(src[row + width - 2]) + UInt16(src[row + width - 1]) * 2
                }
            }
        }
        horizontal.withUnsafeBufferPointer { tmp in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<height {
                    let above = max(0, y - 1) * width
                    let row = y * width
                    let below = min(height - 1, y + 1) * width
                    for x in 0..<width {
                        dst[row + x] = UInt8((UInt32(tmp[above + x]) + UInt32(tmp[row + x]) + UInt32(tmp[below + x])) / 9)
                    }
                }
            }
        }
        return GrayImage(width: width, height: height, pixels: out)
    }

    /// Otsu (1979): the threshold that maximizes the variance between the two classes.
    static func otsuThreshold(_ image: GrayImage) -> GrayImage {
        var histogram = [Int](repeating: 0, count: 256)
        for pixel in image.pixels { histogram[Int(pixel)] += 1 }
        let total = Double(image.pixels.count)
        let sum = histogram.enumerated().reduce(0.0) { $0 + Double($1.offset * $1.element) }
        var sumBackground = 0.0
        var weightBackground = 0.0
        var best = 0.0
        var threshold = 127
        for level in 0..<256 {
            weightBackground += Double(histogram[level])
            guard weightBackground > 0 else { continue }
            let weightForeground = total - weightBackground
            guard weightForeground > 0 else { break }
            sumBackground += Double(level * histogram[level])
            let meanBackground = sumBackground / weightBackground
            let meanForeground = (sum - sumBackground) / weightForeground
            let between = weightBackground * weightForeground * (meanBackground - meanForeground) * (meanBackground - meanForeground)
            if between > best {
                best = between
                threshold = level
            }
        }
        let cut = UInt8(threshold)
        return GrayImage(width: image.width, height: image.height, pixels: image.pixels.map { $0 > cut ? 255 : 0 })
    }
}

extension ImageFilters {
    /// Bradley–Roth adaptive threshold: a pixel is dark when it is `percent` below the mean of
    /// the `window`-wide square around it (summed-area table, so O(pixels) whatever the window).
    /// Rescues uneven light (phone photos, a shadow over half the page) that a global threshold
    /// cannot.
    static func adaptiveThreshold(_ image: GrayImage, window: Int = 31, percent: Int = 15) -> GrayImage {
        let width = image.width
        let height = image.height
        var integral = [UInt32](repeating: 0, count: (width + 1) * (height + 1))
        for y in 0..<height {
            var rowSum: UInt32 = 0
            for x in 0..<width {
                rowSum += UInt32(image.pixels[y * width + x])
                integral[(y + 1) * (width + 1) + x + 1] = integral[y * (width + 1) + x + 1] + rowSum
            }
        }
        let half = window / 2
        var out = [UInt8](repeating: 255, count: width * height)
        for y in 0..<height {
            let y0 = max(0, y - half)
            let y1 = min(height, y + half + 1)
            for x in 0..<width {
                let x0 = max(0, x - half)
                let x1 = min(width, x + half + 1)
                let count = UInt32((x1 - x0) * (y1 - y0))
                let sum = integral[y1 * (width + 1) + x1] + integral[y0 * (width + 1) + x0]
                    - integral[y0 * (width + 1) + x1] - integral[y1 * (width + 1) + x0]
                if UInt32(image.pixels[y * width + x]) * count * 100 < sum * UInt32(100 - percent) {
                    out[y * width + x] = 0
                }
            }
        }
        return GrayImage(width: width, height: height, pixels: out)
    }
}

extension ImageFilters {
    /// A page with next to no ink: the back of a duplex-scanned sheet. Ink is a pixel much darker
    /// than the paper whose right, lower and diagonal neighbours are ink too (isolated specks of
    /// sensor noise do not count); the outer 4% is ignored for scanner-edge shadows. Blank means
    /// under 0.03% ink: a page with one short written line still has more.
    static func isBlank(_ image: GrayImage) -> Bool {
        let width = image.width
        let height = image.height
        guard width >= 16, height >= 16 else { return false }
        var histogram = [Int](repeating: 0, count: 256)
        for value in image.pixels { histogram[Int(value)] += 1 }
        // The paper: the level 90% of pixels are darker than or equal to.
        var seen = 0
        var paper = 255
        for level in 0..<256 {
            seen += histogram[level]
            if seen >= image.pixels.count * 9 / 10 {
                paper = level
                break
            }
        }
        let ink = UInt8(max(0, paper * 6 / 10))
        let left = width * 4 / 100
        let top = height * 4 / 100
        var count = 0
        image.pixels.withUnsafeBufferPointer { pixels in
            for y in top..<(height - top - 1) {
                let row = y * width
                for x in left..<(width - left - 1) where pixels[row + x] < ink {
                    if pixels[row + x + 1] < ink && pixels[row + width + x] < ink && pixels[row + width + x + 1] < ink {
                        count += 1
                    }
                }
            }
        }
        let area = (width - 2 * left) * (height - 2 * top)
        return count * 10_000 < area * 3
    }
}
