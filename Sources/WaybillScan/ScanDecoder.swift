import Dispatch
import Foundation
import Synchronization
public import WaybillCore

/// A routing sheet found on a page: what its token says and whether it verifies.
public struct SheetFinding: Sendable, Hashable {
    public let page: Int
    public let token: String
    public let verification: TokenVerification

    public var directive: DirectiveID? {
        switch verification {
        case .valid(let id), .invalidSignature(let id): id
        case .unknownKey, .malformed: SheetToken(parsing: token)?.directiveID
        }
    }
}

/// What one page of a scan holds.
public struct PageResult: Sendable {
    public let page: Int
    public let barcodes: [DecodedBarcode]
    /// The best Waybill token on the page: a verified one wins over one that does not verify.
    public let sheet: SheetFinding?
    /// A PATCH T separator page (Code 39 `PATCHT`, as Kofax and paperless-ngx use).
    public let isSeparator: Bool
    /// Set when this page could not be read; the rest of the file goes on.
    public let error: WaybillError?
    /// Next to no ink (a duplex back): not a document page, and no break in the batch rules.
    public var isBlank: Bool = false
}

/// Finds and verifies routing sheets in scans: PDFs (rendered with poppler), multi-page TIFFs,
/// JPEG and PNG. It never consults the directive store; resolving directives is the pipeline's job.
///
/// Pages stream through `decode`'s callback one at a time: a file's pages are never all in
/// memory. Every page is read at 150 dpi (images as scanned); the clean-up passes (blur and
/// Otsu's threshold, then an adaptive threshold for uneven light) run only when the plain pass
/// yields no verified token, and then only on crops around what looks like a QR finder pattern
/// or a patch of bars (`ImageFilters.codeRegions`). A page of text has neither, and costs the
/// plain pass and that look (a few milliseconds): 2 to 3 times less than with the clean-up
/// passes over the whole page. A 300-dpi pass found nothing the fixtures needed and cost five
/// times as much on every document page, so there is none.
///
/// Not `Sendable`: it owns a zbar scanner. Make one per worker.
public final class ScanDecoder {
    public static let maximumPages = 10_000
    public static let maximumFileBytes = 2 << 30

    private let keys: SigningKeys
    private let scanner: BarcodeScanner

    public init(keys: SigningKeys) throws(WaybillError) {
        self.keys = keys
        scanner = try BarcodeScanner()
    }

    /// Decodes one file, calling `onPage` for each page in order; returns the page count.
    /// Throws only for the file as a whole (unreadable, unsupported, encrypted, too many pages),
    /// or `.cancelled` between pages once the calling task is cancelled.
    @discardableResult
    public func decode(path: String, onPage: (PageResult) -> Void) throws(WaybillError) -> Int {
        try decode(path: path) { (page: PageResult) throws(WaybillError) in
            guard !Task.isCancelled else { throw WaybillError(.cancelled, "decoding was cancelled at page \(page.page)") }
            onPage(page)
        }
    }

    private func decode(path: String, onPage: (PageResult) throws(WaybillError) -> Void) throws(WaybillError) -> Int {
        let size: Int
        do {
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            size = (attributes[.size] as? NSNumber)?.intValue ?? 0
        } catch {
            throw WaybillError(.ioError, "cannot read \(path): \(error.localizedDescription)")
        }
        guard size > 0 else { throw WaybillError(.emptyFile, "the file is empty") }
        guard size <= Self.maximumFileBytes else {
            throw WaybillError(.unreadableDocument, "the file is \(size) bytes, more than Waybill reads")
        }
        guard let format = ScanFormat(path: path) else {
            throw WaybillError(.unsupportedFormat, "not a PDF, TIFF, JPEG or PNG file")
        }
        // Images are read whole (one page each); PDFs and TIFFs page by page from the file.
        func whole() throws(WaybillError) -> Data {
            do { return try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
                throw WaybillError(.ioError, "cannot read \(path): \(error.localizedDescription)")
            }
        }
        switch format {
        case .pdf:
            let document = try PDFDocument(path: path)
            guard document.pageCount > 0 else {
                throw WaybillError(.unreadableDocument, "the PDF has no readable pages (a broken or hostile page tree)")
            }
            guard document.pageCount <= Self.maximumPages else {
                throw WaybillError(.tooManyPages, "the PDF claims \(document.pageCount) pages; Waybill reads at most \(Self.maximumPages)")
            }
            // Pages that are one JPEG are read straight from the file, reduced in the DCT.
            let imagePages = PDFScanLayout.imagePages(path: path, expectedPageCount: document.pageCount)
            let file = imagePages == nil ? nil : ByteWindow(path: path)
            for page in 0..<document.pageCount {
                if let image = imagePages?[page], let file {
                    let scanDPI = Double(image.pixelWidth) * 72 / max(1, image.pageWidthPoints)
                    let result = scanPage(page) { dpi throws(WaybillError) in
                        try ImageReaders.jpeg(Data(file.read(image.jpeg)), maximumScale: min(1, dpi * 1.05 / max(1, scanDPI)))
                    }
                    // A JPEG TurboJPEG cannot read (CMYK, say) goes the ordinary way.
                    if result.error == nil {
                        try onPage(result)
                        continue
                    }
                }
                try onPage(scanPage(page) { dpi throws(WaybillError) in try document.render(page: page, dpi: dpi) })
            }
            return document.pageCount
        case .tiff:
            let document = try TIFFDocument(path: path)
            guard document.pageCount <= Self.maximumPages else {
                throw WaybillError(.tooManyPages, "the TIFF has more than \(Self.maximumPages) pages")
            }
            for page in 0..<document.pageCount {
                try onPage(scanPage(page) { _ throws(WaybillError) in try document.page(page) })
            }
            return document.pageCount
        case .jpeg:
            let data = try whole()
            try onPage(scanPage(0) { _ throws(WaybillError) in try ImageReaders.jpeg(data) })
            return 1
        case .png:
            let data = try whole()
            try onPage(scanPage(0) { _ throws(WaybillError) in try ImageReaders.png(data) })
            return 1
        }
    }

