@testable import AtriumCore
import Foundation
import Testing

/// The byte-level replacements of Foundation calls on the request path give what the
/// calls they replace gave.
@Suite("Request-path text helpers")
struct RequestPathTextTests {
    @Test func lowercasedIDsMatchFoundation() {
        for _ in 0..<1_000 {
            let id = UUID()
            #expect(id.lowercasedString == id.uuidString.lowercased())
        }
        let edge = UUID(uuid: (0, 0xFF, 0x0F, 0xF0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0xA, 0xB, 0xC))
        #expect(edge.lowercasedString == "00ff0ff0-0102-0304-0506-0708090a0b0c")
    }

    /// `UUID.parsing` accepts exactly the 8-4-4-4-12 hex form, in either case, and reads
    /// from it the id Foundation's `UUID(uuidString:)` reads. (Foundation's `sscanf` also
    /// takes some malformed text, a space for a leading digit among them; this does not.)
    @Test func parsedIDsMatchFoundation() {
        var texts = ["", "00ff0ff0-0102-0304-0506-0708090a0b0c", "00FF0FF0-0102-0304-0506-0708090A0B0C", "00ff0ff0-0102-0304-0506-0708090a0b0",
            "00ff0ff0-0102-0304-0506-0708090a0b0c0", "00ff0ff001020-304-0506-0708090a0b0c", "00ff0ff0-0102-0304-0506+0708090a0b0c",
            "g0ff0ff0-0102-0304-0506-0708090a0b0c", "00ff0ff0-0102-0304-0506-0708090a0b0é", "{00ff0ff0-0102-0304-0506-0708090a0b0c}",
            " 0ff0ff0-0102-0304-0506-0708090a0b0c", "00ff0ff0 0102 0304 0506 0708090a0b0c"]
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("0123456789abcdefABCDEF-g ")
        for _ in 0..<2_000 {
            let id = UUID().uuidString
            var mutated = Array(id)
            mutated[Int.random(in: 0..<mutated.count, using: &generator)] = alphabet[Int.random(in: 0..<alphabet.count, using: &generator)]
            texts += [id, id.lowercased(), String(mutated)]
        }
        let canonical = /[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/
        var accepted = 0
        for text in texts {
            let parsed = UUID.parsing(text)
            #expect((parsed != nil) == (text.wholeMatch(of: canonical) != nil), "\(text)")
            if let parsed {
                #expect(parsed == UUID(uuidString: text), "\(text)")
                accepted += 1
            }
        }
        #expect(accepted > 4_000)
    }

    /// Request ids: version 4, RFC 9562 variant, all different, and written as Foundation
    /// reads them back.
    @Test func randomIDsAreVersionFourAndDistinct() {
        var seen = Set<UUID>()
        for _ in 0..<1_000 {
            let id = UUID.random()
            let text = id.lowercasedString
            #expect(Array(text.utf8)[14] == UInt8(ascii: "4"))
            #expect("89ab".utf8.contains(Array(text.utf8)[19]))
            #expect(UUID(uuidString: text) == id)
            seen.insert(id)
        }
        #expect(seen.count == 1_000)
    }

    @Test func base64URLMatchesTheAlphabetSwap() {
        var generator = SystemRandomNumberGenerator()
        for length in 0..<64 {
            let data = Data((0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) })
            let expected = data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
            #expect(Base64URL.encode(data) == expected)
            #expect(Base64URL.decode(Base64URL.encode(data)) == data)
        }
    }

    @Test func bearerTokensAreReadLikeBefore() {
        #expect(TokenAuthenticator.bearerToken("Bearer abc.def") == "abc.def")
        #expect(TokenAuthenticator.bearerToken("bEaReR   abc \t") == "abc")
        #expect(TokenAuthenticator.bearerToken("Bearer ") == "")
        #expect(TokenAuthenticator.bearerToken("Bearer") == nil)
        #expect(TokenAuthenticator.bearerToken("Basic abc") == nil)
        #expect(TokenAuthenticator.bearerToken("Bearer\tabc") == nil)
        #expect(TokenAuthenticator.bearerToken("Bearer\0abc") == nil)
        #expect(TokenAuthenticator.bearerToken("Bearerxabc") == nil)
        #expect(TokenAuthenticator.bearerToken("Bearer atr_0123") == "atr_0123")
    }
}
