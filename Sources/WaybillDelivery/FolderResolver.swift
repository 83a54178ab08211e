public import Foundation
public import WaybillCore

/// Turns `folder:<root>/<sub/path>` into a real directory under an administrator's root, and
/// refuses anything that would land outside it, including through a symlink planted inside
/// the root. Folders that do not exist yet are fine: they are created on delivery.
public struct FolderResolver: Sendable {
    public let roots: [String: String]

    public init(roots: [String: String]) { self.roots = roots }

    public func resolve(_ destination: Destination) throws(WaybillError) -> URL {
        guard case .folder(let rootName, let path) = destination else {
            throw WaybillError(.invalidDestination, "\(destination) is not a folder destination")
        }
        guard let rootPath = roots[rootName] else {
            throw WaybillError(.unknownFolderRoot, "unknown folder root '\(rootName)'")
        }
        let root = Self.realPath(rootPath) ?? URL(fileURLWithPath: rootPath).standardizedFileURL.path
        var target = URL(fileURLWithPath: root, isDirectory: true)
        for component in path { target.appendPathComponent(component, isDirectory: true) }
        // Resolve the longest prefix that exists; what follows it cannot be a link yet.
        var existing = target.path
        var rest: [String] = []
        while Self.realPath(existing) == nil, existing != "/" {
            rest.insert((existing as NSString).lastPathComponent, at: 0)
            existing = (existing as NSString).deletingLastPathComponent
        }
        let resolved = (Self.realPath(existing) ?? existing) + (rest.isEmpty ? "" : "/" + rest.joined(separator: "/"))
        guard resolved == root || resolved.hasPrefix(root.hasSuffix("/") ? root : root + "/") else {
            throw WaybillError(
                .pathEscape, "folder destination \(destination) leads outside its root \(rootName) (through a symbolic link)")
        }
        return URL(fileURLWithPath: resolved, isDirectory: true)
    }

    static func realPath(_ path: String) -> String? {
        guard let pointer = realpath(path, nil) else { return nil }
        defer { free(pointer) }
        return String(cString: pointer)
    }
}
