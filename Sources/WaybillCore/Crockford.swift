/// Crockford's base32: digits and upper-case letters without I, L, O and U, so that a code read
/// aloud or typed from paper survives the usual confusions. Every character is also in QR's
/// alphanumeric set, which keeps the sheet's QR small.
public enum Crockford {
    public static let alphabet: [UInt8] = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    /// The value of one character, folding the look-alikes Crockford defines (I, L → 1; O → 0)
    /// and lower case. Nil for anything else.
    public static func value(of character: UInt8) -> Int? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(character - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return value(of: character - 32)
        case UInt8(ascii: "O"): return 0
        case UInt8(ascii: "I"), UInt8(ascii: "L"): return 1
        case UInt8(ascii: "U"): return nil
        default:
            guard let index = alphabet.firstIndex(of: character) else { return nil }
            return index
        }
    }

    /// Encodes bytes, 5 bits a character, most significant first; a trailing partial group is
    /// padded with zero bits. 10 bytes give exactly 16 characters.
    public static func encode<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
        var out: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                bits -= 5
                out.append(alphabet[Int((buffer >> UInt32(bits)) & 31)])
            }
        }
        if bits > 0 {
            out.append(alphabet[Int((buffer << UInt32(5 - bits)) & 31)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Luhn mod N (N = 32) check character: catches every single-character error and most
    /// swaps of neighbours, the mistakes people make copying a code.
    public static func checkCharacter(for values: [Int]) -> UInt8 {
        var factor = 2
        var sum = 0
        for value in values.reversed() {
            var addend = factor * value
            factor = factor == 2 ? 1 : 2
            addend = addend / 32 + addend % 32
            sum += addend
        }
        let remainder = sum % 32
        return alphabet[(32 - remainder) % 32]
    }
}
