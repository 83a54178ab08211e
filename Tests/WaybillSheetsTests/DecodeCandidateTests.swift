import Foundation
import Testing
import WaybillCore
@testable import WaybillScan
import WaybillSheets

/// The cheap look for codes that decides where the clean-up passes run (and whether they run at
/// all), on sheets damaged beyond the plain pass and on pages of text; and the filters under it,
/// against their plain definitions.
@Suite struct DecodeCandidateTests {
    /// A Letter sheet rendered at 150 dpi, its content and the keys that signed it.
    static func sheet() throws -> (image: GrayImage, content: SheetContent, keys: SigningKeys) {
        let (pdf, content, keys) = try PDFScanLayoutTests().sheetPDF()
        return (try PDFDocument(data: pdf).render(page: 0, dpi: 150), content, keys)
    }

    /// Where the standard Letter template puts the codes (Templates/standard-letter.svg), in
    /// pixels at 150 dpi.
    static let qrCode = PixelRect(x: 438 * 150 / 72, y: 116 * 150 / 72, width: 126 * 150 / 72, height: 126 * 150 / 72)
    static let code128 = PixelRect(x: 94 * 150 / 72, y: 636 * 150 / 72, width: 470 * 150 / 72, height: 54 * 150 / 72)

    /// SplitMix64: the same noise on every run.
    struct Noise {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        /// Near-Gaussian: the sum of four uniforms, scaled to `sigma`.
        mutating func gaussian(_ sigma: Double) -> Double {
            var sum = 0.0
            for _ in 0..<4 { sum += Double(next() >> 11) / Double(1 << 53) - 0.5 }
            return sum / 0.57735 * sigma
        }
    }

    /// Sensor noise of `sigma` levels on every pixel, as a cheap scanner or a phone adds.
    static func noisy(_ image: GrayImage, sigma: Double, seed: UInt64 = 11) -> GrayImage {
        var noise = Noise(state: seed)
        var out = image
        for index in out.pixels.indices {
            out.pixels[index] = UInt8(max(0, min(255, (Double(out.pixels[index]) + noise.gaussian(sigma)).rounded())))
        }
        return out
    }

    static func blotted(_ image: GrayImage, _ rect: PixelRect) -> GrayImage {
        var out = image
        for y in rect.y..<rect.maxY {
            for x in rect.x..<rect.maxX { out.pixels[y * image.width + x] = 30 }
        }
        return out
    }

    /// Turned a quarter clockwise.
    static func turned(_ image: GrayImage) -> GrayImage {
        var out = [UInt8](repeating: 0, count: image.pixels.count)
        for y in 0..<image.height {
            for x in 0..<image.width {
                out[x * image.height + (image.height - 1 - y)] = image.pixels[y * image.width + x]
            }
        }
        return GrayImage(width: image.height, height: image.width, pixels: out)
    }

    static func contains(_ regions: [PixelRect], _ rect: PixelRect) -> Bool {
        regions.contains { $0.x <= rect.x && $0.y <= rect.y && $0.maxX >= rect.maxX && $0.maxY >= rect.maxY }
    }

    @Test func bothCodesOfACleanSheetAreCandidates() throws {
        let (image, _, _) = try Self.sheet()
        let regions = ImageFilters.codeRegions(in: image)
        #expect(Self.contains(regions, Self.qrCode), "\(regions)")
        #expect(Self.contains(regions, Self.code128), "\(regions)")
        // Crops, not the page: together well under half of it.
        #expect(regions.reduce(0) { $0 + $1.area } * 2 < image.width * image.height)
    }

