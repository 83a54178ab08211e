public import Foundation
public import WaybillCore

/// Turns `folder:<root>/<sub/path>` into a directory under an administrator's root and refuses
/// anything that would land outside it: `..` and friends, and symbolic links inside the root
/// that point out of it (or nowhere, which could be made to point anywhere later). Folders
/// that do not exist yet are fine: delivery creates them.
///
/// This is a check at the time it runs; the folder transport repeats it when it writes.
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
        for part in path
        where part.isEmpty || part == "." || part == ".." || part.contains("/") || part.contains("\\") || part.contains("\0") {
            throw WaybillError(.pathEscape, "folder destination \(destination) has the path segment '\(part)'")
        }
        let root = Self.resolveExistingPrefix(rootPath)
        var current = root
        var exists = Self.realPath(root) != nil
        for part in path {
            let next = current + "/" + part
            guard exists else {
                current = next
                continue
            }
            var info = stat()
            guard lstat(next, &info) == 0 else {
                guard errno == ENOENT else {
                    throw WaybillError(.ioError, "cannot inspect \(next): \(String(cString: strerror(errno)))")
                }
                exists = false
                current = next
                continue
            }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                current = next
            case S_IFLNK:
                guard let target = Self.realPath(next), Self.isInside(target, root: root) else {
                    throw WaybillError(
                        .pathEscape,
                        "folder destination \(destination) leads outside its root \(rootName) through the link \(next)")
                }
                current = target
            default:
                throw WaybillError(.invalidDestination, "folder destination \(destination): \(next) is a file, not a folder")
            }
        }
        return URL(fileURLWithPath: current, isDirectory: true)
    }

    /// Byte comparison: `String.hasPrefix` would call canonically equivalent names equal.
    static func isInside(_ path: String, root: String) -> Bool {
        path.utf8.elementsEqual(root.utf8) || path.utf8.starts(with: (root.hasSuffix("/") ? root : root + "/").utf8)
    }

    /// The real path of the longest existing prefix of `path`, with the rest appended.
    static func resolveExistingPrefix(_ path: String) -> String {
        var existing = URL(fileURLWithPath: path).standardizedFileURL.path
        var rest: [String] = []
        while realPath(existing) == nil, existing != "/" {
            rest.insert((existing as NSString).lastPathComponent, at: 0)
            existing = (existing as NSString).deletingLastPathComponent
        }
        let base = realPath(existing) ?? existing
        return rest.isEmpty ? base : (base == "/" ? "" : base) + "/" + rest.joined(separator: "/")
    }

    static func realPath(_ path: String) -> String? {
        guard let pointer = realpath(path, nil) else { return nil }
        defer { free(pointer) }
        return String(cString: pointer)
    }
}
