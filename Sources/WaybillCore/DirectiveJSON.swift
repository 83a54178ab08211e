public import Foundation

/// The JSON shape scripts rely on, in `waybill directive show --json` and the web API alike: `id`,
/// `title`, `owner`, `destinations`, `expires`, `max_uses`, `use_count`, `token`, and the rest of the model.
public struct DirectiveJSON: Encodable, Sendable {
    public let id: String
    public let display_id: String
    public let title: String
    public let owner: String
    public let visibility: String
    public let destinations: [String]
    public let created: String
    public let expires: String?
    public let idle_expiry_seconds: Int?
    public let max_uses: Int?
    public let use_count: Int
    public let last_used: String?
    public let revoked: String?
    public let status: String
    public let token: String
    public let delivery_confirmation: Bool
    public let output_format: String
    public let file_name_pattern: String
    public let notes: String

    public init(_ directive: Directive, token: SheetToken, now: Date) {
        id = directive.id.rawValue
        display_id = directive.id.display
        title = directive.title
        owner = directive.owner
        visibility = directive.visibility.rawValue
        destinations = directive.destinations.map(\.uri)
        created = HumanDate.formatISO(directive.createdAt)
        expires = directive.expiresAt.map(HumanDate.formatISO)
        idle_expiry_seconds = directive.idleExpiry
        max_uses = directive.maxUses
        use_count = directive.useCount
        last_used = directive.lastUsedAt.map(HumanDate.formatISO)
        revoked = directive.revokedAt.map(HumanDate.formatISO)
        status = directive.status(at: now).name
        self.token = token.description
        delivery_confirmation = directive.options.deliveryConfirmation
        output_format = directive.options.outputFormat.rawValue
        file_name_pattern = directive.options.fileNamePattern
        notes = directive.options.notes
    }

    enum CodingKeys: String, CodingKey {
        case id, display_id, title, owner, visibility, destinations, created, expires, idle_expiry_seconds, max_uses
        case use_count, last_used, revoked, status, token, delivery_confirmation, output_format, file_name_pattern, notes
    }

    /// Every key is always present: absent values are `null`, not missing (synthesized
    /// conformance would omit them, and scripts would have to guess).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(display_id, forKey: .display_id)
        try container.encode(title, forKey: .title)
        try container.encode(owner, forKey: .owner)
        try container.encode(visibility, forKey: .visibility)
        try container.encode(destinations, forKey: .destinations)
        try container.encode(created, forKey: .created)
        try container.encode(expires, forKey: .expires)
        try container.encode(idle_expiry_seconds, forKey: .idle_expiry_seconds)
        try container.encode(max_uses, forKey: .max_uses)
        try container.encode(use_count, forKey: .use_count)
        try container.encode(last_used, forKey: .last_used)
        try container.encode(revoked, forKey: .revoked)
        try container.encode(status, forKey: .status)
        try container.encode(token, forKey: .token)
        try container.encode(delivery_confirmation, forKey: .delivery_confirmation)
        try container.encode(output_format, forKey: .output_format)
        try container.encode(file_name_pattern, forKey: .file_name_pattern)
        try container.encode(notes, forKey: .notes)
    }
}
