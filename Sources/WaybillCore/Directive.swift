public import Foundation

public enum Visibility: String, Sendable, Codable, CaseIterable {
    /// Only the owner may use or see it.
    case `private`
    /// Listed for the owner's colleagues to use.
    case shared
    /// Anyone signed in may use it.
    case `public`
}

public enum OutputFormat: String, Sendable, Codable, CaseIterable {
    /// One PDF per job, page images passed through.
    case pdf
    /// The attachment as it arrived, minus nothing.
    case original
}

public struct DirectiveOptions: Sendable, Hashable, Codable {
    public var deliveryConfirmation: Bool
    public var outputFormat: OutputFormat
    /// Tokens: `{date}`, `{time}`, `{directive}`, `{message}`, `{title}`, `{n}`.
    public var fileNamePattern: String
    public var notes: String

    public static let defaultFileNamePattern = "{date}-{directive}-{message}"

    public init(
        deliveryConfirmation: Bool = false,
        outputFormat: OutputFormat = .pdf,
        fileNamePattern: String = DirectiveOptions.defaultFileNamePattern,
        notes: String = ""
    ) {
        self.deliveryConfirmation = deliveryConfirmation
        self.outputFormat = outputFormat
        self.fileNamePattern = fileNamePattern
        self.notes = notes
    }
}

/// Stored routing instructions: who receives the documents, by which channel, until when.
public struct Directive: Sendable, Hashable {
    public var id: DirectiveID
    public var title: String
    public var owner: String
    public var visibility: Visibility
    public var destinations: [Destination]
    public var createdAt: Date
    /// Absolute expiry; nil means none.
    public var expiresAt: Date?
    /// Expires this many seconds after its last use (or creation, if never used).
    public var idleExpiry: Int?
    public var maxUses: Int?
    public var useCount: Int
    public var lastUsedAt: Date?
    public var revokedAt: Date?
    public var options: DirectiveOptions

    public init(
        id: DirectiveID, title: String, owner: String, visibility: Visibility = .private,
        destinations: [Destination], createdAt: Date, expiresAt: Date? = nil, idleExpiry: Int? = nil,
        maxUses: Int? = nil, useCount: Int = 0, lastUsedAt: Date? = nil, revokedAt: Date? = nil,
        options: DirectiveOptions = DirectiveOptions()
    ) {
        self.id = id
        self.title = title
        self.owner = owner
        self.visibility = visibility
        self.destinations = destinations
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.idleExpiry = idleExpiry
        self.maxUses = maxUses
        self.useCount = useCount
        self.lastUsedAt = lastUsedAt
        self.revokedAt = revokedAt
        self.options = options
    }

    /// When idle expiry ends this directive if it is not used before then.
    public var idleExpiresAt: Date? {
        idleExpiry.map { (lastUsedAt ?? createdAt).addingTimeInterval(TimeInterval($0)) }
    }

    public func status(at now: Date) -> DirectiveStatus {
        if let revokedAt { return .revoked(revokedAt) }
        if let expiresAt, now >= expiresAt { return .expired(expiresAt) }
        if let idle = idleExpiresAt, now >= idle { return .idleExpired(idle) }
        if let maxUses, useCount >= maxUses { return .usedUp(maxUses) }
        return .active
    }
}

public enum DirectiveStatus: Sendable, Hashable {
    case active
    case revoked(Date)
    case expired(Date)
    case idleExpired(Date)
    case usedUp(Int)

    public var isActive: Bool { self == .active }

    /// A stable name for JSON and logs.
    public var name: String {
        switch self {
        case .active: "active"
        case .revoked: "revoked"
        case .expired: "expired"
        case .idleExpired: "idle-expired"
        case .usedUp: "used-up"
        }
    }

