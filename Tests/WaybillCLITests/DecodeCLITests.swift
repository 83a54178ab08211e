import Foundation
import Testing
import WaybillCore

/// `waybill decode` on scans made from a sheet the CLI rendered, by the fixture generator in
/// Fixtures/ (pdftoppm + Pillow), and on files that are broken on purpose.
@Suite(.serialized) struct DecodeCLITests {
    static let fixtureScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/make_scans.py").path

    func decode(_ cli: CLI, _ files: [String], extra: [String] = []) throws -> (status: Int32, reports: [[String: Any]]) {
        let result = try cli.run(["decode", "--json"] + extra + files)
        let reports = try result.stdout.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        return (result.status, reports)
    }

    func makeSheet(_ cli: CLI) throws -> (id: String, token: String) {
        let created = try #require(
            try cli.json(["directive", "create", "--title", "Scans", "--owner", "a@example.com", "--to", "mailto:b@example.com", "--json"])
                as? [String: Any])
        let id = try #require(created["id"] as? String)
        _ = try cli.ok(["sheet", id, "-o", "sheet.pdf"])
        return (id, try #require(created["token"] as? String))
    }

    @Test func everyClassOfDamageStillYieldsTheSheet() throws {
        let cli = try CLI()
        let (id, token) = try makeSheet(cli)
        let generated = try CLI.run("/usr/bin/python3", [Self.fixtureScript, "sheet.pdf", "fixtures"], in: cli.directory)
        #expect(generated.status == 0, "\(generated.stderr)")
        let fixtures = generated.stdout.split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
        #expect(fixtures.count >= 27)
        // The scanner formats the issue names are all among them.
        let names = Set(fixtures.map { $0[0] })
        for name in [
            "scan-jpeg.pdf", "scan-g4.pdf", "scan-jbig2.pdf", "scan-jpx.pdf", "compact-layered.pdf", "fax-204x98.pdf", "fax-204x98.tif",
            "multipage-g4.tif", "lzw.tif", "jpeg-in.tif", "alpha.tif", "phone-photo.jpg", "phone-photo-rot90.jpg",
        ] {
            #expect(names.contains(name), "no \(name) fixture")
        }
        let (status, reports) = try decode(cli, fixtures.map { "fixtures/" + $0[0] })
        #expect(status == 0)
        #expect(reports.count == fixtures.count)
        for (fixture, report) in zip(fixtures, reports) {
            let sheets = report["sheets"] as? [[String: Any]] ?? []
            #expect(report["error"] is NSNull, "\(fixture[0]): \(report)")
            if fixture[1] == "sheet" {
                #expect(sheets.first?["page"] as? Int == 0, "\(fixture[0]): no sheet on page 1")
                #expect(sheets.first?["directive"] as? String == id, "\(fixture[0])")
                #expect(sheets.first?["status"] as? String == "valid", "\(fixture[0])")
                let texts = (report["barcodes"] as? [[String: Any]] ?? []).compactMap { $0["text"] as? String }
                #expect(texts.contains(token), "\(fixture[0])")
            } else {
                #expect(sheets.isEmpty, "\(fixture[0]): found \(sheets)")
            }
        }
        // The multi-page TIFF holds the sheet, a blank page and the sheet upside down.
        let multipage = try #require(reports.first { ($0["file"] as? String)?.hasSuffix("multipage-g4.tif") == true })
        #expect(multipage["pages"] as? Int == 3)
        #expect((multipage["sheets"] as? [[String: Any]])?.compactMap { $0["page"] as? Int } == [0, 2])
        // The sheet in CCITT G4 on page 1, then document pages in JBIG2, JPEG 2000 and JPEG.
        let mixed = try #require(reports.first { ($0["file"] as? String)?.hasSuffix("mixed-codecs.pdf") == true })
        #expect(mixed["pages"] as? Int == 4)
        #expect((mixed["sheets"] as? [[String: Any]])?.compactMap { $0["page"] as? Int } == [0])
    }

