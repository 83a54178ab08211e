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
        let histogram = Self.histogram(image)
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
        let stride = width + 1
        var integral = [UInt32](repeating: 0, count: stride * (height + 1))
        var out = [UInt8](repeating: 255, count: width * height)
        let half = window / 2
        image.pixels.withUnsafeBufferPointer { pixels in
            integral.withUnsafeMutableBufferPointer { integral in
                for y in 0..<height {
                    var rowSum: UInt32 = 0
                    for x in 0..<width {
                        rowSum += UInt32(pixels[y * width + x])
                        integral[(y + 1) * stride + x + 1] = integral[y * stride + x + 1] + rowSum
                    }
                }
                out.withUnsafeMutableBufferPointer { out in
                    for y in 0..<height {
                        let y0 = max(0, y - half)
                        let y1 = min(height, y + half + 1)
                        let top = integral.baseAddress! + y0 * stride
                        let bottom = integral.baseAddress! + y1 * stride
                        for x in 0..<width {
                            let x0 = max(0, x - half)
                            let x1 = min(width, x + half + 1)
                            let count = UInt32((x1 - x0) * (y1 - y0))
                            // Wrapping: the four corners may overflow in between, never in sum.
                            let sum = bottom[x1] &+ top[x0] &- top[x1] &- bottom[x0]
                            if UInt32(pixels[y * width + x]) * count * 100 < sum * UInt32(100 - percent) {
                                out[y * width + x] = 0
                            }
                        }
                    }
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
    /// How many pixels have each value.
    static func histogram(_ image: GrayImage) -> [Int] {
        // Four tables, so that runs of equal pixels do not wait on one counter.
        var counts = [Int](repeating: 0, count: 4 * 256)
        image.pixels.withUnsafeBufferPointer { pixels in
            counts.withUnsafeMutableBufferPointer { counts in
                let count = pixels.count
                var index = 0
                while index + 4 <= count {
                    counts[Int(pixels[index])] += 1
                    counts[256 + Int(pixels[index + 1])] += 1
                    counts[512 + Int(pixels[index + 2])] += 1
                    counts[768 + Int(pixels[index + 3])] += 1
                    index += 4
                }
                while index < count {
                    counts[Int(pixels[index])] += 1
                    index += 1
                }
            }
        }
        return (0..<256).map { counts[$0] + counts[256 + $0] + counts[512 + $0] + counts[768 + $0] }
    }

    static func isBlank(_ image: GrayImage) -> Bool {
        let width = image.width
        let height = image.height
        guard width >= 16, height >= 16 else { return false }
        let histogram = Self.histogram(image)
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
        let area = (width - 2 * left) * (height - 2 * top)
        var count = 0
        image.pixels.withUnsafeBufferPointer { pixels in
            for y in top..<(height - top - 1) {
                let row = y * width
                for x in left..<(width - left - 1) where pixels[row + x] < ink {
                    if pixels[row + x + 1] < ink && pixels[row + width + x] < ink && pixels[row + width + x + 1] < ink {
                        count += 1
                    }
                }
                // Enough ink already: a text page is known after its first lines.
                if count * 10_000 >= area * 3 { return }
            }
        }
        return count * 10_000 < area * 3
    }
}

// MARK: Where codes might be

extension ImageFilters {
    /// Regions of `image` that may hold a QR code or a linear barcode, in `image`'s pixels:
    /// QR finder patterns (the 1:1:3:1:1 dark-light runs across and down, as zxing finds them)
    /// and patches of many parallel edges that stay put for a bar's height (Code 128). Meant to
    /// be cheap (a few milliseconds at 150 dpi) and generous: a page with none is not worth the
    /// clean-up passes; a false alarm only costs them on a crop.
    static func codeRegions(in image: GrayImage) -> [PixelRect] {
        let short = min(image.width, image.height)
        guard short >= 64 else { return [PixelRect(x: 0, y: 0, width: image.width, height: image.height)] }
        return merged(finderRegions(in: image) + barRegions(in: image), gap: 0)
    }

    /// Merges rectangles that touch until none do.
    static func merged(_ rects: [PixelRect], gap: Int) -> [PixelRect] {
        var result: [PixelRect] = []
        for rect in rects {
            var current = rect
            var changed = true
            while changed {
                changed = false
                if let index = result.firstIndex(where: { $0.touches(current, gap: gap) }) {
                    current = current.union(result.remove(at: index))
                    changed = true
                }
            }
            result.append(current)
        }
        return result
    }
}

extension ImageFilters {
    /// A finder pattern: its centre and module size in a reduced image, and how many rows hit it.
    struct Finder {
        var x: Double
        var y: Double
        var moduleX: Double
        var moduleY: Double
        var hits: Int
    }

    /// QR finder patterns, searched on a 2×2-averaged copy (which also halves sensor noise)
    /// binarized against the mean of its neighbourhood (zxing's HybridBinarizer: 8-pixel blocks,
    /// 5×5 blocks around), so uneven light and low toner do not hide them.
    static func finderRegions(in image: GrayImage) -> [PixelRect] {
        let factor = min(image.width, image.height) >= 950 ? 2 : 1
        let small = factor == 2 ? image.halved() : image
        // Three rows through a pattern, not one chance alignment in text or noise.
        let finders = findFinders(in: small).filter { $0.hits >= 3 }
        guard !finders.isEmpty else { return [] }
        // Group the patterns of one symbol: similar module, within 60 modules of each other.
        var groups: [[Finder]] = []
        for finder in finders {
            if let index = groups.firstIndex(where: { group in
                group.contains { other in
                    let module = max(finder.moduleX, other.moduleX)
                    return abs(finder.x - other.x) < 60 * module && abs(finder.y - other.y) < 60 * module
                        && max(finder.moduleX, other.moduleX) < 2 * min(finder.moduleX, other.moduleX)
                }
            }) {
                groups[index].append(finder)
            } else {
                groups.append([finder])
            }
        }
        let scale = Double(factor)
        return groups.map { group in
            let moduleX = group.map(\.moduleX).reduce(0, +) / Double(group.count)
            let moduleY = group.map(\.moduleY).reduce(0, +) / Double(group.count)
            let minX = group.map(\.x).min()!
            let maxX = group.map(\.x).max()!
            let minY = group.map(\.y).min()!
            let maxY = group.map(\.y).max()!
            // Three corners bound the symbol; with fewer, it may reach as far again the other
            // way, and one alone says nothing of the version: 40 modules covers version 6.
            let reach: (x: Double, y: Double)
            switch group.count {
            case 1: reach = (40 * moduleX, 40 * moduleY)
            case 2:
                let side = max((maxX - minX) / moduleX, (maxY - minY) / moduleY)
                reach = ((side + 9) * moduleX, (side + 9) * moduleY)
            default: reach = (9 * moduleX, 9 * moduleY)
            }
            let rect = PixelRect(
                minX: Int(((minX - reach.x) * scale).rounded(.down)),
                minY: Int(((minY - reach.y) * scale).rounded(.down)),
                maxX: Int(((maxX + reach.x) * scale).rounded(.up)),
                maxY: Int(((maxY + reach.y) * scale).rounded(.up)))
            return rect.expanded(dx: 0, dy: 0, within: image.width, image.height)
        }
    }

    static func findFinders(in image: GrayImage) -> [Finder] {
        let width = image.width
        let height = image.height
        guard width >= 40, height >= 40 else { return [] }
        let dark = darkMask(image)
        var finders: [Finder] = []
        dark.withUnsafeBufferPointer { dark in
            func isDark(_ x: Int, _ y: Int) -> Bool { dark[y * width + x] != 0 }
            func ratioHolds(_ counts: (Int, Int, Int, Int, Int)) -> Bool {
                let (a, b, c, d, e) = counts
                guard a > 0, b > 0, c > 0, d > 0, e > 0 else { return false }
                let total = a + b + c + d + e
                guard total >= 8 else { return false }
                let module = Double(total) / 7
                let variance = module / 2
                return abs(module - Double(a)) < variance && abs(module - Double(b)) < variance
                    && abs(3 * module - Double(c)) < 3 * variance && abs(module - Double(d)) < variance
                    && abs(module - Double(e)) < variance
            }
            /// Runs through (`x`, `y`) along one axis: (outer, white, centre, white, outer) and the centre.
            func runs(_ x: Int, _ y: Int, vertical: Bool, limit: Int) -> ((Int, Int, Int, Int, Int), Double)? {
                let length = vertical ? height : width
                let start = vertical ? y : x
                func at(_ i: Int) -> Bool { vertical ? isDark(x, i) : isDark(i, y) }
                guard at(start) else { return nil }
                var i = start
                var centre = 0
                var before = (0, 0)
                while i >= 0 && at(i) { centre += 1; i -= 1 }
                while i >= 0 && !at(i) && before.0 <= limit { before.0 += 1; i -= 1 }
                while i >= 0 && at(i) && before.1 <= limit { before.1 += 1; i -= 1 }
                i = start + 1
                var after = (0, 0)
                while i < length && at(i) { centre += 1; i += 1 }
                let centreEnd = i
                while i < length && !at(i) && after.0 <= limit { after.0 += 1; i += 1 }
                while i < length && at(i) && after.1 <= limit { after.1 += 1; i += 1 }
                guard before.0 <= limit, before.1 <= limit, after.0 <= limit, after.1 <= limit, centre <= 3 * limit
                else { return nil }
                return ((before.1, before.0, centre, after.0, after.1), Double(centreEnd) - Double(centre) / 2)
            }
            for y in 0..<height {
                var counts = (0, 0, 0, 0, 0)
                var state = 0
                var x = 0
                func check(end: Int) {
                    guard ratioHolds(counts) else { return }
                    let total = counts.0 + counts.1 + counts.2 + counts.3 + counts.4
                    let centreX = end - counts.4 - counts.3 - counts.2 / 2 - 1
                    // Down the centre column: the same ratio, any scale within 3× (fax is 204×98).
                    guard let (vertical, centreY) = runs(centreX, y, vertical: true, limit: 3 * total),
                        ratioHolds(vertical)
                    else { return }
                    let verticalTotal = vertical.0 + vertical.1 + vertical.2 + vertical.3 + vertical.4
                    guard verticalTotal * 3 >= total, verticalTotal <= 3 * total else { return }
                    // And across again through the vertical centre.
                    let row = min(height - 1, max(0, Int(centreY)))
                    guard let (horizontal, centreX2) = runs(centreX, row, vertical: false, limit: 2 * total),
                        ratioHolds(horizontal)
                    else { return }
                    let horizontalTotal = horizontal.0 + horizontal.1 + horizontal.2 + horizontal.3 + horizontal.4
                    let moduleX = Double(horizontalTotal) / 7
                    let moduleY = Double(verticalTotal) / 7
                    if let index = finders.firstIndex(where: {
                        abs($0.x - centreX2) <= 2 * max(moduleX, $0.moduleX)
                            && abs($0.y - centreY) <= 2 * max(moduleY, $0.moduleY)
                    }) {
                        let n = Double(finders[index].hits)
                        finders[index].x = (finders[index].x * n + centreX2) / (n + 1)
                        finders[index].y = (finders[index].y * n + centreY) / (n + 1)
                        finders[index].moduleX = (finders[index].moduleX * n + moduleX) / (n + 1)
                        finders[index].moduleY = (finders[index].moduleY * n + moduleY) / (n + 1)
                        finders[index].hits += 1
                    } else if finders.count < 1000 {
                        finders.append(Finder(x: centreX2, y: centreY, moduleX: moduleX, moduleY: moduleY, hits: 1))
                    }
                }
                let rowStart = y * width
                while x < width {
                    if dark[rowStart + x] != 0 {
                        if state & 1 == 1 { state += 1 }
                        switch state {
                        case 0: counts.0 += 1
                        case 2: counts.2 += 1
                        default: counts.4 += 1
                        }
                    } else if state & 1 == 0 {
                        if state == 4 {
                            check(end: x)
                            counts = (counts.2, counts.3, counts.4, 1, 0)
                            state = 3
                        } else {
                            state += 1
                            if state == 1 { counts.1 += 1 } else { counts.3 += 1 }
                        }
                    } else {
                        if state == 1 { counts.1 += 1 } else { counts.3 += 1 }
                    }
                    x += 1
                }
                if state == 4 { check(end: width) }
            }
        }
        return finders
    }

    /// 1 where a pixel is darker than its neighbourhood: zxing's HybridBinarizer. Blocks of 8×8
    /// with next to no contrast count as paper, unless their neighbours say they lie in ink.
    static func darkMask(_ image: GrayImage) -> [UInt8] {
        let width = image.width
        let height = image.height
        let block = 8
        let blocksX = (width + block - 1) / block
        let blocksY = (height + block - 1) / block
        var blackPoints = [Int](repeating: 0, count: blocksX * blocksY)
        var mask = [UInt8](repeating: 0, count: width * height)
        image.pixels.withUnsafeBufferPointer { pixels in
            blackPoints.withUnsafeMutableBufferPointer { points in
                for by in 0..<blocksY {
                    let y0 = min(by * block, height - block)
                    for bx in 0..<blocksX {
                        let x0 = min(bx * block, width - block)
                        var sum = 0
                        var darkest: UInt8 = 255
                        var lightest: UInt8 = 0
                        for y in y0..<(y0 + block) {
                            let row = pixels.baseAddress! + y * width + x0
                            for x in 0..<8 {
                                let value = row[x]
                                sum &+= Int(value)
                                darkest = min(darkest, value)
                                lightest = max(lightest, value)
                            }
                        }
                        let low = Int(darkest)
                        let high = Int(lightest)
                        var average = sum / (block * block)
                        if high - low <= 24 {
                            average = low / 2
                            if by > 0 && bx > 0 {
                                let neighbours = (points[(by - 1) * blocksX + bx] + 2 * points[by * blocksX + bx - 1]
                                    + points[(by - 1) * blocksX + bx - 1]) / 4
                                if low < neighbours { average = neighbours }
                            }
                        }
                        points[by * blocksX + bx] = average
                    }
                }
            }
            blackPoints.withUnsafeBufferPointer { points in
                mask.withUnsafeMutableBufferPointer { mask in
                    for by in 0..<blocksY {
                        let y0 = min(by * block, height - block)
                        let top = min(max(by, 2), max(2, blocksY - 3))
                        for bx in 0..<blocksX {
                            let x0 = min(bx * block, width - block)
                            let left = min(max(bx, 2), max(2, blocksX - 3))
                            var sum = 0
                            var count = 0
                            for ny in max(0, top - 2)...min(blocksY - 1, top + 2) {
                                for nx in max(0, left - 2)...min(blocksX - 1, left + 2) {
                                    sum += points[ny * blocksX + nx]
                                    count += 1
                                }
                            }
                            let threshold = UInt8(clamping: sum / count)
                            for y in y0..<(y0 + block) {
                                let source = pixels.baseAddress! + y * width + x0
                                let target = mask.baseAddress! + y * width + x0
                                for x in 0..<block { target[x] = source[x] <= threshold ? 1 : 0 }
                            }
                        }
                    }
                }
            }
        }
        return mask
    }
}

extension ImageFilters {
    /// Linear barcodes: rows averaged in bands of four (bars keep their edges, noise and text
    /// blur), edges found across each band and followed down from band to band (one pixel of
    /// drift a band, for skew). A barcode is many edges close together that all last a bar's
    /// height; a line of text is too short and a table too sparse. Done on columns too, for
    /// pages turned a quarter.
    static func barRegions(in image: GrayImage) -> [PixelRect] {
        let band = 4
        let short = min(image.width, image.height)
        // At 150 dpi: bars at least 40 px (a quarter inch) tall, 9 lasting edges in 48 px (Waybill's
        // Code 128 has 11 there, at 2.4 px a module; lines of text seen edgeways, about 6).
        let span = max(40, short * 40 / 1275)
        let window = max(48, short * 48 / 1275)
        var regions: [PixelRect] = []
        for transposed in [false, true] {
            let bands = image.banded(transposed: transposed)
            let lasting = lastingEdgeRegions(bands, rows: span / band, window: window, minimumEdges: 9)
            // Shorter than two windows: a word seen edgeways, not a code.
            for rect in lasting where rect.width >= 2 * window {
                // Back to image pixels: a band row is `band` image rows (columns when turned).
                let along = (rect.x, rect.maxX)
                let across = (rect.y * band, rect.maxY * band)
                regions.append(
                    transposed
                        ? PixelRect(minX: across.0, minY: along.0, maxX: across.1, maxY: along.1)
                        : PixelRect(minX: along.0, minY: across.0, maxX: along.1, maxY: across.1))
            }
        }
        // A code is read whole: reach along the bars' row for a part a smudge hid, and beyond
        // for the quiet zones.
        return regions.map { rect in
            let wide = rect.width >= rect.height
            let margin = (wide ? rect.width : rect.height) / 2 + span
            return rect.expanded(dx: wide ? margin : span, dy: wide ? span : margin, within: image.width, image.height)
        }
    }

    /// Runs of `window` columns with at least `minimumEdges` edges that each lasted `rows` rows,
    /// as rectangles in `image`'s own pixels.
    static func lastingEdgeRegions(_ image: GrayImage, rows: Int, window: Int, minimumEdges: Int) -> [PixelRect] {
        let width = image.width
        let height = image.height
        guard width > window + 2, height > rows, rows >= 1 else { return [] }
        // A step of 40 levels over two pixels, on band averages: sensor noise alone rarely makes
        // one, and never one that lasts `rows` bands.
        let step: Int16 = 40
        let required = UInt8(min(255, rows))
        var gradient = [Int16](repeating: 0, count: width)
        var previous = [UInt8](repeating: 0, count: width)
        var current = [UInt8](repeating: 0, count: width)
        var found: [PixelRect] = []
        image.pixels.withUnsafeBufferPointer { pixels in
            gradient.withUnsafeMutableBufferPointer { gradient in
                for y in 0..<height {
                    let row = pixels.baseAddress! + y * width
                    for x in 1..<(width - 1) { gradient[x] = Int16(row[x + 1]) &- Int16(row[x - 1]) }
                    current.withUnsafeMutableBufferPointer { current in
                        previous.withUnsafeBufferPointer { previous in
                            // An edge is the steepest point of a step, rising or falling; it is
                            // followed down from the row above, one pixel of drift allowed.
                            var lastingInRow = 0
                            var x = 1
                            // Sixteen columns at a time, then one at a time for the rest.
                            let steps = SIMD16<Int16>(repeating: step)
                            let lengthNeeded = SIMD16<Int16>(repeating: Int16(required))
                            let slopes = UnsafeRawPointer(gradient.baseAddress!)
                            let above = UnsafeRawPointer(previous.baseAddress!)
                            let below = UnsafeMutableRawPointer(current.baseAddress!)
                            while x + 17 <= width {
                                let g = slopes.loadUnaligned(fromByteOffset: 2 * x, as: SIMD16<Int16>.self)
                                let left = slopes.loadUnaligned(fromByteOffset: 2 * x - 2, as: SIMD16<Int16>.self)
                                let right = slopes.loadUnaligned(fromByteOffset: 2 * x + 2, as: SIMD16<Int16>.self)
                                let rising = (g .>= steps) .& (g .>= left) .& (g .> right)
                                let falling = (g .<= 0 &- steps) .& (g .<= left) .& (g .< right)
                                let longest = pointwiseMax(
                                    pointwiseMax(
                                        above.loadUnaligned(fromByteOffset: x - 1, as: SIMD16<UInt8>.self),
                                        above.loadUnaligned(fromByteOffset: x, as: SIMD16<UInt8>.self)),
                                    above.loadUnaligned(fromByteOffset: x + 1, as: SIMD16<UInt8>.self))
                                let capped = pointwiseMin(longest, SIMD16(repeating: 254))
                                let grown = SIMD16<Int16>(truncatingIfNeeded: capped) &+ 1
                                let length = SIMD16<Int16>.zero.replacing(with: grown, where: rising .| falling)
                                let bytes = SIMD16<UInt8>(truncatingIfNeeded: length)
                                below.storeBytes(of: bytes, toByteOffset: x, as: SIMD16<UInt8>.self)
                                let long = SIMD16<Int16>.zero.replacing(with: 1, where: length .>= lengthNeeded)
                                lastingInRow &+= Int(long.wrappedSum())
                                x += 16
                            }
                            while x < width - 1 {
                                let g = gradient[x]
                                let left = gradient[x - 1]
                                let right = gradient[x + 1]
                                let rising = g >= step && g >= left && g > right
                                let falling = g <= -step && g <= left && g < right
                                let longest = max(previous[x - 1], previous[x], previous[x + 1])
                                let length = rising || falling ? min(longest, 254) &+ 1 : 0
                                current[x] = length
                                lastingInRow &+= length >= required ? 1 : 0
                                x += 1
                            }
                            guard lastingInRow >= minimumEdges else { return }
                            var inside = false
                            var start = 0
                            var lasting = 0  // lasting edges in the window ending at x
                            for x in 1..<(width - 1) {
                                if current[x] >= required { lasting += 1 }
                                if x - window >= 1, current[x - window] >= required { lasting -= 1 }
                                if lasting >= minimumEdges {
                                    if !inside {
                                        inside = true
                                        start = max(0, x - window + 1)
                                    }
                                } else if inside {
                                    inside = false
                                    found.append(PixelRect(minX: start, minY: y + 1 - rows, maxX: x, maxY: y + 1))
                                }
                            }
                            if inside {
                                found.append(PixelRect(minX: start, minY: y + 1 - rows, maxX: width, maxY: y + 1))
                            }
                        }
                    }
                    swap(&previous, &current)
                    // A photo of a picket fence: give up counting and call it all a candidate.
                    if found.count > 4000 {
                        found = [PixelRect(x: 0, y: 0, width: width, height: height)]
                        return
                    }
                }
            }
        }
        return merged(found, gap: window)
    }
}
