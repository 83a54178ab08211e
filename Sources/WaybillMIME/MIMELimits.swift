/// Bounds on what one message may cost. A message is hostile input from the network: these stop
/// a small message from expanding into much work, many files or a deep recursion.
public struct MIMELimits: Sendable {
    /// MIME entities of any kind (multiparts, forwarded messages, leaves) in the whole message.
    public var maximumParts = 1000
    /// Nesting of multiparts and forwarded messages; the top-level body is at depth 1. GMime
    /// itself stops nesting at 1,024 levels, so larger values change nothing.
    public var maximumDepth = 32
    /// Decoded bytes of all attachments together; base64 is a 3:4 expansion, so this also bounds
    /// the disk a message can fill.
    public var maximumDecodedBytes: Int = 1 << 30

    public init(maximumParts: Int = 1000, maximumDepth: Int = 32, maximumDecodedBytes: Int = 1 << 30) {
        self.maximumParts = maximumParts
        self.maximumDepth = maximumDepth
        self.maximumDecodedBytes = maximumDecodedBytes
    }
}