    /// A page that runs out of time is named, keeps what the plain pass read, and the file goes
    /// on: page 1 is the sheet under sensor noise (only the clean-up passes read it), page 2 the
    /// clean sheet, which the plain pass reads with no time left at all.
    @Test func aPageOutOfTimeIsNamedAndTheFileGoesOn() throws {
        let cli = try CLI()
        let (id, _) = try makeSheet(cli)
        let script = """
            import sys
            sys.path.insert(0, sys.argv[1])
            from make_scans import rasterize, sensor_noise
            clean = rasterize("sheet.pdf", 150)
            sensor_noise(clean, 40).save("slow.tif", compression="tiff_lzw", save_all=True, append_images=[clean])
            """
        let fixtures = URL(fileURLWithPath: Self.fixtureScript).deletingLastPathComponent().path
        let made = try CLI.run("/usr/bin/python3", ["-c", script, fixtures], in: cli.directory)
        #expect(made.status == 0, "\(made.stderr)")
        let (status, reports) = try decode(cli, ["slow.tif"], extra: ["--page-time-limit", "0"])
        #expect(status == 1)
        let report = try #require(reports.first)
        #expect(report["error"] is NSNull)
        #expect(report["pages"] as? Int == 2)
        let pageErrors = report["page_errors"] as? [[String: Any]] ?? []
        #expect(pageErrors.map { $0["page"] as? Int } == [0])
        #expect(pageErrors.map { $0["error"] as? String } == ["page-timeout"])
        let sheets = report["sheets"] as? [[String: Any]] ?? []
        #expect(sheets.map { $0["page"] as? Int } == [1])
        #expect(sheets.map { $0["directive"] as? String } == [id])
        // With the default limit, both pages are read.
        let (inTime, again) = try decode(cli, ["slow.tif"])
        #expect(inTime == 0)
        #expect((again.first?["sheets"] as? [[String: Any]])?.map { $0["page"] as? Int } == [0, 1])
    }

    @Test func statusesForForgedUnknownKeyAndRevokedKeys() throws {
        let cli = try CLI()
        _ = try makeSheet(cli)
        // Another installation's sheet: same shape, a key this one does not have.
        let other = try CLI()
        _ = try makeSheet(other)
        try FileManager.default.copyItem(atPath: other.directory + "/sheet.pdf", toPath: cli.directory + "/foreign.pdf")
        let (status, reports) = try decode(cli, ["sheet.pdf", "foreign.pdf"])
        #expect(status == 0)
        #expect((reports[0]["sheets"] as? [[String: Any]])?.first?["status"] as? String == "valid")
        #expect((reports[1]["sheets"] as? [[String: Any]])?.first?["status"] as? String == "invalid-signature")
        _ = try cli.ok(["key", "rotate"])
        _ = try cli.ok(["key", "retire", "K1"])
        let (_, after) = try decode(cli, ["sheet.pdf"])
        #expect((after[0]["sheets"] as? [[String: Any]])?.first?["status"] as? String == "unknown-key")
    }

