import Foundation
import Testing
import WaybillCore
import WaybillDelivery

@Suite struct FolderResolverTests {
    let root: String
    let outside: String
    let resolver: FolderResolver

    init() throws {
        let base = NSTemporaryDirectory() + "waybill-folders-\(UUID().uuidString)"
        root = base + "/root"
        outside = base + "/outside"
        try FileManager.default.createDirectory(atPath: root + "/in", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        resolver = FolderResolver(roots: ["docs": root])
    }

    func code(_ path: [String]) -> String? {
        do {
            _ = try resolver.resolve(.folder(root: "docs", path: path))
            return nil
        } catch { return error.code.name }
    }

    @Test func foldersInsideTheRootResolveExistingOrNot() throws {
        let real = FolderResolverTestsSupport.real(root)
        #expect(try resolver.resolve(.folder(root: "docs", path: ["in", "new", "deeper"])).path == real + "/in/new/deeper")
        #expect(try resolver.resolve(.folder(root: "docs", path: [])).path == real)
        try FileManager.default.createSymbolicLink(atPath: root + "/alias", withDestinationPath: root + "/in")
        #expect(try resolver.resolve(.folder(root: "docs", path: ["alias", "x"])).path == real + "/in/x")
    }

    @Test func linksOutDanglingLinksAndDotsAreRefused() throws {
        try FileManager.default.createSymbolicLink(atPath: root + "/out", withDestinationPath: outside)
        try FileManager.default.createSymbolicLink(atPath: root + "/dangling", withDestinationPath: outside + "/not-yet")
        try FileManager.default.createSymbolicLink(atPath: root + "/in/up", withDestinationPath: "../..")
        #expect(code(["out"]) == "path-escape")
        #expect(code(["out", "x"]) == "path-escape")
        #expect(code(["dangling", "x"]) == "path-escape")
        #expect(code(["in", "up", "outside"]) == "path-escape")
        #expect(code(["new", "..", "..", "outside"]) == "path-escape")
        #expect(code(["a/b"]) == "path-escape")
        #expect(code([""]) == "path-escape")
        try "x".write(toFile: root + "/file", atomically: true, encoding: .utf8)
        #expect(code(["file", "x"]) == "invalid-destination")
        #expect(throws: WaybillError.self) { try resolver.resolve(.folder(root: "nope", path: [])) }
    }
}

enum FolderResolverTestsSupport {
    static func real(_ path: String) -> String {
        guard let pointer = realpath(path, nil) else { return path }
        defer { free(pointer) }
        return String(cString: pointer)
    }
}
