public import Foundation

/// What the ingest pipeline needs from one spooled mail: who sent it, what it says, and the
/// files it carries, already written to disk so the decoder never sees MIME.
public struct MIMEMessage: Sendable {
    /// Without angle brackets, as GMime normalises it; `nil` when the header is absent.
    public var messageID: String?
    /// RFC 2047-decoded.
    public var subject: String?
    /// The addr-spec of the From header's first mailbox: scanners put their own address there, and
    /// the display name is not needed to route a scan.
    public var from: String?
    public var date: Date?
    /// In message order, counting into forwarded messages (message/rfc822).
    public var attachments: [MIMEAttachment]
    /// The first text/plain body part (at most 64 KiB, LF line ends), or the text of the first
    /// text/html one with tags removed when there is no plain part: senders sometimes write a
    /// routing hint in the body.
    public var bodyText: String?
    /// Sent by a program, not a person (Auto-Submitted, Precedence bulk/list, List-Id, or one of
    /// Waybill's own notices): never answered with a notice, so notices cannot loop.
    public var isAutomatic: Bool

    public init(
        messageID: String? = nil, subject: String? = nil, from: String? = nil, date: Date? = nil,
        attachments: [MIMEAttachment] = [], bodyText: String? = nil, isAutomatic: Bool = false
    ) {
        self.isAutomatic = isAutomatic
        self.messageID = messageID
        self.subject = subject
        self.from = from
        self.date = date
        self.attachments = attachments
        self.bodyText = bodyText
    }
}
