/// A directive's id: 9 random Crockford base32 characters (45 bits) and a Luhn mod 32 check
/// character. Short enough to read over the phone, printed as two groups of five (`K7QM2-XR9PC`).
public struct DirectiveID: Hashable, Sendable, Comparable, Codable, CustomStringConvertible {
    public static let length = 10

    /// The canonical form: 10 upper-case characters, no separator.
    public let rawValue: String

    /// Parses what a person typed: case, hyphens, spaces and Crockford's look-alikes are folded;
    /// the check character must match.
    public init?(_ text: some StringProtocol) {
        var values: [Int] = []
        for byte in text.utf8 where byte != UInt8(ascii: "-") && byte != UInt8(ascii: " ") {
            guard let value = Crockford.value(of: byte) else { return nil }
            values.append(value)
        }
        guard values.count == Self.length else { return nil }
        let body = Array(values.dropLast())
        guard Crockford.checkCharacter(for: body) == Crockford.alphabet[values[values.count - 1]] else { return nil }
        self.rawValue = String(decoding: values.map { Crockford.alphabet[$0] }, as: UTF8.self)
    }

    /// A new random id.
    public static func random<G: RandomNumberGenerator>(using generator: inout G) -> DirectiveID {
        let body = (0..<(length - 1)).map { _ in Int.random(in: 0..<32, using: &generator) }
        let characters = body.map { Crockford.alphabet[$0] } + [Crockford.checkCharacter(for: body)]
        return DirectiveID(unchecked: String(decoding: characters, as: UTF8.self))
    }

    public static func random() -> DirectiveID {
        var generator = SystemRandomNumberGenerator()
        return random(using: &generator)
    }

    private init(unchecked rawValue: String) { self.rawValue = rawValue }

    /// `K7QM2-XR9PC`: the form printed on sheets and read aloud.
    public var display: String {
        "\(rawValue.prefix(5))-\(rawValue.dropFirst(5))"
    }

    public var description: String { rawValue }

    public static func < (lhs: DirectiveID, rhs: DirectiveID) -> Bool { lhs.rawValue < rhs.rawValue }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let id = DirectiveID(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad directive id"))
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
