public import Foundation
public import WaybillCore

/// Writes documents into folder destinations: atomically, never over an existing file, and only
/// under an administrator's root, checked at write time and not only before it.
///
/// The folder is reached by walking from the root's descriptor one component at a time with
/// `openat(O_NOFOLLOW | O_DIRECTORY)` (creating components with `mkdirat`), along the path the
/// resolver found (links inside the root already resolved). A component swapped for a symbolic
/// link after the check fails the walk instead of leading elsewhere; every later step is relative
/// to the folder's descriptor. The document is written to an unnamed `O_TMPFILE`, fsynced, and
/// given its name with `linkat`, which fails rather than replace anything; a crash leaves no
/// temporary file behind. (File systems without `O_TMPFILE` get a named `.waybill-*.tmp`.)
public struct FolderTransport: Sendable {
    public let resolver: FolderResolver

    public init(resolver: FolderResolver) { self.resolver = resolver }

    /// An open destination folder. Close it when done.
    public final class Folder: Sendable {
        public let path: String
        let fd: Int32

        init(path: String, fd: Int32) {
            self.path = path
            self.fd = fd
        }

        deinit { close(fd) }

        /// The first name not taken: `name.pdf`, then `name-2.pdf`, `name-3.pdf`, ….
        public func freeName(_ fileName: String) -> String {
            let base = (fileName as NSString).deletingPathExtension
            let ext = (fileName as NSString).pathExtension
            for n in 1...1_000 {
                let name = n == 1 ? fileName : "\(base)-\(n)" + (ext.isEmpty ? "" : ".\(ext)")
                var info = stat()
                if fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT { return name }
            }
            return "\(base)-\(UUID().uuidString)" + (ext.isEmpty ? "" : ".\(ext)")
        }

        /// Copies `source` to exactly `name` in this folder. Returns false, writing nothing, if
        /// the name is taken.
        public func write(_ source: URL, as name: String) throws(WaybillError) -> Bool {
            guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
                throw WaybillError(.pathEscape, "'\(name)' is not a plain file name")
            }
            let input = Foundation.open(source.path, O_RDONLY | O_CLOEXEC)
            guard input >= 0 else { throw WaybillError(.ioError, "cannot read \(source.path): \(Self.lastError)") }
            defer { close(input) }
            var temporaryName: String?
            var output = openat(fd, ".", O_WRONLY | Self.tmpfile | O_CLOEXEC, 0o640)
            if output < 0 {
                let name = ".waybill-\(UUID().uuidString).tmp"
                output = openat(fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o640)
                temporaryName = name
            }
            guard output >= 0 else { throw WaybillError(.ioError, "cannot write in \(path): \(Self.lastError)") }
            defer {
                close(output)
                if let temporaryName { unlinkat(fd, temporaryName, 0) }
            }
            try Self.copy(from: input, to: output, what: path)
            guard fsync(output) == 0 else { throw WaybillError(.ioError, "cannot fsync in \(path): \(Self.lastError)") }
            // linkat never replaces: the no-overwrite rule holds even against another writer.
            let linked =
                if let temporaryName {
                    linkat(fd, temporaryName, fd, name, 0)
                } else {
                    linkat(AT_FDCWD, "/proc/self/fd/\(output)", fd, name, AT_SYMLINK_FOLLOW)
                }
            if linked != 0 {
                if errno == EEXIST { return false }
                throw WaybillError(.ioError, "cannot name \(path)/\(name): \(Self.lastError)")
            }
            fsync(fd)
            return true
        }

        static var lastError: String { String(cString: strerror(errno)) }

        /// `O_TMPFILE` is a C macro Swift does not import: Linux's `__O_TMPFILE | O_DIRECTORY`.
        static let tmpfile: Int32 = 0o20000000 | O_DIRECTORY

        static func copy(from input: Int32, to output: Int32, what: String) throws(WaybillError) {
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
                if count < 0, errno == EINTR { continue }
                guard count >= 0 else { throw WaybillError(.ioError, "cannot read the document: \(lastError)") }
                if count == 0 { return }
                var offset = 0
                while offset < count {
                    let written = buffer.withUnsafeBytes { Foundation.write(output, $0.baseAddress! + offset, count - offset) }
                    if written < 0, errno == EINTR { continue }
                    guard written > 0 else { throw WaybillError(.ioError, "cannot write in \(what): \(lastError)") }
                    offset += written
                }
            }
        }
    }

    /// Opens (creating, mode 0750) the folder of a `folder:` destination, safely; see the type's comment.
    public func open(_ destination: Destination) throws(WaybillError) -> Folder {
        guard case .folder(let rootName, _) = destination, let rootPath = resolver.roots[rootName] else {
            throw WaybillError(.unknownFolderRoot, "\(destination) does not name a configured folder root")
        }
        let target = try resolver.resolve(destination).path
        // The root is the administrator's (it may itself be a link); below it, no links.
        let root = FolderResolver.resolveExistingPrefix(rootPath)
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        guard target == root || target.hasPrefix(root + "/") else {
            throw WaybillError(.pathEscape, "\(destination) resolves outside its root")
        }
        var fd = Foundation.open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw WaybillError(.ioError, "cannot open the folder root \(root): \(Folder.lastError)") }
        for component in target.dropFirst(root.count).split(separator: "/").map(String.init) {
            if mkdirat(fd, component, 0o750) != 0 && errno != EEXIST {
                close(fd)
                throw WaybillError(.ioError, "cannot create \(component) under \(root): \(Folder.lastError)")
            }
            let next = openat(fd, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let failure = errno
            close(fd)
            guard next >= 0 else {
                if failure == ELOOP || failure == ENOTDIR {
                    throw WaybillError(.pathEscape, "\(destination): '\(component)' is a link or a file, not a folder")
                }
                throw WaybillError(.ioError, "cannot open \(component) under \(root): \(String(cString: strerror(failure)))")
            }
            fd = next
        }
        return Folder(path: target, fd: fd)
    }
}
