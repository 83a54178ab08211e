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
/// One page's work is bounded (`Configuration`): a PDF page is rendered to at most
/// `maximumRenderPixels`, and once a page has taken `pageTimeLimit` its remaining clean-up passes
/// are skipped and it reports `page-timeout`; the file goes on with the next page.
///
/// Not `Sendable`: it owns a zbar scanner. Make one per worker.
public final class ScanDecoder {
    public static let maximumPages = 10_000
    public static let maximumFileBytes = 2 << 30

    /// Bounds on the work one page may cost, with named defaults.
    public struct Configuration: Sendable {
        /// A sheet page takes 0.1 to 1 s on one core (the clean-up passes included); ten seconds
        /// is far beyond any page the fixtures hold, and short of a stall a sender notices.
        public static let defaultPageTimeLimit = Duration.seconds(10)
        /// 40 megapixels: a page of 42 × 42 inches at the decoding resolution of 150 dpi (an A0
        /// drawing is 35). A larger page is rendered at a lower resolution to fit, not refused.
        public static let defaultMaximumRenderPixels = 40_000_000

        /// Measured from the start of a page (rendering included). Checked between passes: the
        /// plain pass always runs, so a page whose sheet reads at once is never cut short; a
        /// single pass is not interrupted (poppler and zbar cannot be), and the pixel limits
        /// bound that.
        public var pageTimeLimit: Duration
        /// The most pixels a page is scanned at: a PDF page is rendered to fit, a larger image
        /// (a 1,200-dpi TIFF, say) is halved until it fits, so the plain pass is bounded too.
        public var maximumRenderPixels: Int
        /// What the time limit is measured on; tests step their own.
        public var clock: any Clock<Duration>

        public init(
            pageTimeLimit: Duration = defaultPageTimeLimit, maximumRenderPixels: Int = defaultMaximumRenderPixels,
            clock: any Clock<Duration> = ContinuousClock()
        ) {
            self.pageTimeLimit = pageTimeLimit
            self.maximumRenderPixels = maximumRenderPixels
            self.clock = clock
        }
    }

    private let keys: SigningKeys
    private let scanner: BarcodeScanner
    private let pageThreads: Int
    let configuration: Configuration

