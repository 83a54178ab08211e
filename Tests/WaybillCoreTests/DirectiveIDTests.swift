import Foundation
import Testing
import WaybillCore

@Suite struct DirectiveIDTests {
    @Test func randomIDsAreTenCharactersAndParseBack() {
        for _ in 0..<500 {
            let id = DirectiveID.random()
            #expect(id.rawValue.count == 10)
            #expect(DirectiveID(id.rawValue) == id)
            #expect(DirectiveID(id.display) == id)
            #expect(DirectiveID(id.display.lowercased()) == id)
        }
    }

    @Test func everySingleCharacterChangeIsCaught() {
        let id = DirectiveID.random()
        let characters = Array(id.rawValue)
        for position in characters.indices {
            for replacement in "0123456789ABCDEFGHJKMNPQRSTVWXYZ" where replacement != characters[position] {
                var changed = characters
                changed[position] = replacement
                #expect(DirectiveID(String(changed)) == nil, "\(String(changed)) should fail its check character")
            }
        }
    }

    @Test func lookAlikesFoldAsCrockfordSays() throws {
        let id = try #require(DirectiveID("0000000000"))
        #expect(DirectiveID("OOOOO-OOOOO") == id)
        let ones = DirectiveID.random().rawValue.replacingOccurrences(of: "1", with: "I")
        #expect(DirectiveID(ones) != nil)
    }

    @Test func rejectsWrongLengthAndForeignCharacters() {
        #expect(DirectiveID("") == nil)
        #expect(DirectiveID("ABC") == nil)
        #expect(DirectiveID("UUUUUUUUUU") == nil)
        #expect(DirectiveID("ABCDE:FGHJK") == nil)
        #expect(DirectiveID(DirectiveID.random().rawValue + "0") == nil)
    }
}
