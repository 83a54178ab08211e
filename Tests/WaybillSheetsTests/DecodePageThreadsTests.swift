import Foundation
import Testing
import WaybillCore
@testable import WaybillScan
import WaybillSheets

/// `ScanDecoder(keys:pageThreads:)`: pages of one file scanned on several threads still stream
/// out one at a time, in order, the same as on one thread; cancellation still stops the file.
@Suite struct DecodePageThreadsTests {
    /// A scanner-style PDF (the sheet, then text pages) and a multi-page TIFF of the same pages.
    static func batch(pages: Int) throws -> (pdf: String, tiff: String, content: SheetContent, keys: SigningKeys) {
        let (sheet, content, keys) = try PDFScanLayoutTests().sheetPDF()
        let directory = NSTemporaryDirectory() + "waybill-threads-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try sheet.write(to: URL(fileURLWithPath: directory + "/sheet.pdf"))
        let corpus = Process()
        corpus.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        corpus.arguments = [
            PDFScanLayoutTests.corpusScript, directory + "/sheet.pdf", directory + "/corpus",
            "--files", "1", "--pages", "\(pages)", "--dpi", "150",
        ]
        corpus.standardOutput = FileHandle.nullDevice
        try corpus.run()
        corpus.waitUntilExit()
        #expect(corpus.terminationStatus == 0)
        let pdf = directory + "/corpus/batch-0000.pdf"
        let tiff = directory + "/batch.tif"
        let convert = Process()
        convert.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        convert.arguments = [
            "-c",
            """
            import subprocess, sys, glob
            from PIL import Image
            subprocess.run(["pdftoppm", "-r", "100", "-gray", "-png", sys.argv[1], sys.argv[2] + "-p"], check=True)
            pages = [Image.open(f) for f in sorted(glob.glob(sys.argv[2] + "-p*.png"))]
            pages[0].save(sys.argv[2], compression="tiff_lzw", save_all=True, append_images=pages[1:])
            """,
            pdf, tiff,
        ]
        try convert.run()
        convert.waitUntilExit()
        #expect(convert.terminationStatus == 0)
        return (pdf, tiff, content, keys)
    }

    struct Seen: Equatable {
        var page: Int
        var barcodes: [DecodedBarcode]
        var sheet: SheetFinding?
        var isBlank: Bool
    }

    func decode(_ path: String, keys: SigningKeys, threads: Int) throws -> [Seen] {
        var seen: [Seen] = []
        let count = try ScanDecoder(keys: keys, pageThreads: threads).decode(path: path) {
            seen.append(Seen(page: $0.page, barcodes: $0.barcodes, sheet: $0.sheet, isBlank: $0.isBlank))
        }
        #expect(count == seen.count)
        return seen
    }

    @Test func pagesComeInOrderAndAsOnOneThread() throws {
        let (pdf, tiff, content, keys) = try Self.batch(pages: 9)
        for path in [pdf, tiff] {
            let alone = try decode(path, keys: keys, threads: 1)
            #expect(alone.map(\.page) == Array(0..<9))
            #expect(alone.first?.sheet?.verification == .valid(content.directive.id))
            for threads in [2, 3] {
                #expect(try decode(path, keys: keys, threads: threads) == alone, "\(path), \(threads) threads")
            }
        }
    }

    @Test func aCancelledTaskStopsTheFileMidway() async throws {
        let (pdf, _, _, keys) = try Self.batch(pages: 9)
        let task = Task { () -> (pages: [Int], error: WaybillError?) in
            var pages: [Int] = []
            do {
                try ScanDecoder(keys: keys, pageThreads: 2).decode(path: pdf) { page in
                    pages.append(page.page)
                    if page.page == 2 { withUnsafeCurrentTask { $0?.cancel() } }
                }
                return (pages, nil)
            } catch {
                return (pages, error as? WaybillError)
            }
        }
        let result = await task.value
        #expect(result.error?.code == .cancelled)
        // Pages 0 to 2 were handed over; the check before page 3 stops the file.
        #expect(result.pages == [0, 1, 2])
    }
}
