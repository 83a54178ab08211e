import Foundation
import Testing
import WaybillCore
@testable import WaybillMIME

/// The fixtures are written by `Fixtures/mail/make_mail.py`, which also writes each payload it
/// encodes (`payload*.{pdf,jpg,png,tif}`) so decoded bytes are compared with the originals.
enum MailFixtures {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/mail", isDirectory: true)

    static func url(_ name: String) -> URL { directory.appendingPathComponent(name) }

    static func payload(_ name: String) throws -> Data { try Data(contentsOf: url(name)) }
}

/// A fresh output directory per test, removed afterwards.
struct Scratch: ~Copyable {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("waybill-mime-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: false)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    var contents: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).sorted()
    }

    func extract(_ fixture: String, limits: MIMELimits = MIMELimits()) throws -> MIMEMessage {
        try MIMEParser.extract(messageAt: MailFixtures.url(fixture), into: url, limits: limits)
    }
}

func bytes(_ attachment: MIMEAttachment) throws -> Data { try Data(contentsOf: attachment.url) }

func expectMalformed(_ body: () throws -> Void, mentioning text: String? = nil) {
    do {
        try body()
        Issue.record("expected malformed-message, nothing was thrown")
    } catch let error as WaybillError {
        #expect(error.code == .malformedMessage, "\(error.code): \(error.message)")
        if let text { #expect(error.message.contains(text), "\(error.message)") }
    } catch {
        Issue.record("expected a WaybillError, got \(error)")
    }
}

@Suite struct MIMEParserTests {
    @Test func canonMultipartWithTransferEncodingStillYieldsItsParts() throws {
        let scratch = try Scratch()
        let message = try scratch.extract("canon-qp-multipart.eml")
        #expect(message.messageID == "canon-0001@office.example")
        #expect(message.subject == "Scan from Canon")
        #expect(message.from == "scanner@office.example")
        #expect(message.date == Date(timeIntervalSince1970: 1_741_076_130))
        #expect(message.bodyText == "Attached: scanned document (1 page) été ")
        #expect(message.attachments.count == 1)
        let pdf = try #require(message.attachments.first)
        #expect(pdf.index == 0)
        #expect(pdf.filename == "Scan_0001.pdf")
        #expect(pdf.contentType == "application/pdf")
        #expect(!pdf.isInline)
        #expect(pdf.url.lastPathComponent == "0-Scan_0001.pdf")
        #expect(pdf.url.deletingLastPathComponent().standardizedFileURL.path == scratch.url.standardizedFileURL.path)
        #expect(try bytes(pdf) == MailFixtures.payload("payload.pdf"))
        #expect(pdf.size == 54)
        let mode = try FileManager.default.attributesOfItem(atPath: pdf.url.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func bareLineFeedsParseLikeCRLF() throws {
        let crlf = try Scratch()
        let lf = try Scratch()
        let a = try crlf.extract("canon-qp-multipart.eml")
        let b = try lf.extract("canon-qp-multipart-lf.eml")
        #expect(a.messageID == b.messageID && a.subject == b.subject && a.from == b.from && a.date == b.date)
        #expect(a.bodyText == b.bodyText)
        #expect(a.attachments.map(\.filename) == b.attachments.map(\.filename))
        #expect(try a.attachments.map(bytes) == b.attachments.map(bytes))
    }

    @Test func octetStreamPartsAreExtractedWithOrWithoutNames() throws {
        let scratch = try Scratch()
        let message = try scratch.extract("octet-stream-pdf.eml")
        #expect(message.attachments.map(\.filename) == ["scan.pdf", "attachment-2", "attachment-3.tif"])
        let octet = "application/octet-stream"
        #expect(message.attachments.map(\.contentType) == [octet, octet, "image/tiff"])
        #expect(message.attachments.map(\.index) == [0, 1, 2])
        #expect(message.attachments.map(\.isInline) == [true, true, true])
        #expect(try bytes(message.attachments[0]) == MailFixtures.payload("payload.pdf"))
        #expect(try bytes(message.attachments[1]) == MailFixtures.payload("payload2.pdf"))
        #expect(try bytes(message.attachments[2]) == MailFixtures.payload("payload.tif"))
        #expect(message.bodyText == nil)
        #expect(scratch.contents == ["0-scan.pdf", "1-attachment-2", "2-attachment-3.tif"])
    }

    @Test func inlineImagesAreAttachments() throws {
        let scratch = try Scratch()
        let message = try scratch.extract("inline-image.eml")
        #expect(message.attachments.map(\.filename) == ["photo.jpg", "attachment-2.png"])
        #expect(message.attachments.map(\.contentType) == ["image/jpeg", "image/png"])
        #expect(message.attachments.map(\.isInline) == [true, true])
        #expect(try bytes(message.attachments[0]) == MailFixtures.payload("payload.jpg"))
        #expect(try bytes(message.attachments[1]) == MailFixtures.payload("payload.png"))
        #expect(message.bodyText == "See")
    }

    @Test func encodedFileNamesAreDecoded() throws {
        let scratch = try Scratch()
        let message = try scratch.extract("encoded-filenames.eml")
        #expect(message.subject == "Scans für André")
        #expect(message.bodyText == "Three files.")
        let names = ["Überweisung März.pdf", "Scan été.pdf", "Rechnung Nr. 2025-ö.tif"]
        #expect(message.attachments.map(\.filename) == names)
        #expect(message.attachments.map(\.isInline) == [true, false, false])
        #expect(try bytes(message.attachments[0]) == MailFixtures.payload("payload.pdf"))
        #expect(try bytes(message.attachments[1]) == MailFixtures.payload("payload2.pdf"))
        #expect(try bytes(message.attachments[2]) == MailFixtures.payload("payload.tif"))
        #expect(scratch.contents == ["0-Überweisung März.pdf", "1-Scan été.pdf", "2-Rechnung Nr. 2025-ö.tif"])
    }

    @Test func htmlOnlyBodyGivesText() throws {
        let scratch = try Scratch()
        let message = try scratch.extract("html-only.eml")
        #expect(message.bodyText == "Your scan is attached.\nPages: 2 & more")
        #expect(message.attachments.map(\.filename) == ["doc.pdf"])
        #expect(try bytes(message.attachments[0]) == MailFixtures.payload("payload.pdf"))
    }

    @Test func forwardedMessagesAreSearched() throws {
        let scratch = try Scratch()
        let message = try scratch.extract("forwarded.eml")
        #expect(message.messageID == "outer@office.example")
        #expect(message.from == "alice@office.example")
        #expect(message.bodyText == "Forwarding the scan below.")
        #expect(message.attachments.map(\.filename) == ["inner.pdf"])
        #expect(try bytes(message.attachments[0]) == MailFixtures.payload("payload2.pdf"))
    }

    @Test func hostileFileNamesStayInsideTheDirectory() throws {
        let scratch = try Scratch()
        let message = try scratch.extract("traversal.eml")
        let longName = String(repeating: "A", count: 196) + ".pdf"
        #expect(message.attachments.map(\.filename) == ["passwd", "evilname.pdf", "hidden.pdf", longName])
        #expect(longName.utf8.count == 200)
        for attachment in message.attachments {
            let parent = attachment.url.deletingLastPathComponent().standardizedFileURL.path
            #expect(parent == scratch.url.standardizedFileURL.path)
        }
        #expect(scratch.contents == ["0-passwd", "1-evilname.pdf", "2-hidden.pdf", "3-\(longName)"])
        #expect(try bytes(message.attachments[0]) == Data("root:x:0:0\n".utf8))
    }

    @Test func nestingBeyondTheLimitIsRefused() throws {
        let scratch = try Scratch()
        expectMalformed({ _ = try scratch.extract("deep-nesting.eml") }, mentioning: "32 levels")
        #expect(scratch.contents.isEmpty)
        let shallow = try scratch.extract("nesting-8.eml")
        #expect(shallow.attachments.map(\.filename) == ["attachment-1.pdf"])
        #expect(try bytes(shallow.attachments[0]) == MailFixtures.payload("payload.pdf"))
        let other = try Scratch()
        expectMalformed { _ = try other.extract("nesting-8.eml", limits: MIMELimits(maximumDepth: 8)) }
        _ = try other.extract("nesting-8.eml", limits: MIMELimits(maximumDepth: 9))
    }

    @Test(arguments: ["empty.eml", "random-bytes.bin"])
    func filesThatAreNotMessagesAreRefused(_ name: String) throws {
        let scratch = try Scratch()
        expectMalformed({ _ = try scratch.extract(name) }, mentioning: "not a mail message")
        expectMalformed { _ = try MIMEParser.headers(messageAt: MailFixtures.url(name)) }
        #expect(scratch.contents.isEmpty)
    }

    @Test func aMessageWithoutAttachmentsIsNotAnError() throws {
        let scratch = try Scratch()
        let message = try scratch.extract("plain-only.eml")
        #expect(message.attachments.isEmpty)
        #expect(message.bodyText == "Just text, café.")
    }

    @Test func base64WithGarbageIsDecodedLeniently() throws {
        let scratch = try Scratch()
        let message = try scratch.extract("garbage-base64.eml")
        #expect(message.attachments.map(\.filename) == ["noisy.pdf"])
        #expect(try bytes(message.attachments[0]) == MailFixtures.payload("payload2.pdf"))
    }

    @Test func missingClosingBoundaryStillYieldsEveryPart() throws {
        let scratch = try Scratch()
        let message = try scratch.extract("missing-boundary.eml")
        #expect(message.attachments.map(\.filename) == ["first.pdf", "second.pdf"])
        #expect(try bytes(message.attachments[0]) == MailFixtures.payload("payload.pdf"))
        #expect(try bytes(message.attachments[1]) == MailFixtures.payload("payload2.pdf"))
    }

    @Test func anUndecodablePartIsSkippedWhenOthersDecode() throws {
        let scratch = try Scratch()
        let message = try scratch.extract("undecodable-part.eml")
        #expect(message.attachments.map(\.filename) == ["good.pdf"])
        #expect(try bytes(message.attachments[0]) == MailFixtures.payload("payload.pdf"))
        #expect(scratch.contents == ["0-good.pdf"])
    }

    @Test func anUndecodableOnlyAttachmentIsNamedInTheError() throws {
        let scratch = try Scratch()
        expectMalformed({ _ = try scratch.extract("undecodable-only.eml") }, mentioning: "empty.pdf")
        #expect(scratch.contents.isEmpty)
    }

    @Test func tooManyPartsAreRefused() throws {
        let scratch = try Scratch()
        // The multipart and its three leaves.
        expectMalformed(
            { _ = try scratch.extract("octet-stream-pdf.eml", limits: MIMELimits(maximumParts: 3)) },
            mentioning: "3 MIME parts"
        )
        #expect(try scratch.extract("octet-stream-pdf.eml", limits: MIMELimits(maximumParts: 4)).attachments.count == 3)
    }

    @Test func decodedBytesPastTheLimitAreRefusedAndCleanedUp() throws {
        let scratch = try Scratch()
        // 54 + 272 + 10 bytes: the second part passes a limit of 300, after the first was written.
        expectMalformed(
            { _ = try scratch.extract("octet-stream-pdf.eml", limits: MIMELimits(maximumDecodedBytes: 300)) },
            mentioning: "300 bytes"
        )
        #expect(scratch.contents.isEmpty)
        let exact = try scratch.extract("octet-stream-pdf.eml", limits: MIMELimits(maximumDecodedBytes: 336))
        #expect(exact.attachments.map(\.size) == [54, 272, 10])
    }

    @Test func existingFilesAreNeverOverwritten() throws {
        let scratch = try Scratch()
        let taken = scratch.url.appendingPathComponent("0-Scan_0001.pdf")
        try Data("mine".utf8).write(to: taken)
        let message = try scratch.extract("canon-qp-multipart.eml")
        #expect(message.attachments[0].url.lastPathComponent == "0-1-Scan_0001.pdf")
        #expect(try Data(contentsOf: taken) == Data("mine".utf8))
    }

    @Test func aMissingFileIsAnIOError() throws {
        let scratch = try Scratch()
        let error = #expect(throws: WaybillError.self) { _ = try scratch.extract("no-such-message.eml") }
        #expect(error?.code == .ioError)
    }

    @Test func headersAloneWriteNothing() throws {
        let message = try MIMEParser.headers(messageAt: MailFixtures.url("encoded-filenames.eml"))
        #expect(message.subject == "Scans für André")
        #expect(message.messageID == "encoded@office.example")
        #expect(message.attachments.isEmpty)
    }

    @Test func bodyTextIsCappedOnACharacterBoundary() throws {
        let scratch = try Scratch()
        let file = scratch.url.appendingPathComponent("big.eml")
        let body = "a" + String(repeating: "é", count: 40_000)
        let text = "From: a@b.example\r\nSubject: big\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\(body)\r\n"
        try Data(text.utf8).write(to: file)
        let out = scratch.url.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: false)
        let message = try MIMEParser.extract(messageAt: file, into: out)
        let bodyText = try #require(message.bodyText)
        #expect(bodyText.utf8.count == BodyText.maximumBytes - 1)
        #expect(!bodyText.contains("\u{FFFD}"))
    }

    @Test func concurrentExtractionsAgreeWithSerialOnes() async throws {
        let names = ["canon-qp-multipart.eml", "octet-stream-pdf.eml", "encoded-filenames.eml", "forwarded.eml",
                     "garbage-base64.eml", "missing-boundary.eml", "inline-image.eml", "traversal.eml"]
        let scratch = try Scratch()
        let root = scratch.url
        let serial = try Scratch()
        let expected = try names.map { name in
            let directory = serial.url.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false)
            return try MIMEParser.extract(messageAt: MailFixtures.url(name), into: directory).attachments.map(bytes)
        }
        let results = try await withThrowingTaskGroup(of: (Int, [Data]).self) { group in
            for round in 0..<4 {
                for (index, name) in names.enumerated() {
                    group.addTask {
                        let directory = root.appendingPathComponent("\(round)-\(index)")
                        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false)
                        let message = try MIMEParser.extract(messageAt: MailFixtures.url(name), into: directory)
                        return (index, try message.attachments.map(bytes))
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == names.count * 4)
        for (index, data) in results { #expect(data == expected[index], "\(names[index])") }
    }
}

@Suite struct AttachmentFilenameTests {
    @Test func pathsAreCutToTheirLastComponent() {
        #expect(AttachmentFilename.sanitize("C:\\Scans\\scan.pdf") == "scan.pdf")
        #expect(AttachmentFilename.sanitize("../../etc/passwd") == "passwd")
        #expect(AttachmentFilename.sanitize("dir/") == nil)
        #expect(AttachmentFilename.sanitize("..") == nil)
        #expect(AttachmentFilename.sanitize(" .. .bashrc") == "bashrc")
    }

    @Test func controlAndFormatCharactersAreRemoved() {
        #expect(AttachmentFilename.sanitize("scan\u{202E}fdp.exe") == "scanfdp.exe")
        #expect(AttachmentFilename.sanitize("a\u{0}b\u{7}c\nd\u{85}e.pdf") == "abcde.pdf")
    }

    @Test func longNamesKeepTheirExtension() throws {
        let name = try #require(AttachmentFilename.sanitize(String(repeating: "é", count: 150) + ".pdf"))
        #expect(name.utf8.count <= 200)
        #expect(name == String(repeating: "é", count: 98) + ".pdf")
    }

    @Test func missingNamesGetAnExtensionFromTheType() {
        #expect(AttachmentFilename.make(nil, index: 0, contentType: "application/pdf") == "attachment-1.pdf")
        #expect(AttachmentFilename.make("///", index: 1, contentType: "image/jpeg") == "attachment-2.jpg")
        #expect(AttachmentFilename.make(nil, index: 2, contentType: "image/tiff") == "attachment-3.tif")
        #expect(AttachmentFilename.make(nil, index: 3, contentType: "image/png") == "attachment-4.png")
        #expect(AttachmentFilename.make(nil, index: 4, contentType: "application/zip") == "attachment-5")
    }
}

@Suite struct BodyTextTests {
    @Test func htmlLosesTagsScriptsAndStyles() {
        let html = "<p>One<br>Two</p><script>alert('<p>x</p>')</script><STYLE>p{}</STYLE><div>Three &lt;4&gt;</div>"
        #expect(BodyText.plainText(fromHTML: html) == "One\nTwo\nThree <4>")
        #expect(BodyText.plainText(fromHTML: "a < b and more") == "a < b and more")
        #expect(BodyText.plainText(fromHTML: "x<script>never closed") == "x")
    }

    @Test func cutUTF8SequencesAreDropped() {
        let e = Array("é".utf8)
        #expect(BodyText.completeUTF8Prefix(ArraySlice([0x61] + e)) == 3)
        #expect(BodyText.completeUTF8Prefix(ArraySlice([0x61, e[0]])) == 1)
        #expect(BodyText.completeUTF8Prefix(ArraySlice([0x61, 0xE2, 0x82])) == 1)
        #expect(BodyText.completeUTF8Prefix(ArraySlice<UInt8>([])) == 0)
    }
}
