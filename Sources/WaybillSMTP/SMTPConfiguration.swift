public import WaybillCore

/// Limits of the SMTP service, each with its RFC or house default. Every field has a default, so
/// `SMTPConfiguration()` is a working plain-SMTP listener for a trusted network.
public struct SMTPConfiguration: Sendable {
    /// Announced in the greeting and in EHLO.
    public var hostname: String
    /// Announced with SIZE (RFC 1870); larger messages get `552 5.3.4`.
    public var maximumMessageSize: Int
    /// More recipients get `452 4.5.3` (RFC 5321 §4.5.3.1.8 asks servers to take at least 100).
    public var maximumRecipients: Int
    /// Command lines, CRLF included (RFC 5321 §4.5.3.1.4).
    public var maximumCommandLength: Int
    /// Errors in one session before it is closed with `421`: a client that only says nonsense.
    public var maximumErrors: Int

    /// STARTTLS (RFC 3207); nil: not offered.
    public var tls: SMTPTLS?
    /// AUTH PLAIN and LOGIN (RFC 4954); nil: not offered.
    public var authentication: SMTPAuthentication?
    /// MAIL before a successful AUTH gets `530 5.7.0`. Off by default: recipients are checked by the
    /// routing rules anyway, so an unauthenticated client can reach only Waybill's own addresses.
    public var requireAuthentication: Bool
    /// Offer AUTH on a connection that is not (yet) TLS. Off by default: passwords travel in clear.
    public var allowPlaintextAuthentication: Bool

    /// Connections at once, in total; one more gets `421 4.7.0 Too many connections`.
    public var maximumConnections: Int
    /// Connections at once from one client address (one office's scanners share one NAT address).
    public var maximumConnectionsPerAddress: Int
    /// How long the server waits for the next command (RFC 5321 §4.5.3.2.7: at least 5 minutes).
    public var commandTimeout: Duration
    /// How long the server waits between two reads of the DATA block (§4.5.3.2.6: 3 minutes).
    public var dataTimeout: Duration
    /// The pause before the 220 greeting; a client that sends anything in it is an early talker
    /// (§4.3.1 says the client waits for the greeting) and is refused with `554`. Zero: no pause,
    /// no check.
    public var greetingDelay: Duration
    /// The slowest DATA a client may send, in octets per second, averaged over `dataRateWindow`;
    /// slower gets `421 4.4.2` and the connection is closed (a trickling client holds a connection
    /// slot while staying inside `dataTimeout`). Zero: no check.
    public var minimumDataRate: Int
    public var dataRateWindow: Duration
    /// Threads for the spool's blocking file work (open, write, fsync, rename): more threads let
    /// more concurrent sessions share one journal commit.
    public var spoolThreads: Int

    public init(
        hostname: String = "localhost", maximumMessageSize: Int = 50 * 1024 * 1024, maximumRecipients: Int = 100,
        maximumCommandLength: Int = 512, maximumErrors: Int = 20, tls: SMTPTLS? = nil,
        authentication: SMTPAuthentication? = nil, requireAuthentication: Bool = false,
        allowPlaintextAuthentication: Bool = false, maximumConnections: Int = 200, maximumConnectionsPerAddress: Int = 20,
        commandTimeout: Duration = .seconds(300), dataTimeout: Duration = .seconds(180), greetingDelay: Duration = .seconds(1),
        minimumDataRate: Int = 1024, dataRateWindow: Duration = .seconds(30), spoolThreads: Int = 16
    ) {
        self.hostname = hostname
        self.maximumMessageSize = maximumMessageSize
        self.maximumRecipients = maximumRecipients
        self.maximumCommandLength = maximumCommandLength
        self.maximumErrors = maximumErrors
        self.tls = tls
        self.authentication = authentication
        self.requireAuthentication = requireAuthentication
        self.allowPlaintextAuthentication = allowPlaintextAuthentication
        self.maximumConnections = maximumConnections
        self.maximumConnectionsPerAddress = maximumConnectionsPerAddress
        self.commandTimeout = commandTimeout
        self.dataTimeout = dataTimeout
        self.greetingDelay = greetingDelay
        self.minimumDataRate = minimumDataRate
        self.dataRateWindow = dataRateWindow
        self.spoolThreads = spoolThreads
    }
}

/// Where STARTTLS finds its certificate: PEM files, read once when the server starts (a missing
/// or malformed file stops the start with an error naming it).
public struct SMTPTLS: Sendable, Equatable {
    /// The server certificate first, then any intermediates.
    public var certificateChainPath: String
    public var privateKeyPath: String

    public init(certificateChainPath: String, privateKeyPath: String) {
        self.certificateChainPath = certificateChainPath
        self.privateKeyPath = privateKeyPath
    }
}

/// The accounts AUTH accepts: user name → PBKDF2 hash (`PasswordHash.make(password:)` makes one).
public struct SMTPAuthentication: Sendable, Equatable {
    public var users: [String: PasswordHash]
    /// Failed AUTH attempts in one session before it is closed with `421 4.7.0`.
    public var maximumFailures: Int

    public init(users: [String: PasswordHash], maximumFailures: Int = 3) {
        self.users = users
        self.maximumFailures = maximumFailures
    }

    /// Users with hashes in their stored form (`pbkdf2-sha256$…`), as a configuration file holds
    /// them; a malformed hash is an error naming the user.
    public init(encodedUsers: [String: String], maximumFailures: Int = 3) throws {
        var users: [String: PasswordHash] = [:]
        for (user, encoded) in encodedUsers {
            do { users[user] = try PasswordHash(parsing: encoded) } catch let error as WaybillError {
                throw WaybillError(error.code, "SMTP user \(user): \(error.message)")
            }
        }
        self.init(users: users, maximumFailures: maximumFailures)
    }

    /// Checks a user's password (slow on purpose: run off the event loops). An unknown user costs
    /// as much as a known one, so timing does not tell which names exist.
    public func verify(user: String, password: String) -> Bool {
        guard let hash = users[user] else {
            _ = Self.decoy.verify(password)
            return false
        }
        return hash.verify(password)
    }

    private static let decoy = PasswordHash(
        iterations: PasswordHash.defaultIterations, salt: Array(repeating: 0, count: 16), hash: Array(repeating: 0, count: 32))
}
