internal import CGMime
public import Foundation
public import WaybillCore

#if canImport(Glibc)
import Glibc
#endif

/// Turns a spooled mail into files the scan decoder can read, with GMime 3.
///
/// Thread rules: each call builds its own GMime stream, parser and message and shares none of
/// them, so calls on different messages may run at the same time on different threads. A call
/// blocks on file I/O: run it off the event loops. Attachment files are not fsynced: they are
/// working copies that can be extracted again from the spool file.
public enum MIMEParser {
    /// Parses the message at `url` and writes each attachment's decoded bytes to its own file in
    /// `directory`, streaming: neither the message nor an attachment is ever in memory whole.
    ///
    /// Which leaf parts are attachments: any with a file name, any whose type is not `text/*`
    /// (scanners send `application/octet-stream`, inline `image/jpeg`), and any with disposition
    /// `attachment`. Other `text/*` parts are body. Forwarded messages (message/rfc822) are
    /// searched too, since people forward scans.
    ///
    /// Lenient where real scanners are sloppy: a transfer encoding on a multipart, base64 with
    /// stray characters, a missing closing boundary, bare LF line ends.
    ///
    /// - Throws: `WaybillError(.malformedMessage)` when the file is not a mail message (an empty
    ///   file, random bytes), when a ``MIMELimits`` bound is passed, or when every attachment
    ///   candidate is undecodable (no content); such a part is skipped when another attachment
    ///   decodes. `WaybillError(.ioError)` when the message cannot be read or a file cannot be
    ///   written. Files this call created are removed before it throws.
    public static func extract(
        messageAt url: URL, into directory: URL, limits: MIMELimits = MIMELimits()
    ) throws(WaybillError) -> MIMEMessage {
        let file = try SpooledMessage(url: url)
        var leaves: [Leaf] = []
        if let body = file.body {
            var count = 0
            try collect(body, depth: 1, limits: limits, count: &count, into: &leaves)
        }
        var created: [URL] = []
        do {
            let attachments = try write(
                leaves.filter(\.isAttachment), into: directory, limits: limits, created: &created
            )
            return MIMEMessage(
                messageID: file.messageID, subject: file.subject, from: file.from, date: file.date,
                attachments: attachments, bodyText: bodyText(of: leaves), isAutomatic: file.isAutomatic
            )
        } catch {
            for url in created { try? FileManager.default.removeItem(at: url) }
            throw error
        }
    }

    /// The message's header fields alone (`attachments` empty, `bodyText` nil), writing nothing:
    /// for quarantine records and logs about a message whose extraction failed.
    ///
    /// - Throws: `WaybillError(.malformedMessage)` when the file is not a mail message,
    ///   `WaybillError(.ioError)` when it cannot be read.
    public static func headers(messageAt url: URL) throws(WaybillError) -> MIMEMessage {
        let file = try SpooledMessage(url: url)
        return MIMEMessage(
            messageID: file.messageID, subject: file.subject, from: file.from, date: file.date, isAutomatic: file.isAutomatic)
    }

    /// A leaf MIME part and what its headers say. Valid while its `SpooledMessage` lives.
    private struct Leaf {
        let object: UnsafeMutablePointer<GMimeObject>
        let part: UnsafeMutablePointer<GMimePart>
        let contentType: String
        let disposition: String?
        /// Decoded by GMime (RFC 2231 parameters, RFC 2047 words even inside quotes); `nil` when empty.
        let filename: String?

        init(object: UnsafeMutablePointer<GMimeObject>, part: UnsafeMutablePointer<GMimePart>) {
            self.object = object
            self.part = part
            if let type = g_mime_object_get_content_type(object),
                let mimeType = g_mime_content_type_get_mime_type(type)
            {
                contentType = String(cString: mimeType).lowercased()
                g_free(mimeType)
            } else {
                contentType = "application/octet-stream"
            }
            disposition = g_mime_object_get_disposition(object).map { String(cString: $0).lowercased() }
            filename = g_mime_part_get_filename(part).map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
        }

        var isText: Bool { contentType.hasPrefix("text/") }
        var isAttachment: Bool { filename != nil || !isText || disposition == "attachment" }
        /// RFC 2183 §2.8: an unknown disposition is treated as `attachment`.
        var isInline: Bool { disposition == nil || disposition == "inline" }
    }

