@testable import AtriumCore
import Foundation
import Testing

@Suite("Decimal strings")
struct DecimalStringTests {
    /// Foundation's parser, which the fast path must agree with.
    func foundation(_ text: String) -> Decimal? { Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")) }

    @Test func plainNotationParsesExactly() throws {
        for text in ["0", "-0", "1", "-1", "0.1", "1234.50", "-12.50", "007.0700", "0.0000000001", "18446744073709551615", "9999999999999999999.5"] {
            let parsed = try #require(DecimalString(text), "\(text)")
            #expect(parsed.text == text)
            #expect(parsed.value == foundation(text), "\(text)")
        }
        #expect(DecimalString("0.1")!.value + DecimalString("0.2")!.value == DecimalString("0.3")!.value)
        #expect(DecimalString("-0")!.value.sign == .plus)
    }

    @Test func thirtyEightSignificantDigitsAndNoMore() throws {
        let longest = "1234567890123456789.0123456789012345678"
        #expect(try #require(DecimalString(longest)).value == foundation(longest))
        #expect(try #require(DecimalString("0.000" + String(repeating: "9", count: 38))).value == foundation("0.000" + String(repeating: "9", count: 38)))
        #expect(DecimalString(String(repeating: "9", count: 39)) == nil)
        #expect(DecimalString("1" + String(repeating: "0", count: 37) + ".5") == nil)
    }

    @Test func anythingButPlainNotationIsRefused() {
        for text in ["", "-", ".", "1.", ".5", "+1", "1e5", "1E-2", "1,5", " 1", "1 ", "--1", "1.2.3", "0x10", "NaN", "Infinity", "١٢"] {
            #expect(DecimalString(text) == nil, "\(text)")
        }
    }

    /// The fast path (up to 19 significant digits) against Foundation's parser on many
    /// random texts, scales and signs.
    @Test func fastPathAgreesWithFoundation() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5_000 {
            let digits = Int.random(in: 1...19, using: &generator)
            var text = String((0..<digits).map { _ in Character(String(Int.random(in: 0...9, using: &generator))) })
            let point = Int.random(in: 0...digits, using: &generator)
            if point > 0 && point < digits { text.insert(".", at: text.index(text.startIndex, offsetBy: point)) }
            if Bool.random(using: &generator) { text = "-" + text }
            let parsed = try #require(DecimalString(text), "\(text)")
            #expect(parsed.value == foundation(text), "\(text)")
        }
    }

    @Test func roundingIsHalfEvenAndFixesTheScale() {
        #expect(DecimalString(Decimal(string: "2.345")!, scale: 2).text == "2.34")
        #expect(DecimalString(Decimal(string: "2.355")!, scale: 2).text == "2.36")
        #expect(DecimalString(Decimal(string: "-0.001")!, scale: 2).text == "0.00")
        #expect(DecimalString(Decimal(7), scale: 3).text == "7.000")
    }

    @Test func jsonNumbersAreRefused() throws {
        struct Body: Decodable { var amount: DecimalString }
        #expect(try JSONDecoder().decode(Body.self, from: Data(#"{"amount":"12.50"}"#.utf8)).amount.text == "12.50")
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Body.self, from: Data(#"{"amount":12.5}"#.utf8)) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Body.self, from: Data(#"{"amount":"1e3"}"#.utf8)) }
    }
}
