public import Foundation
import Crypto

/// Signs webhook bodies so a receiver holding the shared secret can tell a request came from this
/// Waybill and was not altered or replayed later.
///
/// The header has Stripe's shape, which receivers already know how to check:
///
///     X-Waybill-Signature: t=1767225600,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd
///
/// `t` is the Unix time of the attempt in seconds and `v1` the lowercase hex
/// HMAC-SHA256(secret, "<t>." + body), over the exact body bytes on the wire (the whole
/// multipart/form-data body). The timestamp is inside the MAC, so a captured request is only good
/// for the receiver's tolerance window; every retry is signed afresh with its own `t`.
/// A receiver should accept any `v1` that matches (there may be several while a secret is rotated)
/// and ignore keys it does not know. See docs/webhooks.md.
public struct WebhookSigner: Sendable {
    /// The request header that carries the signature.
    public static let headerName = "X-Waybill-Signature"

    private let key: SymmetricKey

    public init(secret: [UInt8]) {
        key = SymmetricKey(data: secret)
    }

    /// Starts a signature for a body sent at `timestamp`; feed it the body in order, then ask for the header.
    /// This is how the transport signs a document it streams from disk without loading it.
    public func begin(timestamp: Int) -> Signing {
        Signing(key: key, timestamp: timestamp)
    }

    /// The header value for a body held in memory: `t=<timestamp>,v1=<hex>`.
    public func header(timestamp: Int, body: some DataProtocol) -> String {
        var signing = begin(timestamp: timestamp)
        signing.update(body)
        return signing.header()
    }

    /// A running HMAC over `"<t>."` and the body bytes given so far.
    public struct Signing: Sendable {
        public let timestamp: Int
        private var mac: HMAC<SHA256>

        init(key: SymmetricKey, timestamp: Int) {
            self.timestamp = timestamp
            mac = HMAC<SHA256>(key: key)
            mac.update(data: Array("\(timestamp).".utf8))
        }

        /// Adds the next bytes of the body.
        public mutating func update(_ bytes: some DataProtocol) {
            mac.update(data: bytes)
        }

        /// `t=<timestamp>,v1=<lowercase hex HMAC-SHA256>` for the bytes given so far.
        public func header() -> String {
            "t=\(timestamp),v1=" + Self.hex(mac.finalize())
        }

        static func hex(_ bytes: some Sequence<UInt8>) -> String {
            let digits = Array("0123456789abcdef".utf8)
            var text: [UInt8] = []
            for byte in bytes {
                text.append(digits[Int(byte >> 4)])
                text.append(digits[Int(byte & 0x0F)])
            }
            return String(decoding: text, as: UTF8.self)
        }
    }

    /// Whether `header` is a valid signature of `body` under `secret`, made within `tolerance` of
    /// `now` (either side: a clock running ahead is as suspect as a replay).
    ///
    /// What a receiver does, written once in Swift (docs/webhooks.md has it in Python). Accepts the
    /// header if any `v1` matches; the comparison is constant-time (swift-crypto's
    /// `MessageAuthenticationCode ==`), so response timing reveals nothing about the expected MAC.
    public static func verify(
        header: String, body: some DataProtocol, secret: [UInt8], now: Date, tolerance: Duration = .seconds(300)
    ) -> Bool {
        var timestamp: Int?
        var candidates: [[UInt8]] = []
        for item in header.split(separator: ",") {
            let pair = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2 else { continue }
            switch pair[0] {
            case "t":
                // Digits only: `Int("+5")` would accept a sign, and a second `t` is a malformed header.
                guard timestamp == nil, !pair[1].isEmpty, pair[1].utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                    let value = Int(pair[1])
                else { return false }
                timestamp = value
            case "v1":
                if let bytes = unhex(pair[1]), bytes.count == SHA256.byteCount { candidates.append(bytes) }
            default:
                continue  // Other schemes (v0, future versions) are not ours to judge.
            }
        }
        guard let timestamp, !candidates.isEmpty else { return false }
        let (seconds, attoseconds) = tolerance.components
        let allowed = Double(seconds) + Double(attoseconds) / 1e18
        guard abs(now.timeIntervalSince1970 - Double(timestamp)) <= allowed else { return false }

        var signing = WebhookSigner(secret: secret).begin(timestamp: timestamp)
        signing.update(body)
        let expected = signing.macValue
        var valid = false
        for candidate in candidates where expected == candidate { valid = true }
        return valid
    }

    private static func unhex(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case 0x30...0x39: digit - 0x30
        case 0x61...0x66: digit - 0x61 + 10
        case 0x41...0x46: digit - 0x41 + 10
        default: nil
        }
    }
}

extension WebhookSigner.Signing {
    /// The MAC itself, for the constant-time comparison in `verify`.
    fileprivate var macValue: HashedAuthenticationCode<SHA256> { mac.finalize() }
}
