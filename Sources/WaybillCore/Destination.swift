import Foundation

/// Where a directive sends its documents, written as a URI:
///
/// - `mailto:alice@example.com`: relayed through the configured smarthost;
/// - `folder:<root>/<sub/path>`: a sub-folder of a root the administrator configured, never a path a user typed;
/// - `https://…` or `http://…`: a webhook, only under a prefix on the administrator's allow-list.
public enum Destination: Hashable, Sendable, CustomStringConvertible {
    case email(String)
    case folder(root: String, path: [String])
    case webhook(String)

    /// Parses a destination URI lexically. Policy (known roots, allow-list) is `DestinationPolicy`'s job.
    public init(uri: String) throws(WaybillError) {
        let text = uri.trimmingSpaces()
        if let address = text.dropPrefix("mailto:") {
            guard Destination.isValidEmail(address) else {
                throw WaybillError(.invalidEmail, "'\(address)' is not a valid email address (expected name@example.com)")
            }
            self = .email(address)
        } else if let rest = text.dropPrefix("folder:") {
            var parts = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            if rest.hasPrefix("/") {
                throw WaybillError(.pathEscape, "folder destination '\(text)' is an absolute path; use folder:<root>/<sub/path> with a configured root")
            }
            let root = parts.removeFirst()
            guard !root.isEmpty, root.utf8.allSatisfy(Destination.isRootNameByte) else {
                throw WaybillError(.invalidDestination, "folder destination '\(text)' must start with a root name such as folder:archive/…")
            }
            if parts.last == "" { parts.removeLast() }
            for part in parts {
                if part == "." || part == ".." {
                    throw WaybillError(.pathEscape, "folder destination '\(text)' contains '\(part)'; paths may not leave their root")
                }
                if part.isEmpty || part.unicodeScalars.contains(where: { $0.value < 0x20 || $0 == "\\" || $0.value == 0x7F }) {
                    throw WaybillError(.invalidDestination, "folder destination '\(text)' has an empty or invalid path segment")
                }
            }
            self = .folder(root: root, path: parts)
        } else if text.lowercased().hasPrefix("https://") || text.lowercased().hasPrefix("http://") {
            guard Destination.isPlausibleURL(text) else {
                throw WaybillError(.invalidDestination, "'\(text)' is not a valid webhook URL")
            }
            self = .webhook(text)
        } else {
            throw WaybillError(
                .invalidDestination,
                "unknown destination '\(text)': use mailto:NAME@DOMAIN, folder:ROOT/PATH or an https:// webhook URL"
            )
        }
    }

    public var uri: String {
        switch self {
        case .email(let address): "mailto:\(address)"
        case .folder(let root, let path): "folder:" + ([root] + path).joined(separator: "/")
        case .webhook(let url): url
        }
    }

    public var description: String { uri }

    /// A short line for people: "Email  alice@example.com".
    public var label: String {
        switch self {
        case .email(let address): "Email  \(address)"
        case .folder(let root, let path): "Folder  " + ([root] + path).joined(separator: "/")
        case .webhook(let url): "Webhook  \(url)"
        }
    }

    static func isRootNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
            true
        default: false
        }
    }

    /// A deliberately plain check (RFC 5321 mailbox, dot-atom local part, no quoted strings):
    /// addresses on routing sheets are typed by people, and anything odd is more likely a typo.
    public static func isValidEmail(_ address: String) -> Bool {
        let parts = address.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, address.utf8.count <= 254 else { return false }
        let local = parts[0]
        let domain = parts[1]
        guard !local.isEmpty, local.utf8.count <= 64, !local.hasPrefix("."), !local.hasSuffix("."), !local.contains("..")
        else { return false }
        let localAllowed = Set("!#$%&'*+-/=?^_`{|}~.".utf8)
        guard local.utf8.allSatisfy({ isAlphanumeric($0) || localAllowed.contains($0) }) else { return false }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        guard !labels.isEmpty else { return false }
        for label in labels {
            guard !label.isEmpty, label.utf8.count <= 63, !label.hasPrefix("-"), !label.hasSuffix("-"),
                label.utf8.allSatisfy({ isAlphanumeric($0) || $0 == UInt8(ascii: "-") })
            else { return false }
        }
        return true
    }

    static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    /// A URL we can compare with an allow-list prefix as text: no user info, no control characters or
    /// spaces, no backslashes, and no `.` or `..` path segment (also not percent-encoded), which
    /// clients and servers would resolve to a path the allow-list never saw.
    static func isPlausibleURL(_ url: String) -> Bool {
        guard let schemeEnd = url.range(of: "://") else { return false }
        let rest = url[schemeEnd.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.isEmpty, !authority.contains("@"), !url.contains("\\"),
            !url.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F })
        else { return false }
        let path = rest.dropFirst(authority.count).prefix { $0 != "?" && $0 != "#" }
        let decoded = path.lowercased().replacingOccurrences(of: "%2e", with: ".")
            .replacingOccurrences(of: "%2f", with: "/").replacingOccurrences(of: "%5c", with: "/")
        return !decoded.split(separator: "/", omittingEmptySubsequences: false).contains { $0 == "." || $0 == ".." }
    }
}