    /// Runs the passes on one page. `render(dpi)` gives the page at that resolution (images
    /// ignore it and give themselves as scanned; JPEGs are reduced in the DCT on the way).
    func scanPage(_ page: Int, render: (Double) throws(WaybillError) -> GrayImage) -> PageResult {
        var found: [DecodedBarcode] = []
        var blank = false
        func add(_ barcodes: [DecodedBarcode]) {
            for barcode in barcodes where !found.contains(barcode) { found.append(barcode) }
        }
        do {
            let first = try render(150)
            blank = ImageFilters.isBlank(first)
            add(scanner.scan(first))
            if bestSheet(found, page: page)?.verification.isValid != true {
                add(cleanUpPasses(first, page: page, after: found))
            }
        } catch {
            return PageResult(page: page, barcodes: found, sheet: bestSheet(found, page: page), isSeparator: false, error: error)
        }
        let separator = found.contains { $0.symbology == "CODE-39" && $0.text == "PATCHT" }
        return PageResult(
            page: page, barcodes: found, sheet: bestSheet(found, page: page), isSeparator: separator, error: nil,
            isBlank: blank && found.isEmpty)
    }

    /// Blur and Otsu's threshold, then (if still no token) the adaptive threshold: only on the
    /// regions where a code may be, cropped. Most pages of a batch are text, with no such region,
    /// and on them these passes used to cost twice the plain one and find nothing. Returns what
    /// it reads, found before or not.
    func cleanUpPasses(_ image: GrayImage, page: Int, after found: [DecodedBarcode]) -> [DecodedBarcode] {
        let regions = ImageFilters.codeRegions(in: image)
        // Crops that would cover most of the page anyway (a photograph): the page itself.
        let area = regions.reduce(0) { $0 + $1.area }
        let parts = area * 2 > image.width * image.height ? [image] : regions.map { image.cropped(to: $0) }
        let smooth = parts.map(ImageFilters.boxBlur3)
        var read: [DecodedBarcode] = []
        for part in smooth { read += scanner.scan(ImageFilters.otsuThreshold(part)) }
        if bestSheet(found + read, page: page) == nil {
            for part in smooth { read += scanner.scan(ImageFilters.adaptiveThreshold(part)) }
        }
        return read
    }

    func bestSheet(_ barcodes: [DecodedBarcode], page: Int) -> SheetFinding? {
        let findings = barcodes.filter { SheetToken.looksLikeToken($0.text) }.map {
            SheetFinding(page: page, token: $0.text, verification: keys.verify($0.text))
        }
        return findings.min { $0.verification.rank < $1.verification.rank }
    }
}

extension ScanDecoder {
    public struct Totals: Sendable {
        public var files = 0
        public var pages = 0
        public var sheets = 0
        public var failures = 0
    }

    /// Decodes files on `workers` threads, a decoder each, files handed out in order. For the
    /// benchmark and batch tools; errors count as failures and the rest goes on.
    public static func decodeFiles(_ files: [String], keys: SigningKeys, workers: Int) throws(WaybillError) -> Totals {
        let next = Mutex(0)
        let totals = Mutex(Totals())
        let setup = Mutex<WaybillError?>(nil)
        DispatchQueue.concurrentPerform(iterations: max(1, min(workers, files.count))) { _ in
            let decoder: ScanDecoder
            do throws(WaybillError) { decoder = try ScanDecoder(keys: keys) } catch {
                setup.withLock { $0 = error }
                return
            }
            while true {
                let index = next.withLock { value -> Int in
                    defer { value += 1 }
                    return value
                }
                guard index < files.count else { return }
                var local = Totals(files: 1)
                do {
                    local.pages = try decoder.decode(path: files[index]) { page in
                        if page.sheet != nil { local.sheets += 1 }
                        if page.error != nil { local.failures += 1 }
                    }
                } catch {
                    local.failures += 1
                }
                totals.withLock {
                    $0.files += local.files
                    $0.pages += local.pages
                    $0.sheets += local.sheets
                    $0.failures += local.failures
                }
            }
        }
        if let error = setup.withLock({ $0 }) { throw error }
        return totals.withLock { $0 }
    }
}

extension TokenVerification {
    public var isValid: Bool {
        if case .valid = self { return true }
        return false
    }

    /// Lower is better: valid, then forged (it names a directive), unknown key, malformed.
    var rank: Int {
        switch self {
        case .valid: 0
        case .invalidSignature: 1
        case .unknownKey: 2
        case .malformed: 3
        }
    }
}
