import Foundation
import Testing
import WaybillCore

@Suite struct SheetTokenTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func keys() -> SigningKeys {
        var keys = SigningKeys(keys: [])
        keys.rotate(now: now)
        return keys
    }

    @Test func signedTokensVerifyAndUseOnlyQRAlphanumerics() throws {
        let keys = keys()
        let id = DirectiveID.random()
        let token = try keys.sign(id)
        let text = token.description
        #expect(text.hasPrefix("WB1:K1:\(id.rawValue):"))
        #expect(text.count == 34)
        #expect(token.mac.count == 16)  // 80 bits
        let qrAlphanumeric = Set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
        #expect(text.allSatisfy { qrAlphanumeric.contains($0) })
        #expect(keys.verify(text) == .valid(id))
    }

    @Test func anySingleCharacterChangeNeverVerifies() throws {
        let keys = keys()
        let text = try keys.sign(DirectiveID.random()).description
        let characters = Array(text)
        let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ:")
        for position in characters.indices {
            for replacement in alphabet where replacement != characters[position] {
                var changed = characters
                changed[position] = replacement
                let result = keys.verify(String(changed))
                if case .valid = result {
                    Issue.record("tampered token \(String(changed)) verified")
                }
            }
        }
    }

    @Test func wrongKeyUnknownKeyAndGarbage() throws {
        let id = DirectiveID.random()
        let text = try keys().sign(id).description
        // Same key id, different secret: a forgery.
        #expect(keys().verify(text) == .invalidSignature(id))
        let renamed = text.replacingOccurrences(of: ":K1:", with: ":K9:")
        #expect(keys().verify(renamed) == .unknownKey("K9"))
        #expect(keys().verify("") == .malformed)
        #expect(keys().verify("WB1:K1:short:ABC") == .malformed)
        #expect(keys().verify("WB2" + text.dropFirst(3)) == .malformed)
        #expect(keys().verify(text + "A") == .malformed)
        #expect(keys().verify(text.lowercased()) == .malformed)
    }

    @Test func rotationKeepsOldSheetsUntilTheirKeyIsRetired() throws {
        var keys = keys()
        let id = DirectiveID.random()
        let old = try keys.sign(id).description
        let second = keys.rotate(now: now)
        #expect(second.id == "K2")
        let new = try keys.sign(id).description
        #expect(new.contains(":K2:"))
        #expect(keys.verify(old) == .valid(id))
        #expect(keys.verify(new) == .valid(id))
        try keys.retire("K1", now: now)
        #expect(keys.verify(old) == .unknownKey("K1"))
        #expect(keys.verify(new) == .valid(id))
        #expect(throws: WaybillError.self) { try keys.retire("K2", now: now) }  // the last active key
        #expect(throws: WaybillError.self) { try keys.retire("K7", now: now) }
        #expect(throws: WaybillError.self) { try keys.retire("K1", now: now) }  // already retired
    }

    @Test func keysSurviveJSONRoundTrip() throws {
        var keys = keys()
        keys.rotate(now: now)
        try keys.retire("K1", now: now)
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let back = try decoder.decode(SigningKeys.self, from: encoder.encode(keys))
        #expect(back == keys)
        #expect(back.active?.id == "K2")
    }
}