    @Test func brokenFilesGetNamedErrorsAndTheBatchGoesOn() throws {
        let cli = try CLI()
        _ = try makeSheet(cli)
        let directory = cli.directory
        let sheet = try Data(contentsOf: URL(fileURLWithPath: directory + "/sheet.pdf"))
        try Data().write(to: URL(fileURLWithPath: directory + "/empty.pdf"))
        try Data("just text, not a scan".utf8).write(to: URL(fileURLWithPath: directory + "/notes.pdf"))
        try sheet.prefix(sheet.count / 3).write(to: URL(fileURLWithPath: directory + "/truncated.pdf"))
        // A TIFF header claiming 100,000 × 100,000 pixels.
        var tiff = Data([0x49, 0x49, 0x2A, 0x00, 0x08, 0x00, 0x00, 0x00, 0x03, 0x00])
        for (tag, value) in [(256, 100_000), (257, 100_000), (259, 1)] as [(UInt16, UInt32)] {
            tiff.append(contentsOf: withUnsafeBytes(of: tag.littleEndian, Array.init))
            tiff.append(contentsOf: withUnsafeBytes(of: UInt16(4).littleEndian, Array.init))
            tiff.append(contentsOf: withUnsafeBytes(of: UInt32(1).littleEndian, Array.init))
            tiff.append(contentsOf: withUnsafeBytes(of: value.littleEndian, Array.init))
        }
        tiff.append(contentsOf: [0, 0, 0, 0])
        try tiff.write(to: URL(fileURLWithPath: directory + "/huge.tif"))
        let encrypted = try CLI.run(
            "/usr/bin/qpdf", ["--encrypt", "user", "owner", "256", "--", "sheet.pdf", "locked.pdf"], in: directory)
        #expect(encrypted.status == 0, "\(encrypted.stderr)")

        // Page-tree bombs: five million pages claimed, 200,000 kids all naming one page, and
        // 100,000 nested arrays. Each is answered in bounded time and memory.
        func pdf(_ objects: [String]) -> Data {
            var body = "%PDF-1.4\n"
            var offsets: [Int] = []
            for (index, object) in objects.enumerated() {
                offsets.append(body.utf8.count)
                body += "\(index + 1) 0 obj\n\(object)\nendobj\n"
            }
            let xref = body.utf8.count
            body += "xref\n0 \(objects.count + 1)\n0000000000 65535 f \n"
            for offset in offsets { body += String(format: "%010d 00000 n \n", offset) }
            body += "trailer\n<< /Size \(objects.count + 1) /Root 1 0 R >>\nstartxref\n\(xref)\n%%EOF\n"
            return Data(body.utf8)
        }
        let page = "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"
        try pdf(["<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 5000000 >>", page])
            .write(to: URL(fileURLWithPath: directory + "/count-bomb.pdf"))
        let kids = Array(repeating: "3 0 R", count: 200_000).joined(separator: " ")
        try pdf(["<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [\(kids)] /Count 200000 >>", page])
            .write(to: URL(fileURLWithPath: directory + "/kids-bomb.pdf"))
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        try pdf(["<< /Type /Catalog /Pages 2 0 R /X \(deep) >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>", page])
            .write(to: URL(fileURLWithPath: directory + "/deep.pdf"))

        let files = [
            "empty.pdf", "notes.pdf", "truncated.pdf", "huge.tif", "locked.pdf", "missing.png", "count-bomb.pdf",
            "kids-bomb.pdf", "deep.pdf", "sheet.pdf",
        ]
        let (status, reports) = try decode(cli, files)
        #expect(status == 1)
        let errors = Dictionary(uniqueKeysWithValues: reports.map { ($0["file"] as? String ?? "", $0["error"] as? String) })
        #expect(errors["empty.pdf"] == "empty-file")
        #expect(errors["notes.pdf"] == "unsupported-format")
        #expect(errors["locked.pdf"] == "encrypted")
        #expect(errors["missing.png"] == "io-error")
        #expect(errors["sheet.pdf"] == .some(nil))
        #expect(errors["count-bomb.pdf"] == "unreadable-document")
        #expect(errors["kids-bomb.pdf"] == "unreadable-document")
        let nested = try #require(reports.first { $0["file"] as? String == "deep.pdf" })
        #expect(nested["pages"] as? Int == 1 || nested["error"] as? String == "unreadable-document")
        #expect(reports.allSatisfy { ($0["ms"] as? Double ?? 0) < 20_000 })
        // Poppler may recover a truncated file or refuse it; either way the answer is named and
        // the run goes on. An absurd TIFF page is refused, not allocated.
        let truncated = try #require(reports.first { $0["file"] as? String == "truncated.pdf" })
        #expect(truncated["error"] is NSNull || truncated["error"] as? String == "unreadable-document")
        let huge = try #require(reports.first { $0["file"] as? String == "huge.tif" })
        let hugePageErrors = (huge["page_errors"] as? [[String: Any]] ?? []).compactMap { $0["error"] as? String }
        #expect(huge["error"] as? String == "unreadable-document" || hugePageErrors == ["unreadable-document"])
        #expect((reports.last?["sheets"] as? [[String: Any]])?.count == 1)
    }

    @Test func humanOutputAndPatchTSeparators() throws {
        let cli = try CLI()
        let (id, _) = try makeSheet(cli)
        let text = try cli.ok(["decode", "sheet.pdf"])
        #expect(text.contains("1 routing sheet") && text.contains("\(id.prefix(5))-\(id.dropFirst(5))") && text.contains("valid"))
        // A PATCH T page, drawn by an independent encoder (ReportLab's Code 39).
        let patch = try CLI.run("/usr/bin/python3", ["-c", Self.patchScript, "patch.pdf"], in: cli.directory)
        #expect(patch.status == 0, "\(patch.stderr)")
        let (status, reports) = try decode(cli, ["patch.pdf"])
        #expect(status == 0)
        #expect(reports.first?["separators"] as? [Int] == [0])
        #expect((reports.first?["sheets"] as? [[String: Any]])?.isEmpty == true)
    }

    static let patchScript = """
        import sys
        from reportlab.graphics.barcode.code39 import Standard39
        from reportlab.pdfgen import canvas
        page = canvas.Canvas(sys.argv[1], pagesize=(612, 792))
        Standard39("PATCHT", barWidth=1.5, barHeight=72, checksum=0).drawOn(page, 100, 400)
        page.showPage()
        page.save()
        """
}