    /// With `pageThreads` above 1, the pages of one PDF or TIFF are scanned that many at a time
    /// (each thread with its own handles on the file), and still delivered one by one, in order.
    /// It pays only when cores would otherwise idle: one file decoded alone took two thirds of
    /// the time with 2 threads on 2 free cores, for about a fifth more CPU time; with every core
    /// busy already (`decodeFiles`, or the pipeline's two messages at once) it gains nothing and
    /// costs that fifth. So it is off by default.
    public init(keys: SigningKeys, pageThreads: Int = 1, configuration: Configuration = Configuration()) throws(WaybillError) {
        self.keys = keys
        self.pageThreads = max(1, min(8, pageThreads))
        self.configuration = configuration
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
        case .pdf, .tiff:
            let source = try PageSource(path: path, format: format)
            if pageThreads > 1 && source.pageCount > 1 {
                try decodeAlongside(source, path: path, format: format, onPage: onPage)
            } else {
                for page in 0..<source.pageCount { try onPage(source.scan(page, with: self)) }
            }
            return source.pageCount
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

    /// Pages on `pageThreads` threads: this one and helpers, each with its own decoder and its
    /// own handles on the file. Pages are handed out in order, never more than `2 × pageThreads`
    /// past the one the caller waits for (so memory stays a few pages), and delivered in order.
    /// The caller scans pages too while it waits. Helpers are stopped and joined before return.
    private func decodeAlongside(
        _ source: PageSource, path: String, format: ScanFormat, onPage: (PageResult) throws(WaybillError) -> Void
    ) throws(WaybillError) {
        let pages = PageQueue(count: source.pageCount, lookAhead: 2 * pageThreads, helpers: pageThreads - 1)
        let keys = self.keys
        let configuration = self.configuration
        let finished = DispatchGroup()
        for _ in 1..<pageThreads {
            finished.enter()
            DispatchQueue.global().async {
                defer { finished.leave() }
                // If the helper cannot open the file, the caller scans every page itself.
                guard let decoder = try? ScanDecoder(keys: keys, configuration: configuration),
                    let source = try? PageSource(path: path, format: format)
                else { return }
                while let page = pages.take(waiting: true) { pages.put(page, source.scan(page, with: decoder)) }
            }
        }
        defer {
            pages.stop()
            finished.wait()
        }
        for page in 0..<source.pageCount {
            while true {
                if let result = pages.deliver(page) {
                    try onPage(result)
                    break
                }
                if let next = pages.take(waiting: false) {
                    pages.put(next, source.scan(next, with: self))
                } else {
                    pages.waitForResult()
                }
            }
        }
    }

    /// Runs the passes on one page. `render(dpi)` gives the page at that resolution (images
    /// ignore it and give themselves as scanned; JPEGs are reduced in the DCT on the way).
    func scanPage(_ page: Int, render: (Double) throws(WaybillError) -> GrayImage) -> PageResult {
        let deadline = PageDeadline(clock: configuration.clock, limit: configuration.pageTimeLimit)
        var found: [DecodedBarcode] = []
        var blank = false
        var timedOut = false
        func add(_ barcodes: [DecodedBarcode]) {
            for barcode in barcodes where !found.contains(barcode) { found.append(barcode) }
        }
        do {
            let first = Self.fitted(try render(150), maximumPixels: configuration.maximumRenderPixels)
            blank = ImageFilters.isBlank(first)
            add(scanner.scan(first))
            if bestSheet(found, page: page)?.verification.isValid != true {
                let cleaned = cleanUpPasses(first, page: page, after: found, deadline: deadline)
                add(cleaned.barcodes)
                timedOut = cleaned.timedOut
            }
        } catch {
            return PageResult(page: page, barcodes: found, sheet: bestSheet(found, page: page), isSeparator: false, error: error)
        }
        let separator = found.contains { $0.symbology == "CODE-39" && $0.text == "PATCHT" }
        // What was read before the time ran out still counts; the page says it was cut short.
        let error = timedOut ? WaybillError(
            .pageTimeout,
            "decoding this page took longer than \(Self.describe(configuration.pageTimeLimit)); the clean-up passes left were skipped, "
                + "so a damaged routing sheet on it may have been missed") : nil
        return PageResult(
            page: page, barcodes: found, sheet: bestSheet(found, page: page), isSeparator: separator, error: error,
            isBlank: blank && found.isEmpty && !timedOut)
    }

    /// Halved until it is at most `maximumPixels` (and no smaller than a few hundred pixels).
    static func fitted(_ image: GrayImage, maximumPixels: Int) -> GrayImage {
        var image = image
        while image.width * image.height > maximumPixels, image.width >= 512, image.height >= 512 { image = image.halved() }
        return image
    }

    static func describe(_ duration: Duration) -> String {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return seconds >= 1 ? "\((seconds * 10).rounded() / 10) s" : "\((seconds * 1e4).rounded() / 10) ms"
    }

    /// Blur and Otsu's threshold, then (if still no token) the adaptive threshold: only on the
    /// regions where a code may be, cropped. Most pages of a batch are text, with no such region,
    /// and on them these passes used to cost twice the plain one and find nothing. Returns what
    /// it reads, found before or not.
    func cleanUpPasses(_ image: GrayImage, page: Int, after found: [DecodedBarcode]) -> [DecodedBarcode] {
        cleanUpPasses(image, page: page, after: found, deadline: nil).barcodes
    }

    /// The same, stopping before the next step once `deadline` has passed (`timedOut`). Every
    /// crop and threshold is a step: on a page full of candidates they add up.
    func cleanUpPasses(_ image: GrayImage, page: Int, after found: [DecodedBarcode], deadline: PageDeadline?)
        -> (barcodes: [DecodedBarcode], timedOut: Bool)
    {
        var read: [DecodedBarcode] = []
        func expired() -> Bool { deadline?.hasPassed ?? false }
        let regions = ImageFilters.codeRegions(in: image)
        if regions.isEmpty { return (read, false) }
        if expired() { return (read, true) }
        // Crops that would cover most of the page anyway (a photograph): the page itself.
        let area = regions.reduce(0) { $0 + $1.area }
        let parts = area * 2 > image.width * image.height ? [image] : regions.map { image.cropped(to: $0) }
        let smooth = parts.map(ImageFilters.boxBlur3)
        for part in smooth {
            if expired() { return (read, true) }
            read += scanner.scan(ImageFilters.otsuThreshold(part))
        }
        if bestSheet(found + read, page: page) == nil {
            for part in smooth {
                if expired() { return (read, true) }
                read += scanner.scan(ImageFilters.adaptiveThreshold(part))
            }
        }
        return (read, false)
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

extension WaybillError.Code {
    /// A page took longer than `ScanDecoder.Configuration.pageTimeLimit`; the file went on.
    public static let pageTimeout = Self("page-timeout")
}

/// When one page's time is up, on the configuration's clock.
struct PageDeadline {
    private let elapsed: () -> Duration
    let limit: Duration

    init(clock: any Clock<Duration>, limit: Duration) {
        elapsed = Self.stopwatch(clock)
        self.limit = limit
    }

    private static func stopwatch<C: Clock<Duration>>(_ clock: C) -> () -> Duration {
        let start = clock.now
        return { start.duration(to: clock.now) }
    }

    var hasPassed: Bool { elapsed() > limit }
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

/// A PDF's or TIFF's pages, open for one thread: poppler and libtiff handles are not shared.
private final class PageSource {
    let pageCount: Int
    private let pdf: PDFDocument?
    private let imagePages: [PDFScanLayout.ImagePage?]?
    private let file: ByteWindow?
    private let tiff: TIFFDocument?

    init(path: String, format: ScanFormat) throws(WaybillError) {
        if format == .tiff {
            let document = try TIFFDocument(path: path)
            guard document.pageCount <= ScanDecoder.maximumPages else {
                throw WaybillError(.tooManyPages, "the TIFF has more than \(ScanDecoder.maximumPages) pages")
            }
            tiff = document
            pdf = nil
            imagePages = nil
            file = nil
            pageCount = document.pageCount
            return
        }
        let document = try PDFDocument(path: path)
        guard document.pageCount > 0 else {
            throw WaybillError(.unreadableDocument, "the PDF has no readable pages (a broken or hostile page tree)")
        }
        guard document.pageCount <= ScanDecoder.maximumPages else {
            let most = ScanDecoder.maximumPages
            throw WaybillError(.tooManyPages, "the PDF claims \(document.pageCount) pages; Waybill reads at most \(most)")
        }
        pdf = document
        tiff = nil
        pageCount = document.pageCount
        // Pages that are one JPEG are read straight from the file, reduced in the DCT.
        imagePages = PDFScanLayout.imagePages(path: path, expectedPageCount: document.pageCount)
        file = imagePages == nil ? nil : ByteWindow(path: path)
    }

    func scan(_ page: Int, with decoder: ScanDecoder) -> PageResult {
        guard let pdf else { return decoder.scanPage(page) { _ throws(WaybillError) in try tiff!.page(page) } }
        if let image = imagePages?[page], let file {
            let scanDPI = Double(image.pixelWidth) * 72 / max(1, image.pageWidthPoints)
            let result = decoder.scanPage(page) { dpi throws(WaybillError) in
                try ImageReaders.jpeg(Data(file.read(image.jpeg)), maximumScale: min(1, dpi * 1.05 / max(1, scanDPI)))
            }
            // A JPEG TurboJPEG cannot read (CMYK, say) goes the ordinary way.
            if result.error == nil { return result }
        }
        let most = Double(decoder.configuration.maximumRenderPixels)
        return decoder.scanPage(page) { dpi throws(WaybillError) in try pdf.render(page: page, dpi: dpi, fitting: most) }
    }
}

/// The pages of one file between the threads that scan them and the one that delivers them.
private final class PageQueue: Sendable {
    struct State {
        var next = 0
        var delivered = 0
        var results: [Int: PageResult] = [:]
        var stopped = false
    }
    let count: Int
    let lookAhead: Int
    let helpers: Int
    let state = Mutex(State())
    /// Signalled for every page put: the deliverer waits on it.
    let resultReady = DispatchSemaphore(value: 0)
    /// Signalled for every page delivered and on stop: helpers wait on it when too far ahead.
    let progress = DispatchSemaphore(value: 0)

    init(count: Int, lookAhead: Int, helpers: Int) {
        self.count = count
        self.lookAhead = lookAhead
        self.helpers = helpers
    }

    /// The next page to scan; nil when none is left or the queue is stopped. Without `waiting`,
    /// also nil when the next page is too far ahead.
    func take(waiting: Bool) -> Int? {
        while true {
            let (page, done) = state.withLock { state -> (Int?, Bool) in
                if state.stopped || state.next >= count { return (nil, true) }
                guard state.next < state.delivered + lookAhead else { return (nil, false) }
                defer { state.next += 1 }
                return (state.next, false)
            }
            if page != nil || done || !waiting { return page }
            progress.wait()
        }
    }

    func put(_ page: Int, _ result: PageResult) {
        state.withLock { $0.results[page] = result }
        resultReady.signal()
    }

    /// Page `page`'s result if it is ready; taking it lets the window move on.
    func deliver(_ page: Int) -> PageResult? {
        guard let result = state.withLock({ $0.results.removeValue(forKey: page) }) else { return nil }
        state.withLock { $0.delivered = page + 1 }
        for _ in 0..<helpers { progress.signal() }
        return result
    }

    func waitForResult() { resultReady.wait() }

    func stop() {
        state.withLock { $0.stopped = true }
        for _ in 0..<helpers { progress.signal() }
    }
}