    /// Noise, a blot over either code, a quarter turn: the clean-up passes still see the codes and
    /// read the sheet from the crops.
    @Test(arguments: ["noise", "noise, QR blotted", "noise, Code 128 blotted", "noise, turned", "shadow and noise"])
    func damagedSheetsAreReadFromTheirCrops(damage: String) throws {
        let (clean, content, keys) = try Self.sheet()
        var image = clean
        if damage.contains("QR blotted") { image = Self.blotted(image, Self.qrCode) }
        if damage.contains("Code 128 blotted") { image = Self.blotted(image, Self.code128) }
        if damage.contains("shadow") {
            // Darker to the right, down to a fifth of the light: a global threshold cannot cope.
            for y in 0..<image.height {
                for x in 0..<image.width {
                    let light = 1 - 0.8 * Double(x) / Double(image.width)
                    image.pixels[y * image.width + x] = UInt8(Double(image.pixels[y * image.width + x]) * light)
                }
            }
        }
        image = Self.noisy(image, sigma: damage.contains("shadow") ? 25 : 40)
        if damage.contains("turned") { image = Self.turned(image) }
        let regions = ImageFilters.codeRegions(in: image)
        #expect(!regions.isEmpty)
        let decoder = try ScanDecoder(keys: keys)
        // The clean-up passes on their own (whatever the plain pass makes of it), then the page.
        let rescued = decoder.cleanUpPasses(image, page: 0, after: [])
        let rescuedSheet = decoder.bestSheet(rescued, page: 0)
        #expect(rescuedSheet?.verification == .valid(content.directive.id), "\(damage): \(rescued)")
        let result = decoder.scanPage(0) { _ in image }
        #expect(result.error == nil)
        #expect(result.sheet?.verification == .valid(content.directive.id), "\(damage): \(result.barcodes), \(regions)")
        #expect(!result.isBlank)
    }

