import Foundation
import Synchronization
import Testing
import WaybillCore
@testable import WaybillScan
import WaybillSheets

/// One page's work is bounded: past `pageTimeLimit` the clean-up passes left are skipped and the
/// page reports `page-timeout`, with what it read so far; the next page starts afresh. A PDF page
/// too large for `maximumRenderPixels` is rendered smaller rather than allocated.
@Suite struct PageTimeLimitTests {
    /// A clock that moves only when the test moves it.
    final class ManualClock: Clock {
        struct Instant: InstantProtocol {
            var offset: Duration
            func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
            func duration(to other: Instant) -> Duration { other.offset - offset }
            static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
        }

        private let current = Mutex(Instant(offset: .zero))
        var now: Instant { current.withLock { $0 } }
        var minimumResolution: Duration { .nanoseconds(1) }
        func advance(by duration: Duration) { current.withLock { $0 = $0.advanced(by: duration) } }
        func sleep(until deadline: Instant, tolerance: Duration?) async throws {
            current.withLock { $0 = max($0, deadline) }
        }
    }

    /// The Letter sheet at 150 dpi with sensor noise the plain pass cannot read through, so only
    /// the clean-up passes find the sheet.
    static func noisySheet() throws -> (noisy: GrayImage, clean: GrayImage, keys: SigningKeys, directive: DirectiveID) {
        let (clean, content, keys) = try DecodeCandidateTests.sheet()
        let noisy = DecodeCandidateTests.noisy(clean, sigma: 40)
        let plain = try BarcodeScanner().scan(noisy).map(\.text)
        try #require(!plain.contains { keys.verify($0).isValid }, "the plain pass reads the noisy sheet: no test")
        return (noisy, clean, keys, content.directive.id)
    }

    @Test func aPageThatRunsOutOfTimeSaysSoAndTheNextPageIsDecoded() throws {
        let (noisy, clean, keys, directive) = try Self.noisySheet()
        let clock = ManualClock()
        let decoder = try ScanDecoder(keys: keys, configuration: .init(clock: clock))
        // Rendering took 11 s (a hostile page): the clean-up passes are not started.
        let slow = decoder.scanPage(0) { _ in
            clock.advance(by: .seconds(11))
            return noisy
        }
        #expect(slow.error?.code == .pageTimeout)
        #expect(slow.error?.message.contains("10.0 s") == true, "\(String(describing: slow.error))")
        #expect(slow.sheet?.verification.isValid != true)
        #expect(!slow.isBlank)
        // The next page has its own 10 s: a clean sheet, and the same noisy one in 9 s.
        let next = decoder.scanPage(1) { _ in clean }
        #expect(next.error == nil)
        #expect(next.sheet?.verification == .valid(directive))
        let inTime = decoder.scanPage(2) { _ in
            clock.advance(by: .seconds(9))
            return noisy
        }
        #expect(inTime.error == nil)
        #expect(inTime.sheet?.verification == .valid(directive))
    }

    /// On the real clock with no time at all, a page whose sheet the plain pass reads is still
    /// read in full: the plain pass always runs, and only the clean-up passes are cut.
    @Test func thePlainPassAlwaysRuns() throws {
        let (noisy, clean, keys, directive) = try Self.noisySheet()
        let decoder = try ScanDecoder(keys: keys, configuration: .init(pageTimeLimit: .zero))
        let cut = decoder.scanPage(0) { _ in noisy }
        #expect(cut.error?.code == .pageTimeout)
        let read = decoder.scanPage(1) { _ in clean }
        #expect(read.error == nil)
        #expect(read.sheet?.verification == .valid(directive))
    }

    /// An image over the limit is halved until it fits, and read at that size.
    @Test func largeImagesAreHalvedToFit() throws {
        let (_, clean, keys, directive) = try Self.noisySheet()
        #expect(ScanDecoder.fitted(clean, maximumPixels: 40_000_000).width == clean.width)
        let fitted = ScanDecoder.fitted(clean, maximumPixels: clean.width * clean.height / 3)
        #expect(fitted.width == clean.width / 2 && fitted.height == clean.height / 2)
        #expect(ScanDecoder.fitted(clean, maximumPixels: 1).width >= 256)
        // The 150-dpi sheet read at 75 dpi.
        let decoder = try ScanDecoder(keys: keys, configuration: .init(maximumRenderPixels: clean.width * clean.height / 2))
        #expect(decoder.scanPage(0) { _ in clean }.sheet?.verification == .valid(directive))
    }

    /// A 200-inch square page is 900 megapixels at 150 dpi: rendered to fit the limit instead.
    @Test func hugePdfPagesAreRenderedToFit() throws {
        let document = try PDFDocument(data: HostilePDFTests.pdf(mediaBox: "0 0 14400 14400"))
        let image = try document.render(page: 0, dpi: 150, fitting: 40_000_000)
        #expect(image.width * image.height <= 40_000_000)
        #expect(image.width * image.height > 39_000_000)
        #expect(throws: WaybillError.self) { _ = try document.render(page: 0, dpi: 300) }
    }
}
