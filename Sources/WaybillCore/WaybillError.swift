/// An error a person can act on: a stable code for scripts and logs, and a sentence for people.
///
/// Codes are an extensible struct rather than an enum so that later layers add their own
/// without breaking exhaustive switches (the swift-service-lifecycle `ServiceRunnerError` pattern).
public struct WaybillError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public init(_ name: String) { self.name = name }
        public var description: String { name }

        public static let invalidDestination = Code("invalid-destination")
        public static let invalidEmail = Code("invalid-email")
        public static let unknownFolderRoot = Code("unknown-folder-root")
        public static let pathEscape = Code("path-escape")
        public static let webhookNotAllowed = Code("webhook-not-allowed")
        public static let invalidExpiry = Code("invalid-expiry")
        public static let invalidMaxUses = Code("invalid-max-uses")
        public static let invalidDirective = Code("invalid-directive")
        public static let invalidDirectiveID = Code("invalid-directive-id")
        public static let unknownDirective = Code("unknown-directive")
        public static let directiveInactive = Code("directive-inactive")
        public static let templateNotFound = Code("template-not-found")
        public static let templateMalformed = Code("template-malformed")
        public static let renderFailed = Code("render-failed")
        public static let keyError = Code("key-error")
        public static let storeError = Code("store-error")
        public static let configError = Code("config-error")
        public static let ioError = Code("io-error")
        public static let unreadableDocument = Code("unreadable-document")
        public static let emptyFile = Code("empty-file")
        public static let unsupportedFormat = Code("unsupported-format")
        public static let encryptedDocument = Code("encrypted")
        public static let tooManyPages = Code("too-many-pages")
        public static let cancelled = Code("cancelled")
        public static let invalidUser = Code("invalid-user")
        public static let invalidPassword = Code("invalid-password")
        public static let unknownUser = Code("unknown-user")
        public static let unknownToken = Code("unknown-token")
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