    /// Pages of text, as the decode benchmark makes them: no candidate anywhere, so only the plain
    /// pass runs. And the blank detector still tells them from a blank back.
    @Test func textPagesHaveNoCandidates() throws {
        let (pdf, _, keys) = try PDFScanLayoutTests().sheetPDF()
        let directory = NSTemporaryDirectory() + "waybill-candidates-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try pdf.write(to: URL(fileURLWithPath: directory + "/sheet.pdf"))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [
            PDFScanLayoutTests.corpusScript, directory + "/sheet.pdf", directory + "/corpus",
            "--files", "1", "--pages", "4",
        ]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let document = try PDFDocument(path: directory + "/corpus/batch-0000.pdf")
        #expect(document.pageCount == 4)
        let decoder = try ScanDecoder(keys: keys)
        for page in 1..<4 {
            let image = try document.render(page: page, dpi: 150)
            #expect(ImageFilters.codeRegions(in: image).isEmpty, "page \(page)")
            let result = decoder.scanPage(page) { _ in image }
            #expect(result.sheet == nil && !result.isBlank && result.barcodes.isEmpty)
        }
    }

    @Test func aBlankBackWithSpecksIsBlankAndHasNoCandidates() throws {
        var noise = Noise(state: 3)
        var pixels = [UInt8](repeating: 250, count: 1275 * 1650)
        for _ in 0..<2_000 { pixels[Int(noise.next() % UInt64(pixels.count))] = 0 }
        let image = GrayImage(width: 1275, height: 1650, pixels: pixels)
        #expect(ImageFilters.codeRegions(in: image).isEmpty)
        #expect(ImageFilters.isBlank(image))
        let (_, _, keys) = try Self.sheet()
        #expect(try ScanDecoder(keys: keys).scanPage(0) { _ in image }.isBlank)
        // Sensor noise over the whole page is not ink either.
        let grey = GrayImage(width: 850, height: 1100, pixels: .init(repeating: 235, count: 850 * 1100))
        #expect(ImageFilters.isBlank(Self.noisy(grey, sigma: 8)))
    }

    @Test func tinyImagesAreTakenWhole() {
        let image = GrayImage(width: 40, height: 30, pixels: .init(repeating: 255, count: 1200))
        #expect(ImageFilters.codeRegions(in: image) == [PixelRect(x: 0, y: 0, width: 40, height: 30)])
    }

    // MARK: The filters, against their plain definitions

    static func random(width: Int, height: Int, seed: UInt64) -> GrayImage {
        var noise = Noise(state: seed)
        let pixels = (0..<(width * height)).map { _ in UInt8(truncatingIfNeeded: noise.next()) }
        return GrayImage(width: width, height: height, pixels: pixels)
    }

    @Test func reductionsAndCropsMatchTheirDefinitions() {
        let image = Self.random(width: 37, height: 29, seed: 5)
        func at(_ x: Int, _ y: Int) -> Int { Int(image.pixels[y * image.width + x]) }
        let halved = image.halved()
        #expect(halved.width == 18 && halved.height == 14)
        for y in 0..<halved.height {
            for x in 0..<halved.width {
                let sum = at(2 * x, 2 * y) + at(2 * x + 1, 2 * y) + at(2 * x, 2 * y + 1) + at(2 * x + 1, 2 * y + 1)
                #expect(Int(halved.pixels[y * halved.width + x]) == (sum + 2) / 4)
            }
        }
        let rows = image.banded(transposed: false)
        #expect(rows.width == 37 && rows.height == 7)
        let columns = image.banded(transposed: true)
        #expect(columns.width == 29 && columns.height == 9)
        for band in 0..<7 {
            for x in 0..<37 {
                #expect(Int(rows.pixels[band * 37 + x]) == (0..<4).map { at(x, 4 * band + $0) }.reduce(0, +) / 4)
            }
        }
        for band in 0..<9 {
            for y in 0..<29 {
                #expect(Int(columns.pixels[band * 29 + y]) == (0..<4).map { at(4 * band + $0, y) }.reduce(0, +) / 4)
            }
        }
        let crop = image.cropped(to: PixelRect(x: 3, y: 5, width: 10, height: 7))
        #expect(crop.width == 10 && crop.height == 7)
        #expect(crop.pixels == (5..<12).flatMap { y in (3..<13).map { x in image.pixels[y * 37 + x] } })
    }

    @Test func thresholdsMatchTheirDefinitions() {
        let image = Self.random(width: 53, height: 41, seed: 9)
        var histogram = [Int](repeating: 0, count: 256)
        for pixel in image.pixels { histogram[Int(pixel)] += 1 }
        #expect(ImageFilters.histogram(image) == histogram)
        // Bradley–Roth, written out.
        let window = 31
        let percent = 15
        let adaptive = ImageFilters.adaptiveThreshold(image, window: window, percent: percent)
        for y in 0..<image.height {
            for x in 0..<image.width {
                let ys = max(0, y - window / 2)..<min(image.height, y + window / 2 + 1)
                let xs = max(0, x - window / 2)..<min(image.width, x + window / 2 + 1)
                let sum = ys.flatMap { yy in xs.map { Int(image.pixels[yy * image.width + $0]) } }.reduce(0, +)
                let dark = Int(image.pixels[y * image.width + x]) * ys.count * xs.count * 100 < sum * (100 - percent)
                #expect(adaptive.pixels[y * image.width + x] == (dark ? 0 : 255))
            }
        }
    }

    @Test func touchingRectanglesMerge() {
        let merged = ImageFilters.merged(
            [
                PixelRect(x: 0, y: 0, width: 10, height: 10), PixelRect(x: 50, y: 50, width: 5, height: 5),
                PixelRect(x: 10, y: 5, width: 10, height: 10), PixelRect(x: 19, y: 14, width: 40, height: 2),
            ], gap: 0)
        let expected = [PixelRect(x: 0, y: 0, width: 59, height: 16), PixelRect(x: 50, y: 50, width: 5, height: 5)]
        #expect(Set(merged) == Set(expected))
        let apart = [PixelRect(x: 0, y: 0, width: 1, height: 1), PixelRect(x: 5, y: 0, width: 1, height: 1)]
        #expect(ImageFilters.merged(apart, gap: 3).count == 2)
    }
}