    /// Walks the tree depth-first in message order, checking the limits before any file is written.
    /// The recursion is bounded by `maximumDepth` (and by GMime's own cap of 1,024 levels).
    private static func collect(
        _ object: UnsafeMutablePointer<GMimeObject>, depth: Int, limits: MIMELimits, count: inout Int,
        into leaves: inout [Leaf]
    ) throws(WaybillError) {
        count += 1
        guard count <= limits.maximumParts else {
            throw WaybillError(.malformedMessage, "the message has more than \(limits.maximumParts) MIME parts")
        }
        guard depth <= limits.maximumDepth else {
            throw WaybillError(
                .malformedMessage, "the message nests MIME parts more than \(limits.maximumDepth) levels deep"
            )
        }
        if let multipart = waybill_as_multipart(object) {
            for index in 0..<g_mime_multipart_get_count(multipart) {
                guard let child = g_mime_multipart_get_part(multipart, index) else { continue }
                try collect(child, depth: depth + 1, limits: limits, count: &count, into: &leaves)
            }
        } else if let messagePart = waybill_as_message_part(object) {
            guard let inner = g_mime_message_part_get_message(messagePart),
                let body = g_mime_message_get_mime_part(inner)
            else { return }
            try collect(body, depth: depth + 1, limits: limits, count: &count, into: &leaves)
        } else if let part = waybill_as_part(object) {
            leaves.append(Leaf(object: object, part: part))
        }
    }

    private static func write(
        _ candidates: [Leaf], into directory: URL, limits: MIMELimits, created: inout [URL]
    ) throws(WaybillError) -> [MIMEAttachment] {
        var attachments: [MIMEAttachment] = []
        var undecodable: [String] = []
        var total = 0
        for leaf in candidates {
            let index = attachments.count
            let filename = AttachmentFilename.make(leaf.filename, index: index, contentType: leaf.contentType)
            // GMime gives no content to a part whose headers run into the next boundary.
            guard let content = g_mime_part_get_content(leaf.part) else {
                undecodable.append("\(filename) (\(leaf.contentType)) has no content")
                continue
            }
            let (url, fd) = try createFile(in: directory, index: index, filename: filename)
            created.append(url)
            let budget = limits.maximumDecodedBytes - total
            let size = try decode(content, to: fd, path: url.path, budget: budget, limits: limits)
            total += size
            attachments.append(MIMEAttachment(
                index: index, filename: filename, contentType: leaf.contentType, isInline: leaf.isInline,
                url: url, size: size
            ))
        }
        if attachments.isEmpty, let reason = undecodable.first {
            throw WaybillError(.malformedMessage, "the message's attachment cannot be decoded: \(reason)")
        }
        return attachments
    }

    /// `<index>-<filename>`, created exclusively (never over an existing file or through a
    /// symlink) with mode 0600; a numbered variant when the name is taken.
    private static func createFile(
        in directory: URL, index: Int, filename: String
    ) throws(WaybillError) -> (URL, Int32) {
        for attempt in 0..<100 {
            let name = attempt == 0 ? "\(index)-\(filename)" : "\(index)-\(attempt)-\(filename)"
            let url = directory.appendingPathComponent(name, isDirectory: false)
            let fd = open(url.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            if fd >= 0 { return (url, fd) }
            guard errno == EEXIST else {
                throw WaybillError(.ioError, "cannot create \(url.path): \(String(cString: strerror(errno)))")
            }
        }
        throw WaybillError(.ioError, "cannot find a free name for \(filename) in \(directory.path)")
    }

    /// Decodes into `fd` (which this takes over and closes) and returns the decoded size.
    private static func decode(
        _ content: UnsafeMutablePointer<GMimeDataWrapper>, to fd: Int32, path: String, budget: Int, limits: MIMELimits
    ) throws(WaybillError) -> Int {
        // The stream refuses to write past its end: one byte beyond the budget tells a part
        // that is too large from one that fits exactly, without decoding the rest of it.
        let end = budget < Int.max ? budget + 1 : -1
        guard let stream = g_mime_stream_fs_new_with_bounds(fd, 0, end) else {
            close(fd)
            throw WaybillError(.ioError, "cannot write \(path)")
        }
        defer { g_object_unref(stream) }
        let written = g_mime_data_wrapper_write_to_stream(content, stream)
        let writeError = errno
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw WaybillError(.ioError, "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        let size = Int(info.st_size)
        guard size <= budget else {
            throw WaybillError(
                .malformedMessage, "the attachments decode to more than \(limits.maximumDecodedBytes) bytes"
            )
        }
        guard written >= 0 else {
            throw WaybillError(.ioError, "cannot write \(path): \(String(cString: strerror(writeError)))")
        }
        return size
    }

    /// The first plain-text body part, else the first HTML one as text.
    private static func bodyText(of leaves: [Leaf]) -> String? {
        let body = leaves.filter { !$0.isAttachment }
        if let plain = body.first(where: { $0.contentType == "text/plain" }) {
            return BodyText.read(plain.part, object: plain.object)
        }
        if let html = body.first(where: { $0.contentType == "text/html" }) {
            return BodyText.read(html.part, object: html.object).map(BodyText.plainText(fromHTML:))
        }
        return nil
    }
}
