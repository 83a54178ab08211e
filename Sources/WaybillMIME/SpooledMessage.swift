internal import CGMime
import Foundation
import WaybillCore

#if canImport(Glibc)
import Glibc
#endif

/// A spool file parsed by GMime: the one Swift owner of its stream, parser and message.
///
/// GMime leaves part content on disk (the parser's persist-stream default for a seekable
/// stream): each part's content is a bounded view of `stream` sharing its descriptor, so the
/// stream must outlive every read of the message, and it does, being freed last in `deinit`.
/// Not `Sendable`: one extraction, one thread.
final class SpooledMessage {
    /// GMime's charset and type tables are set up once per process; a `static let` initialiser
    /// runs exactly once even when the first extractions race.
    private static let gmimeInitialized: Void = g_mime_init()

    private let stream: UnsafeMutablePointer<GMimeStream>
    private let parser: UnsafeMutablePointer<GMimeParser>
    let message: UnsafeMutablePointer<GMimeMessage>

    init(url: URL) throws(WaybillError) {
        _ = Self.gmimeInitialized
        let fd = open(url.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw WaybillError(.ioError, "cannot open message \(url.path): \(String(cString: strerror(errno)))")
        }
        // The stream owns the descriptor from here on and closes it when released.
        guard let stream = g_mime_stream_fs_new(fd) else {
            close(fd)
            throw WaybillError(.ioError, "cannot read message \(url.path)")
        }
        guard let parser = g_mime_parser_new_with_stream(stream) else {
            g_object_unref(stream)
            throw WaybillError(.ioError, "cannot read message \(url.path)")
        }
        // Default options: loose RFC 2047 and RFC 2231 handling, which real scanners need.
        let message = g_mime_parser_construct_message(parser, nil)
        // GMime returns no message for an empty file or one whose first line is not a header
        // field, and a headerless message for a file that starts with a blank line: neither
        // came from a mail client.
        guard let message, waybill_message_header_count(message) > 0 else {
            if let message { g_object_unref(message) }
            g_object_unref(parser)
            g_object_unref(stream)
            throw WaybillError(.malformedMessage, "\(url.lastPathComponent) is not a mail message: no header section")
        }
        self.stream = stream
        self.parser = parser
        self.message = message
    }

    deinit {
        g_object_unref(message)
        g_object_unref(parser)
        g_object_unref(stream)
    }

    /// The top-level MIME entity, if the message has a body at all.
    var body: UnsafeMutablePointer<GMimeObject>? { g_mime_message_get_mime_part(message) }

    var messageID: String? { g_mime_message_get_message_id(message).map { String(cString: $0) } }

    var subject: String? { g_mime_message_get_subject(message).map { String(cString: $0) } }

    /// A top-level header's raw value (first occurrence), or nil.
    func header(_ name: String) -> String? {
        message.withMemoryRebound(to: GMimeObject.self, capacity: 1) { object in
            g_mime_object_get_header(object, name).map { String(cString: $0) }
        }
    }

    /// Auto-Submitted (RFC 3834) other than `no`, `Precedence: bulk|junk|list`, a List-Id, or a
    /// notice of Waybill's own: mail no notice may answer.
    var isAutomatic: Bool {
        if let value = header("Auto-Submitted")?.trimmingCharacters(in: .whitespaces).lowercased(), !value.hasPrefix("no") {
            return true
        }
        if let value = header("Precedence")?.trimmingCharacters(in: .whitespaces).lowercased(),
            ["bulk", "junk", "list"].contains(value)
        {
            return true
        }
        return header("List-Id") != nil || header("X-Waybill-Notice") != nil
    }

    var from: String? { Self.firstMailbox(in: g_mime_message_get_from(message)) }

    var date: Date? {
        guard let date = g_mime_message_get_date(message) else { return nil }
        let microseconds = Double(g_date_time_get_microsecond(date))
        return Date(timeIntervalSince1970: Double(g_date_time_to_unix(date)) + microseconds / 1e6)
    }

    /// Descends into groups (`Scanners: a@x, b@y;`) so a group-only From still yields an address.
    private static func firstMailbox(in list: UnsafeMutablePointer<InternetAddressList>?) -> String? {
        guard let list else { return nil }
        for index in 0..<internet_address_list_length(list) {
            guard let address = internet_address_list_get_address(list, index) else { continue }
            if let addr = waybill_mailbox_addr(address), addr.pointee != 0 { return String(cString: addr) }
            if let found = firstMailbox(in: waybill_group_members(address)) { return found }
        }
        return nil
    }
}