/// What the administrator allows: named folder roots and webhook URL prefixes.
public struct DestinationPolicy: Sendable {
    /// Root name → absolute folder path.
    public var folderRoots: [String: String]
    /// URL prefixes a webhook must start with (`WAYBILL_ALLOW_WEBHOOK`).
    public var webhookPrefixes: [String]

    public init(folderRoots: [String: String], webhookPrefixes: [String]) {
        self.folderRoots = folderRoots
        self.webhookPrefixes = webhookPrefixes
    }

    /// Parses and checks a destination against the policy (lexically; the folder transport
    /// also checks the real file system for symlinks out of the root).
    public func check(_ uri: String) throws(WaybillError) -> Destination {
        let destination = try Destination(uri: uri)
        try check(destination)
        return destination
    }

    public func check(_ destination: Destination) throws(WaybillError) {
        switch destination {
        case .email:
            return
        case .folder(let root, _):
            guard folderRoots[root] != nil else {
                let known = folderRoots.keys.sorted().joined(separator: ", ")
                throw WaybillError(.unknownFolderRoot, "unknown folder root '\(root)'; configured roots: \(known.isEmpty ? "none" : known)")
            }
        case .webhook(let url):
            guard webhookPrefixes.contains(where: { DestinationPolicy.url(url, isUnder: $0) }) else {
                throw WaybillError(
                    .webhookNotAllowed,
                    "webhook '\(url)' is not on the allow-list (WAYBILL_ALLOW_WEBHOOK); ask an administrator to allow its URL prefix"
                )
            }
        }
    }

    /// A prefix matches only at a boundary, so `https://hooks.example.com` does not admit
    /// `https://hooks.example.com.evil.org/`. Scheme and host compare case-insensitively.
    static func url(_ url: String, isUnder prefix: String) -> Bool {
        // Bytes, not Characters: String comparison treats canonically equivalent forms as equal.
        let prefix = Array(prefix.trimmingSpaces().utf8)
        let url = Array(url.utf8)
        guard !prefix.isEmpty, url.count >= prefix.count else { return false }
        let authorityEnd = DestinationPolicy.authorityEnd(of: prefix)
        for index in prefix.indices {
            let (a, b) = (url[index], prefix[index])
            let same = index < authorityEnd ? lowercase(a) == lowercase(b) : a == b
            guard same else { return false }
        }
        if prefix.last == UInt8(ascii: "/") || url.count == prefix.count { return true }
        let next = url[prefix.count]
        return next == UInt8(ascii: "/") || next == UInt8(ascii: "?") || next == UInt8(ascii: "#")
    }

    private static func lowercase(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 32 : byte
    }

    /// The index just past `scheme://authority`.
    private static func authorityEnd(of url: [UInt8]) -> Int {
        let separator = Array("://".utf8)
        guard let start = (0...max(0, url.count - separator.count)).first(where: { url[$0..<min(url.count, $0 + 3)].elementsEqual(separator) })
        else { return 0 }
        var end = start + separator.count
        while end < url.count, ![UInt8(ascii: "/"), UInt8(ascii: "?"), UInt8(ascii: "#")].contains(url[end]) { end += 1 }
        return end
    }
}

extension StringProtocol {
    func dropPrefix(_ prefix: String) -> String? {
        hasPrefix(prefix) ? String(dropFirst(prefix.count)) : nil
    }

    public func trimmingSpaces() -> String {
        var scalars = Substring(self).unicodeScalars[...]
        while let first = scalars.first, first.properties.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.properties.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
