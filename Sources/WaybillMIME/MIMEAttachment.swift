public import Foundation

/// One attachment, decoded to its own file.
///
/// The caller sniffs the file's magic bytes: scanners label PDFs `application/octet-stream` and
/// name them anything, so neither `contentType` nor the extension is trusted for the format.
public struct MIMEAttachment: Sendable, Equatable {
    /// 0-based among the attachments extracted (parts skipped as undecodable take no index).
    public var index: Int
    /// The sender's file name, decoded (RFC 2047, RFC 2231) and made safe to show and to use as a
    /// path component: the last path component only, no control or bidi-format characters, no
    /// leading dots, at most 200 bytes of UTF-8 (the extension is kept when shortened). When the
    /// sender gave none: `attachment-<index + 1>` plus an extension guessed from `contentType`.
    public var filename: String
    /// Lowercased `type/subtype` as declared (GMime substitutes `application/octet-stream` for an
    /// unparseable one).
    public var contentType: String
    /// `Content-Disposition: inline` or no disposition at all; a scan may well arrive this way.
    public var isInline: Bool
    /// The decoded bytes, in a file created with mode 0600 inside the directory given to
    /// ``MIMEParser/extract(messageAt:into:limits:)``, named `<index>-<filename>`.
    public var url: URL
    /// Decoded size in bytes.
    public var size: Int

    public init(index: Int, filename: String, contentType: String, isInline: Bool, url: URL, size: Int) {
        self.index = index
        self.filename = filename
        self.contentType = contentType
        self.isInline = isInline
        self.url = url
        self.size = size
    }
}