    /// Why it can no longer be used, in words for people.
    public func explanation(for id: DirectiveID) -> String {
        switch self {
        case .active: "directive \(id.display) is active"
        case .revoked(let date): "directive \(id.display) was revoked on \(HumanDate.format(date))"
        case .expired(let date): "directive \(id.display) expired on \(HumanDate.format(date))"
        case .idleExpired(let date): "directive \(id.display) expired on \(HumanDate.format(date)) after going unused"
        case .usedUp(let uses): "directive \(id.display) has been used its maximum of \(uses) times"
        }
    }
}

/// What a person asks for when creating a directive, before it is checked.
public struct DirectiveDraft: Sendable {
    public var title: String
    public var owner: String
    public var visibility: Visibility = .private
    public var destinations: [String]
    public var expiresAt: Date?
    public var idleExpiry: Int?
    public var maxUses: Int?
    public var options = DirectiveOptions()

    public static let maxTitleLength = 200
    public static let maxDestinations = 50
    public static let maxNotesLength = 500

    /// No control characters and no line or paragraph separators: these values are printed on one line.
    static func isOneLine(_ text: String) -> Bool {
        !text.unicodeScalars.contains { scalar in
            switch scalar.properties.generalCategory {
            case .control, .lineSeparator, .paragraphSeparator, .surrogate, .unassigned: true
            default: false
            }
        }
    }

    public init(title: String, owner: String, destinations: [String]) {
        self.title = title
        self.owner = owner
        self.destinations = destinations
    }

    /// Checks every field; the first problem found is thrown with a message naming it.
    public func validated(id: DirectiveID, now: Date, policy: DestinationPolicy) throws(WaybillError) -> Directive {
        let title = self.title.trimmingSpaces()
        guard !title.isEmpty else { throw WaybillError(.invalidDirective, "the title may not be empty") }
        // Code points, as the schema's length() counts them.
        guard title.unicodeScalars.count <= Self.maxTitleLength, Self.isOneLine(title) else {
            throw WaybillError(.invalidDirective, "the title must be one line of at most \(Self.maxTitleLength) characters")
        }
        guard options.notes.unicodeScalars.count <= Self.maxNotesLength, Self.isOneLine(options.notes) else {
            throw WaybillError(.invalidDirective, "notes must be one line of at most \(Self.maxNotesLength) characters")
        }
        let pattern = options.fileNamePattern
        guard !pattern.isEmpty, pattern.unicodeScalars.count <= 200, Self.isOneLine(pattern), !pattern.contains("/"),
            !pattern.contains("\\"), !pattern.contains(".."), !pattern.hasPrefix(".")
        else {
            throw WaybillError(
                .invalidDirective, "the file-name pattern '\(pattern)' must be a plain file name: no '/', '\\' or '..'")
        }
        let owner = self.owner.trimmingSpaces()
        guard Destination.isValidEmail(owner) else {
            throw WaybillError(.invalidEmail, "owner '\(owner)' is not a valid email address")
        }
        guard !destinations.isEmpty else {
            throw WaybillError(.invalidDestination, "a directive needs at least one destination (--to)")
        }
        guard destinations.count <= Self.maxDestinations else {
            throw WaybillError(.invalidDestination, "a directive may have at most \(Self.maxDestinations) destinations")
        }
        var checked: [Destination] = []
        for uri in destinations {
            let destination = try policy.check(uri)
            if !checked.contains(destination) { checked.append(destination) }
        }
        if let expiresAt, expiresAt <= now {
            throw WaybillError(.invalidExpiry, "the expiry \(HumanDate.formatISO(expiresAt)) is in the past")
        }
        if let idleExpiry, idleExpiry <= 0 {
            throw WaybillError(.invalidExpiry, "the idle expiry must be a positive duration")
        }
        if let maxUses, maxUses <= 0 {
            throw WaybillError(.invalidMaxUses, "max uses must be a positive number, not \(maxUses)")
        }
        return Directive(
            id: id, title: title, owner: owner, visibility: visibility, destinations: checked, createdAt: now,
            expiresAt: expiresAt, idleExpiry: idleExpiry, maxUses: maxUses, options: options
        )
    }
}
