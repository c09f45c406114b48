@testable import AtriumCore
import AtriumTesting
import Foundation
import Synchronization
import Testing

@Suite("The API's JSON encoder")
struct AtriumJSONTests {
    struct Keys: Encodable {
        struct Raw: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { return nil }
        }
        let keys: [String]
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Raw.self)
            for (index, key) in keys.enumerated() { try container.encode(index, forKey: Raw(stringValue: key)) }
        }
    }

    struct Nested: Encodable {
        var ownerID = UUID(uuidString: "6BA7B810-9DAD-11D1-80B4-00C04FD430C8")
        var createdAt = Date(timeIntervalSince1970: 1_800_000_000)
        var externalURLs = ["homePage": "https://example.com/a/b", "APIDocs": "x"]
        var children: [[String: Int]] = [["firstValue": 1, "secondValueID": 2]]
        var emptyList: [Int] = []
        var missingValue: String? = nil
    }

    /// The remembered conversion spells every key exactly as `.convertToSnakeCase` does —
    /// acronyms, digits, underscores, non-ASCII, dictionary keys — byte for byte.
    @Test func encodesExactlyAsFoundationsSnakeCaseStrategy() throws {
        let reference = JSONEncoder()
        reference.keyEncodingStrategy = .convertToSnakeCase
        reference.dateEncodingStrategy = .iso8601
        reference.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let keys = Keys(keys: [
            "firstName", "ownerID", "URLValue", "myURLProperty", "HTTPSURL", "a1B2c3", "_leading", "trailing_", "__double",
            "already_snake", "ALLCAPS", "x", "", "über", "camelCaseWithÜmlaut", "iOSVersion", "value2FA", "ID", "id", "lowerThenUPPER",
        ])
        for _ in 0..<2 {  // the first pass works the keys out, the second reads them back
            #expect(try AtriumJSON.encoder.encode(keys) == reference.encode(keys))
            #expect(try AtriumJSON.encoder.encode(Nested()) == reference.encode(Nested()))
        }
    }

    @Test func rememberedKeysStayWithinTheirBound() {
        let limit = SnakeCaseKey.known.limit
        for index in 0..<(limit + 100) { _ = SnakeCaseKey("dynamicKey\(index)") }
        #expect(SnakeCaseKey.known.countOnThisThread == limit)
        #expect(SnakeCaseKey("dynamicKeyNotRemembered").stringValue == "dynamic_key_not_remembered")
    }
}
