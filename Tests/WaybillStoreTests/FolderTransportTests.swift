import Foundation
import Testing
import WaybillCore
import WaybillDelivery

/// The folder transport on a real file system: atomic, never over a file, never out of its root.
@Suite struct FolderTransportTests {
    let base = NSTemporaryDirectory() + "waybill-transport-\(UUID().uuidString)"
    var root: String { base + "/root" }
    var transport: FolderTransport { FolderTransport(resolver: FolderResolver(roots: ["docs": root])) }

    func document(_ text: String) throws -> URL {
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        let url = URL(fileURLWithPath: base + "/doc-\(UUID().uuidString).pdf")
        try Data(text.utf8).write(to: url)
        return url
    }

    func names(_ path: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted() }

    @Test func writesCreateFoldersAndNeverOverwrite() throws {
        let folder = try transport.open(.folder(root: "docs", path: ["invoices", "2026"]))
        #expect(folder.freeName("scan.pdf") == "scan.pdf")
        #expect(try folder.write(try document("first"), as: "scan.pdf"))
        #expect(folder.freeName("scan.pdf") == "scan-2.pdf")
        #expect(try folder.write(try document("second"), as: "scan.pdf") == false, "an existing file is never replaced")
        #expect(try folder.write(try document("second"), as: folder.freeName("scan.pdf")))
        let path = root + "/invoices/2026"
        #expect(names(path) == ["scan-2.pdf", "scan.pdf"], "no temporary file is left behind")
        #expect(try String(contentsOfFile: path + "/scan.pdf", encoding: .utf8) == "first")
        #expect(try String(contentsOfFile: path + "/scan-2.pdf", encoding: .utf8) == "second")
        #expect(throws: WaybillError.self) { _ = try folder.write(try document("x"), as: "../escape.pdf") }
    }

    @Test func aLinkOrAFileWhereAFolderShouldBeIsRefused() throws {
        try FileManager.default.createDirectory(atPath: root + "/real", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: base + "/outside", withIntermediateDirectories: true)
        // A link inside the root to a folder inside the root is followed (the resolver allows it)…
        try FileManager.default.createSymbolicLink(atPath: root + "/alias", withDestinationPath: root + "/real")
        let viaAlias = try transport.open(.folder(root: "docs", path: ["alias", "x"]))
        #expect(try viaAlias.write(try document("ok"), as: "a.pdf"))
        #expect(names(root + "/real/x") == ["a.pdf"])
        // …one that leads out is not, and neither is a file in the way.
        try FileManager.default.createSymbolicLink(atPath: root + "/out", withDestinationPath: base + "/outside")
        #expect(throws: WaybillError.self) { _ = try transport.open(.folder(root: "docs", path: ["out"])) }
        _ = FileManager.default.createFile(atPath: root + "/file", contents: Data("x".utf8))
        #expect(throws: WaybillError.self) { _ = try transport.open(.folder(root: "docs", path: ["file", "below"])) }
        #expect(names(base + "/outside").isEmpty)
    }
}
