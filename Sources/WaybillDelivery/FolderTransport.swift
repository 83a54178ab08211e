public import Foundation
public import WaybillCore

/// Writes documents into folder destinations: atomically (a temporary file, fsynced, then
/// hard-linked to its name, which fails rather than replace anything), never over an existing
/// file, and only under an administrator's root (the resolver's check repeated at write time,
/// after the folders are made).
public struct FolderTransport: Sendable {
    public let resolver: FolderResolver

    public init(resolver: FolderResolver) { self.resolver = resolver }

    /// The folder for `destination`, created (mode 0750) if missing and checked again after.
    public func folder(for destination: Destination) throws(WaybillError) -> URL {
        let folder = try resolver.resolve(destination)
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        } catch {
            throw WaybillError(.ioError, "cannot create the folder \(folder.path): \(error.localizedDescription)")
        }
        // A link swapped in between the check and the mkdir is caught here.
        let again = try resolver.resolve(destination)
        guard again.path == folder.path else {
            throw WaybillError(.pathEscape, "the folder for \(destination) changed while it was being created")
        }
        return folder
    }

    /// The first name in `folder` not taken: `name.pdf`, then `name-2.pdf`, `name-3.pdf`, ….
    public func freeTarget(in folder: URL, fileName: String) -> URL {
        let base = (fileName as NSString).deletingPathExtension
        let ext = (fileName as NSString).pathExtension
        for n in 1...10_000 {
            let name = n == 1 ? fileName : "\(base)-\(n)" + (ext.isEmpty ? "" : ".\(ext)")
            let candidate = folder.appendingPathComponent(name)
            var info = stat()
            if lstat(candidate.path, &info) != 0 && errno == ENOENT { return candidate }
        }
        return folder.appendingPathComponent("\(base)-\(UUID().uuidString)" + (ext.isEmpty ? "" : ".\(ext)"))
    }

    /// Copies `source` to exactly `target`. Returns false, writing nothing, if `target` exists.
    public func write(_ source: URL, to target: URL) throws(WaybillError) -> Bool {
        let folder = target.deletingLastPathComponent()
        let temporary = folder.appendingPathComponent(".waybill-\(UUID().uuidString).tmp")
        let input = open(source.path, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw WaybillError(.ioError, "cannot read \(source.path): \(String(cString: strerror(errno)))") }
        defer { close(input) }
        let output = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o640)
        guard output >= 0 else {
            throw WaybillError(.ioError, "cannot write in \(folder.path): \(String(cString: strerror(errno)))")
        }
        var ok = false
        defer {
            if output >= 0 { close(output) }
            unlink(temporary.path)
        }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { throw WaybillError(.ioError, "cannot read \(source.path): \(String(cString: strerror(errno)))") }
            if count == 0 { break }
            var offset = 0
            while offset < count {
                let written = buffer.withUnsafeBytes { Foundation.write(output, $0.baseAddress! + offset, count - offset) }
                if written < 0, errno == EINTR { continue }
                guard written > 0 else {
                    throw WaybillError(.ioError, "cannot write \(temporary.path): \(String(cString: strerror(errno)))")
                }
                offset += written
            }
        }
        guard fsync(output) == 0 else { throw WaybillError(.ioError, "cannot fsync in \(folder.path): \(String(cString: strerror(errno)))") }
        // link(2) never replaces: the no-overwrite rule holds even against another writer.
        if link(temporary.path, target.path) != 0 {
            if errno == EEXIST { return false }
            throw WaybillError(.ioError, "cannot name \(target.path): \(String(cString: strerror(errno)))")
        }
        ok = true
        let directory = open(folder.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
        return ok
    }
}
