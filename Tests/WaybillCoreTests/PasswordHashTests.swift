import Foundation
import Testing
import WaybillCore

@Suite struct PasswordHashTests {
    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    /// RFC 7914 §11's PBKDF2-HMAC-SHA256 vectors (the second with its full 80,000 iterations).
    @Test func rfc7914Vectors() {
        let one = PasswordHash.pbkdf2SHA256(password: Array("passwd".utf8), salt: Array("salt".utf8), iterations: 1, length: 64)
        #expect(
            Self.hex(one)
                == "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
                + "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783")
        let many = PasswordHash.pbkdf2SHA256(password: Array("Password".utf8), salt: Array("NaCl".utf8), iterations: 80_000, length: 64)
        #expect(
            Self.hex(many)
                == "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56"
                + "a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d")
        let short = PasswordHash.pbkdf2SHA256(password: Array("password".utf8), salt: Array("salt".utf8), iterations: 4096, length: 32)
        #expect(Self.hex(short) == "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a")
    }

    @Test func makeEncodeParseVerify() throws {
        let hash = PasswordHash.make(password: "scanner secret", iterations: 1000)
        #expect(hash.encoded.hasPrefix("pbkdf2-sha256$1000$"))
        let parsed = try PasswordHash(parsing: hash.encoded)
        #expect(parsed == hash)
        #expect(parsed.verify("scanner secret"))
        #expect(!parsed.verify("scanner secreT"))
        #expect(!parsed.verify(""))
        // Salted: the same password never gives the same string twice.
        #expect(PasswordHash.make(password: "scanner secret", iterations: 1000) != hash)
        #expect(PasswordHash.make(password: "x").iterations == PasswordHash.defaultIterations)
    }

    @Test(arguments: [
        "", "plain", "pbkdf2-sha1$1000$c2FsdHNhbHQ=$AAAAAAAAAAAAAAAAAAAAAA==", "pbkdf2-sha256$0$c2FsdA==$AAAAAAAAAAAAAAAAAAAAAA==",
        "pbkdf2-sha256$1000$!!$AAAAAAAAAAAAAAAAAAAAAA==", "pbkdf2-sha256$1000$c2FsdA==$AAAA", "pbkdf2-sha256$1000$c2FsdA==",
    ])
    func malformedHashesAreConfigurationErrors(_ text: String) {
        #expect(throws: WaybillError.self) { try PasswordHash(parsing: text) }
    }

    @Test func constantTimeEqual() {
        #expect(PasswordHash.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        #expect(!PasswordHash.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        #expect(!PasswordHash.constantTimeEqual([1, 2, 3], [1, 2]))
    }
}
