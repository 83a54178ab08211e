public import WaybillCore

/// The mail server that relays our outgoing mail (WAYBILL_SMARTHOST), and how to talk to it.
///
/// Its `description` and its mirror (`dump`) leave the password out, so a smarthost can be
/// logged as it is.
public struct Smarthost: Sendable, Hashable, CustomStringConvertible, CustomReflectable {
    public enum Security: String, Sendable, Hashable {
        /// Plain connection, then STARTTLS (RFC 3207), required: a server that does not offer it
        /// gets neither credentials nor mail. Port 587 or 25.
        case starttls
        /// TLS from the first byte (RFC 8314 §3.3, port 465).
        case tls
        /// No TLS at all: only for loopback tests or an explicitly configured internal relay.
        case none
    }

    public var host: String
    public var port: Int
    public var security: Security
    public var username: String?
    public var password: String?
    /// Our name in EHLO/HELO.
    public var heloName: String
    /// The path of a PEM file of CA certificates to trust instead of the system's (tests, private CAs).
    public var trustRoots: String?
    /// Whether the certificate must name `host`; off only for relays known by address alone.
    public var verifyHostname: Bool = true
    /// For the TCP connection (and the TLS handshake of `.tls`).
    public var connectTimeout: Duration = .seconds(30)
    /// For each reply and each write (RFC 5321 §4.5.3.2 suggests 5 minutes for most commands).
    public var commandTimeout: Duration = .seconds(300)
    /// For the reply to the final `.` of the message: RFC 5321 §4.5.3.2.6 says 10 minutes, since the
    /// server may be scanning the message before it answers.
    public var dataTimeout: Duration = .seconds(600)

    public init(
        host: String, port: Int, security: Security, username: String? = nil, password: String? = nil,
        heloName: String
    ) {
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password
        self.heloName = heloName
    }

    /// `host:port` as in WAYBILL_SMARTHOST (`[::1]:25` for an IPv6 address; `host` alone takes
    /// the port of the security). Port 465 implies `.tls`, any other `.starttls`, unless
    /// `security` says otherwise.
    public init(
        parsing text: String, security: Security? = nil, username: String? = nil, password: String? = nil,
        heloName: String
    ) throws(WaybillError) {
        let text = text.trimmingWhitespace()
        var host = text
        var port: Int?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw WaybillError(.configError, "smarthost '\(text)': an IPv6 address in [ ] lacks its ]")
            }
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let number = Int(rest.dropFirst()) else {
                    throw WaybillError(.configError, "smarthost '\(text)' is not [address]:port")
                }
                port = number
            }
        } else if let colon = text.lastIndex(of: ":") {
            guard text.firstIndex(of: ":") == colon else {
                throw WaybillError(.configError, "smarthost '\(text)': write an IPv6 address as [address]:port")
            }
            host = String(text[..<colon])
            guard let number = Int(text[text.index(after: colon)...]) else {
                throw WaybillError(.configError, "smarthost '\(text)' has no port number after the ':'")
            }
            port = number
        }
        guard !host.isEmpty, host.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F && $0 != "/" }) else {
            throw WaybillError(.configError, "smarthost '\(text)' has no usable host name")
        }
        if let port, !(1...65_535).contains(port) {
            throw WaybillError(.configError, "smarthost '\(text)': port \(port) is not between 1 and 65535")
        }
        let resolvedSecurity = security ?? (port == 465 ? .tls : .starttls)
        let defaultPort =
            switch resolvedSecurity {
            case .tls: 465
            case .starttls: 587
            case .none: 25
            }
        guard !heloName.isEmpty, heloName.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
            throw WaybillError(.configError, "'\(heloName)' cannot be our name in EHLO (printable ASCII, no spaces)")
        }
        if (username == nil) != (password == nil) {
            throw WaybillError(.configError, "smarthost '\(text)': give both a user name and a password, or neither")
        }
        self.init(
            host: host, port: port ?? defaultPort, security: resolvedSecurity, username: username,
            password: password, heloName: heloName)
    }

    /// `smtp.example.com:587 (starttls, user alice)`: never the password.
    public var description: String {
        let address = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let user = username.map { ", user \($0)" } ?? ""
        return "\(address) (\(security.rawValue)\(user))"
    }

    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "host": host, "port": port, "security": security, "username": username as Any,
                "password": password == nil ? "nil" : "<redacted>", "heloName": heloName, "trustRoots": trustRoots as Any,
                "verifyHostname": verifyHostname, "connectTimeout": connectTimeout, "commandTimeout": commandTimeout,
                "dataTimeout": dataTimeout,
            ], displayStyle: .struct)
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        String(self.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
