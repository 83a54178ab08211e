import Dispatch
import Foundation
import Testing
import WaybillCore
import WaybillDelivery
import WaybillIngest
import WaybillScan
import WaybillSheets
import WaybillStore

/// The pipeline on real inputs: sheets rendered by WaybillSheets, scans made by the fixture
/// generator (pdftoppm + Pillow), mail built by Python's email package, a real SQLite file.
@Suite struct PipelineTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// One data directory with its store, keys, archive root and a pipeline over them.
    struct World {
        let directory: URL
        let data: DataDirectory
        let store: SQLiteDirectiveStore
        let keys: SigningKeys
        let pipeline: Pipeline
        let metrics: Metrics
        var archive: URL { directory.appendingPathComponent("archive") }

        init(rules: [RoutingRule] = [], batch: BatchRules = BatchRules(), metrics: Metrics = Metrics()) throws {
            self.metrics = metrics
            directory = URL(fileURLWithPath: NSTemporaryDirectory() + "waybill-ingest-\(UUID().uuidString)")
            data = DataDirectory(path: directory.path)
            store = try data.openStore()
            keys = try data.loadOrCreateKeys()
            let roots = ["archive": directory.appendingPathComponent("archive").path]
            pipeline = Pipeline(
                store: store, dataDirectory: data, rules: RoutingRules(configured: rules), batchRules: batch,
                folders: FolderTransport(resolver: FolderResolver(roots: roots)), metrics: metrics)
        }

        func directive(folder: String = "inbox", maxUses: Int? = nil, pattern: String? = nil) async throws -> Directive {
            var draft = DirectiveDraft(title: "Accounts payable", owner: "ap@example.com", destinations: ["folder:archive/\(folder)"])
            draft.maxUses = maxUses
            if let pattern { draft.options.fileNamePattern = pattern }
            let directive = try draft.validated(
                id: .random(), now: Date(), policy: DestinationPolicy(folderRoots: ["archive": archive.path], webhookPrefixes: []))
            try await store.insert(directive)
            return directive
        }

        /// The directive's routing sheet as a PDF file.
        func sheet(_ directive: Directive, keys: SigningKeys? = nil) throws -> String {
            let template = try TemplateLocator(
                explicitDirectory: PipelineTests.root.appendingPathComponent("Templates").path, environment: [:], executablePath: nil
            ).locate(name: "standard", paper: .letter)
            let content = SheetContent(directive: directive, token: try (keys ?? self.keys).sign(directive.id), scanAddress: "scan@localhost")
            let path = directory.appendingPathComponent("sheet-\(directive.id.rawValue)-\(UUID().uuidString).pdf").path
            try SheetRenderer().renderPDF([content], template: template).write(to: URL(fileURLWithPath: path))
            return path
        }

        /// A scanned batch from the fixture generator.
        func scan(_ items: [String], format: String = "pdf") throws -> String {
            let path = directory.appendingPathComponent("scan-\(UUID().uuidString).\(format == "tiff" ? "tif" : format)").path
            try PipelineTests.run(
                "/usr/bin/python3", [PipelineTests.root.appendingPathComponent("Fixtures/make_batch.py").path, path, "--format", format] + items)
            return path
        }

        /// A message as a scanner sends it, built by Python's email package, written as the spool would.
        func mail(_ attachments: [String], to recipient: String = "scan@localhost") throws -> IngestMessage {
            let id = UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(20)
            let path = directory.appendingPathComponent("\(id).eml").path
            let script = """
                import sys, email.message, mimetypes
                msg = email.message.EmailMessage()
                msg["From"] = "scanner@office.example.com"; msg["To"] = sys.argv[2]; msg["Subject"] = "Scan from MFP"
                msg.set_content("Scanned document attached.")
                for path in sys.argv[3:]:
                    data = open(path, "rb").read()
                    msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=path.split("/")[-1])
                open(sys.argv[1], "wb").write(msg.as_bytes().replace(b"\\n", b"\\r\\n"))
                """
            try PipelineTests.run("/usr/bin/python3", ["-c", script, path, recipient] + attachments)
            return IngestMessage(
                id: String(id), file: URL(fileURLWithPath: path), sender: "scanner@office.example.com", recipients: [recipient],
                receivedAt: Date())
        }

        func delivered(_ folder: String = "inbox") -> [URL] {
            let url = archive.appendingPathComponent(folder)
            return ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
                .map { url.appendingPathComponent($0) }
        }
    }

    static func run(_ executable: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw WaybillError(.ioError, "\(executable) \(arguments.prefix(2)) failed: \(text)")
        }
    }

    /// The Code 128 labels of a delivered PDF's pages, in order: which document pages arrived.
    static func labels(_ url: URL) throws -> [String] {
        var keys = SigningKeys(keys: [])
        keys.rotate(now: Date())
        var labels: [String] = []
        try ScanDecoder(keys: keys).decode(path: url.path) { page in
            labels += page.barcodes.filter { $0.text.hasPrefix("PAGE-") }.map(\.text)
            #expect(page.sheet == nil, "a routing sheet reached the destination on page \(page.page)")
        }
        return labels
    }

    @Test func aSheetAndTwoPagesLandInTheFolderWithoutTheSheet() async throws {
        let world = try World()
        let directive = try await world.directive(maxUses: 5)
        let scan = try world.scan(["sheet:" + world.sheet(directive), "blank", "doc:PAGE-A1", "doc:PAGE-A2"])
        let message = try world.mail([scan])
        let outcome = try await world.pipeline.process(message)
        guard case .delivered(let jobs, let files, _, _) = outcome else { Issue.record("not delivered: \(outcome)"); return }
        #expect(jobs == 1)
        #expect(files.count == 1)
        let delivered = world.delivered()
        #expect(delivered.map(\.path) == files)
        #expect(try Self.labels(delivered[0]) == ["PAGE-A1", "PAGE-A2"])
        #expect(delivered[0].lastPathComponent.contains(directive.id.rawValue))
        #expect(delivered[0].lastPathComponent.contains(message.id))
        // No larger than the scan it came from (the byte-for-byte check of the images is below).
        let scanSize = try #require(try FileManager.default.attributesOfItem(atPath: scan)[.size] as? Int)
        let outSize = try #require(try FileManager.default.attributesOfItem(atPath: delivered[0].path)[.size] as? Int)
        #expect(outSize < scanSize)
        let after = try #require(try await world.store.directive(directive.id))
        #expect(after.useCount == 1)
        let events = try await world.store.journal(messageID: message.id).map(\.event)
        #expect(events.contains("accepted") && events.contains("delivered") && events.last == "done")

        // The same message again (a restart after the work was done): nothing twice.
        _ = try await world.pipeline.process(message)
        #expect(world.delivered().count == 1)
        #expect(try await world.store.directive(directive.id)?.useCount == 1)
    }

    @Test func jpegPagesArePassedThroughByteForByte() async throws {
        let world = try World()
        let directive = try await world.directive()
        let scan = try world.scan(["sheet:" + world.sheet(directive), "doc:PAGE-B1"])
        let outcome = try await world.pipeline.process(try world.mail([scan]))
        guard case .delivered = outcome else { Issue.record("not delivered: \(outcome)"); return }
        let out = try #require(world.delivered().first)
        // pdfimages -j writes the DCT streams as they are: the document page's JPEG must match.
        let inputDir = world.directory.appendingPathComponent("in-images").path
        let outputDir = world.directory.appendingPathComponent("out-images").path
        try FileManager.default.createDirectory(atPath: inputDir, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: outputDir, withIntermediateDirectories: true)
        try Self.run("/usr/bin/pdfimages", ["-j", "-f", "2", "-l", "2", scan, inputDir + "/p"])
        try Self.run("/usr/bin/pdfimages", ["-j", out.path, outputDir + "/p"])
        let input = try FileManager.default.contentsOfDirectory(atPath: inputDir).filter { $0.hasSuffix(".jpg") }
        let output = try FileManager.default.contentsOfDirectory(atPath: outputDir).filter { $0.hasSuffix(".jpg") }
        #expect(input.count == 1 && output.count == 1)
        let a = try Data(contentsOf: URL(fileURLWithPath: inputDir + "/" + input[0]))
        let b = try Data(contentsOf: URL(fileURLWithPath: outputDir + "/" + output[0]))
        #expect(a == b)
    }

    @Test func twoSheetsMakeTwoJobsAndTIFFWorksToo() async throws {
        let world = try World()
        let first = try await world.directive(folder: "first")
        let second = try await world.directive(folder: "second")
        let scan = try world.scan(
            ["sheet:" + world.sheet(first), "doc:PAGE-C1", "sheet:" + world.sheet(second), "doc:PAGE-C2", "doc:PAGE-C3"], format: "tiff")
        let outcome = try await world.pipeline.process(try world.mail([scan]))
        guard case .delivered(let jobs, _, _, _) = outcome else { Issue.record("not delivered: \(outcome)"); return }
        #expect(jobs == 2)
        #expect(try Self.labels(try #require(world.delivered("first").first)) == ["PAGE-C1"])
        #expect(try Self.labels(try #require(world.delivered("second").first)) == ["PAGE-C2", "PAGE-C3"])
        // TIFF pages are written losslessly (cairo finds them bilevel and writes 1-bit Flate):
        // per page, no more than half again what Group 4 took.
        let input = try #require(try FileManager.default.attributesOfItem(atPath: scan)[.size] as? Int)
        let output = try (world.delivered("first") + world.delivered("second")).map {
            try #require(try FileManager.default.attributesOfItem(atPath: $0.path)[.size] as? Int)
        }.reduce(0, +)
        print("TIFF G4 scan \(input) bytes, delivered PDFs \(output) bytes")
        #expect(Double(output) / 3 <= 1.5 * Double(input) / 5)
    }

    /// Every refusal has a named reason, and the original is kept in quarantine.
    @Test func refusalsAreQuarantinedWithANamedReason() async throws {
        let world = try World()
        let directive = try await world.directive(maxUses: 1)
        let sheet = try world.sheet(directive)
        var otherKeys = SigningKeys(keys: [])
        otherKeys.rotate(now: Date())
        let revoked = try await world.directive()
        _ = try await world.store.revoke(revoked.id, at: Date())
        let forged = try world.sheet(directive, keys: otherKeys)
        let unknown = Directive(
            id: .random(), title: "Never stored", owner: "x@example.com", destinations: [.folder(root: "archive", path: ["x"])],
            createdAt: Date())
        let revokedSheet = try world.sheet(revoked)
        let unknownSheet = try world.sheet(unknown)
        let cases: [([String], String)] = [
            (["doc:PAGE-D1", "doc:PAGE-D2"], "no-sheet"),
            (["doc:PAGE-D1", "sheet:" + sheet, "doc:PAGE-D2"], "malformed-batch"),
            (["sheet:" + sheet, "sheet:" + sheet, "doc:PAGE-D2"], "malformed-batch"),
            (["sheet:" + sheet, "doc:PAGE-D2", "sheet:" + sheet], "malformed-batch"),
            (["sheet:" + sheet, "blank"], "malformed-batch"),
            (["sheet:" + forged, "doc:PAGE-D1"], "forged"),
            (["sheet:" + revokedSheet, "doc:PAGE-D1"], "revoked"),
            (["sheet:" + unknownSheet, "doc:PAGE-D1"], "unknown-directive"),
            (["sheet:" + sheet, "doc:PAGE-D1", "sheet:" + sheet, "doc:PAGE-D2"], "used-up"),
        ]
        for (items, reason) in cases {
            let message = try world.mail([try world.scan(items)])
            let outcome = try await world.pipeline.process(message)
            #expect(outcome.name == "quarantined:\(reason)", "\(items.map { $0.hasPrefix("sheet:") ? "sheet" : $0 })")
            #expect(FileManager.default.fileExists(atPath: world.pipeline.quarantinedFile(message.id).path))
            let entry = try await world.store.quarantineEntry(message.id)
            #expect(entry?.reason == reason)
            #expect(entry?.subject == "Scan from MFP")
        }
        // An unreadable attachment and a message without scans.
        let junk = world.directory.appendingPathComponent("broken.pdf")
        try Data("%PDF-1.4\n1 0 obj garbage".utf8).write(to: junk)
        #expect(try await world.pipeline.process(try world.mail([junk.path])).name == "quarantined:unreadable-attachment")
        #expect(try await world.pipeline.process(try world.mail([])).name == "quarantined:no-attachment")
        #expect(world.delivered().isEmpty)
        #expect(try await world.store.directive(directive.id)?.useCount == 0)

        // The used-up directive's scan, rerouted by an operator to a fresh directive, is delivered.
        let fresh = try await world.directive(folder: "rerouted")
        let held = try await world.store.quarantineEntries().first { $0.reason == "used-up" }
        let entry = try #require(held)
        var message = IngestMessage(
            id: entry.messageID, file: world.pipeline.quarantinedFile(entry.messageID), sender: entry.sender,
            recipients: entry.recipients, receivedAt: entry.at, directiveOverride: fresh.id)
        message.directiveOverride = fresh.id
        #expect(try await world.pipeline.process(message).name == "quarantined:used-up", "finished: not run again by accident")
        let outcome = try await world.pipeline.process(message, actor: "cli:test", again: true)
        #expect(outcome.name == "delivered")
        // All four pages go, sheets included: an override routes the scan as it is.
        #expect(world.delivered("rerouted").count == 1)
    }

    @Test func anAddressBoundToADirectiveNeedsNoSheet() async throws {
        let placeholder = try World()
        let directive = try await placeholder.directive(folder: "invoices")
        let world = World(
            sharing: placeholder,
            rules: [try RoutingRule(pattern: "invoices@scan.example.com", action: .applyDirective(directive.id))])
        let scan = try world.scan(["doc:PAGE-E1", "doc:PAGE-E2"])
        let outcome = try await world.pipeline.process(try world.mail([scan], to: "invoices@scan.example.com"))
        #expect(outcome.name == "delivered")
        #expect(try Self.labels(try #require(world.delivered("invoices").first)) == ["PAGE-E1", "PAGE-E2"])
    }

    /// Colour scans stay in colour: a PNG and a deflate TIFF, each a page of the delivered PDF.
    @Test func colourPagesKeepTheirColour() async throws {
        let placeholder = try World()
        let directive = try await placeholder.directive(folder: "colour")
        let world = World(sharing: placeholder, rules: [try RoutingRule(pattern: "colour@localhost", action: .applyDirective(directive.id))])
        let png = world.directory.appendingPathComponent("photo.png").path
        let tiff = world.directory.appendingPathComponent("photo.tif").path
        try Self.run(
            "/usr/bin/python3",
            [
                "-c",
                """
                import sys
                from PIL import Image, ImageDraw
                image = Image.new("RGB", (850, 1100), (255, 255, 255))
                ImageDraw.Draw(image).rectangle([100, 100, 500, 400], fill=(200, 30, 30))
                image.save(sys.argv[1], dpi=(100, 100))
                image.save(sys.argv[2], compression="tiff_deflate", dpi=(100, 100))
                """,
                png, tiff,
            ])
        let outcome = try await world.pipeline.process(try world.mail([png, tiff], to: "colour@localhost"))
        #expect(outcome.name == "delivered")
        let out = try #require(world.delivered("colour").first)
        let list = Process()
        list.executableURL = URL(fileURLWithPath: "/usr/bin/pdfimages")
        list.arguments = ["-list", out.path]
        let pipe = Pipe()
        list.standardOutput = pipe
        try list.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        list.waitUntilExit()
        let rows = text.split(separator: "\n").dropFirst(2)
        #expect(rows.count == 2, "\(text)")
        #expect(rows.allSatisfy { $0.contains(" rgb ") && $0.contains(" 850 ") }, "\(text)")
        // Each page is the scan's size at its 100 dpi: 8.5 × 11 inches.
        let info = Process()
        info.executableURL = URL(fileURLWithPath: "/usr/bin/pdfinfo")
        info.arguments = [out.path]
        let infoPipe = Pipe()
        info.standardOutput = infoPipe
        try info.run()
        let infoText = String(decoding: infoPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        info.waitUntilExit()
        #expect(infoText.contains("(letter)"), "\(infoText)")
    }

    /// A crash after the file was written but before it was recorded: the restart recognizes
    /// its own file by its hash and writes nothing twice.
    @Test func aRestartAfterTheWriteDeliversNothingTwice() async throws {
        let world = try World()
        // One use: the restart must not count the accepted job again, nor refuse it as used up.
        let directive = try await world.directive(maxUses: 1)
        let message = try world.mail([try world.scan(["sheet:" + world.sheet(directive), "doc:PAGE-F1"])])
        #expect(try await world.pipeline.process(message).name == "delivered")
        let first = world.delivered()
        #expect(first.count == 1)
        // The database as a crash in that window leaves it (the file is there, the row is still
        // being sent, the message is unfinished), set with Python's sqlite3 on the real file.
        try Self.run(
            "/usr/bin/python3",
            [
                "-c",
                """
                import sqlite3, sys
                db = sqlite3.connect(sys.argv[1])
                db.execute("UPDATE delivery SET state = 'sending', held_until = NULL, delivered_at = NULL")
                db.execute("UPDATE message SET state = 'received', outcome = NULL")
                db.commit()
                """,
                world.data.databasePath,
            ])
        // What the delivery queue does when it starts: the dead process's attempts are queued again.
        #expect(try await world.store.requeueAbandoned(before: .distantFuture) == 1)
        #expect(try await world.pipeline.process(message).name == "delivered")
        #expect(world.delivered() == first)
        #expect(try await world.store.directive(directive.id)?.useCount == 1)
        let events = try await world.store.journal(messageID: message.id)
        #expect(events.contains { $0.event == "delivered" && $0.detail.contains("found after a restart") })
    }

    /// A message that never finishes (it kills the worker each time) is set aside, not retried forever.
    @Test func aMessageThatKeepsCrashingTheWorkerIsQuarantined() async throws {
        let world = try World()
        let directive = try await world.directive()
        let message = try world.mail([try world.scan(["sheet:" + world.sheet(directive), "doc:PAGE-G1"])])
        _ = try await world.store.openMessage(
            MessageRecord(id: message.id, receivedAt: Date(), sender: message.sender, recipients: message.recipients, size: 1))
        for _ in 0..<Pipeline.maximumAttempts { _ = try await world.store.beginAttempt(message.id, journal: []) }
        #expect(try await world.pipeline.process(message).name == "quarantined:worker-crash")
        #expect(world.delivered().isEmpty)
    }

    /// An attachment the decoder reads but a document cannot be made of: quarantined, not retried.
    @Test func anAttachmentThatCannotBeAssembledIsQuarantined() async throws {
        let placeholder = try World()
        let directive = try await placeholder.directive(folder: "fixed")
        let world = World(sharing: placeholder, rules: [try RoutingRule(pattern: "fixed@localhost", action: .applyDirective(directive.id))])
        let junk = world.directory.appendingPathComponent("photo.jpg")
        try Data([0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10] + Array("JFIF".utf8) + [UInt8](repeating: 0x41, count: 64)).write(to: junk)
        let outcome = try await world.pipeline.process(try world.mail([junk.path], to: "fixed@localhost"))
        #expect(outcome.name == "quarantined:unreadable-attachment")
    }
}

extension PipelineTests.World {
    /// Another pipeline over the same data directory, with other rules.
    init(sharing other: PipelineTests.World, rules: [RoutingRule]) {
        directory = other.directory
        data = other.data
        store = other.store
        keys = other.keys
        metrics = other.metrics
        pipeline = Pipeline(
            store: other.store, dataDirectory: other.data, rules: RoutingRules(configured: rules),
            folders: other.pipeline.folders, metrics: other.metrics)
    }
}
