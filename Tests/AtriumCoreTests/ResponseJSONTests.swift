@testable import AtriumCore
import Foundation
import Testing

/// `ResponseJSON` must write exactly the bytes `AtriumJSON.encoder` writes: every value
/// here is encoded by both and compared byte for byte.
@Suite("The response JSON writer")
struct ResponseJSONTests {
    /// Both of `ResponseJSON`'s paths, the direct writer and the node tree it falls back
    /// to, against Foundation.
    func expectSame<Value: Encodable>(_ value: Value, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let foundation = String(decoding: try AtriumJSON.encoder.encode(value), as: UTF8.self)
        #expect(String(decoding: try ResponseJSON.encode(value), as: UTF8.self) == foundation, sourceLocation: sourceLocation)
        #expect(String(decoding: try ResponseJSON.encodeAsNodes(value), as: UTF8.self) == foundation, sourceLocation: sourceLocation)
    }

    /// Whether the direct writer wrote `value` itself (rather than leaving it to the nodes).
    func writtenDirectly<Value: Encodable>(_ value: Value) throws -> Bool {
        let writer = JSONDirectWriter()
        _ = try writer.write(value)
        return !writer.unsupported
    }

    struct Record: Encodable {
        var id = UUID()
        var ownerId: UUID? = UUID()
        var firstName = "Ada"
        var lastName = "Lovelace"
        var email: String? = nil
        var tags = ["a/b", "c\"d"]
        var createdAt = Date(timeIntervalSince1970: 1_700_000_000.75)
        var count = 42
        var ratio = 0.1
        var active = true
        var metadata: [String: String] = ["camelKey": "kept as is", "Upper": "x"]
    }

    @Test func recordsAndPages() throws {
        #expect(try writtenDirectly(Page(data: [Record()], nextCursor: "abc")))
        try expectSame(Record())
        try expectSame(Page(data: [Record(), Record(email: "e@example.com")], nextCursor: "abc"))
        try expectSame(Page<Record>(data: []))
        try expectSame([[1, 2], [], [3]])
        try expectSame(["b": [Record()], "a": []])
    }

    /// The writer remembers an object's layout per key type and checks each object
    /// against it: rows whose optional fields come and go, of one key type, each keep
    /// their own keys.
    @Test func rowsOfOneTypeWithDifferentKeys() throws {
        let rows = [
            Record(email: "e@example.com"), Record(), Record(ownerId: nil), Record(ownerId: nil, email: "f@example.com"), Record(), Record(),
        ]
        try expectSame(Page(data: rows, nextCursor: nil))
        try expectSame([Repeated(), Repeated()])
    }

    /// Sorting is by UTF-8 bytes: `_` before letters, digits before both, capitals first.
    @Test func keysAreSortedAndConvertedAsFoundationDoes() throws {
        try expectSame(AtriumJSONTests.Keys(keys: [
            "createdAt", "createdBy", "created", "a10", "a9", "a_b", "aB", "ab", "Zed", "zed", "_x", "x_", "über", "ünder", "ID", "id", "",
        ]))
        try expectSame(["b": 1, "B": 2, "a_b": 3, "ab": 4, "a10": 5, "a9": 6, "é": 7, "e": 8])
    }

    @Test func stringsEscapeOnlyWhatFoundationEscapes() throws {
        let controls = String((0..<0x20).map { Character(Unicode.Scalar($0)!) })
        try expectSame([controls, "\"quoted\" \\ back/slash", "emoji 👩🏽‍💻 and \u{2028}\u{2029}\u{7F}", "", "é\u{301}", "\u{FEFF}bom"])
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let scalars = (0..<Int.random(in: 0...12, using: &generator)).compactMap { _ in
                Unicode.Scalar(UInt32.random(in: 0...0x2FFF, using: &generator))
            }
            try expectSame([String(String.UnicodeScalarView(scalars))])
        }
    }

    @Test func timesAreWholeSecondsOfUTC() throws {
        let instants: [TimeInterval] = [
            0, -0.5, -1, 1.999, 951_782_400, 951_868_799.9, 4_107_542_400, -62_135_596_800, 253_402_300_799.5, -2_208_988_800.25,
            1_709_164_800, 1_000_000_000_000_000, -1_000_000_000_000, -12_212_553_600, -12_212_553_601,
        ]
        for instant in instants { try expectSame(["at": Date(timeIntervalSince1970: instant)]) }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            try expectSame([Date(timeIntervalSince1970: Double.random(in: -62_135_596_800...253_402_300_799, using: &generator))])
        }
    }

    @Test func numbersAndSpecialValues() throws {
        try expectSame([Int.min, Int.max, 0, -1])
        try expectSame([UInt64.max])
        try expectSame([Int8.min, 0, Int8.max])
        try expectSame([0.1, 1.0, -0.0, 1e300, 123_456_789.125, Double.leastNonzeroMagnitude, 100])
        try expectSame([Float(0.1), 3])
        try expectSame([Decimal(string: "12.340")!, Decimal(7)])
        try expectSame([Data([0, 1, 2, 250, 255]), Data()])
        try expectSame([URL(string: "https://example.com/a?b=c#d")!])
        try expectSame([true, false])
        try expectSame([String?.none, "x"])
        #expect(throws: (any Error).self) { try ResponseJSON.encode([Double.nan]) }
    }

    @Test func jsonValuesAndHandWrittenEncodables() throws {
        try expectSame(JSONValue.object(["camelCase": .array([.string("x"), .number(1.5), .bool(true), .null]), "n": .number(3)]))
        #expect(try !writtenDirectly(Unusual()))
        try expectSame(Unusual())
        #expect(try writtenDirectly(Repeated()))
        try expectSame(Repeated())
        try expectSame(["nothing": Empty()])
        #expect(throws: EncodingError.self) { try AtriumJSON.encoder.encode(Empty()) }
        #expect(throws: EncodingError.self) { try ResponseJSON.encode(Empty()) }
        #expect(try !writtenDirectly(ViaSuper()))
        try expectSame(ViaSuper())
    }

    /// A key set twice keeps the last value; a second request for the keyed container
    /// adds to the same object; a nested container fills in after it was placed.
    struct Unusual: Encodable {
        enum Keys: String, CodingKey { case repeated, nestedList, nestedObject, laterKey }
        func encode(to encoder: any Encoder) throws {
            var first = encoder.container(keyedBy: Keys.self)
            try first.encode(1, forKey: .repeated)
            var list = first.nestedUnkeyedContainer(forKey: .nestedList)
            var object = first.nestedContainer(keyedBy: Keys.self, forKey: .nestedObject)
            try first.encode(2, forKey: .repeated)
            var second = encoder.container(keyedBy: Keys.self)
            try second.encode("later", forKey: .laterKey)
            try list.encode(1)
            try list.encodeNil()
            var inner = list.nestedContainer(keyedBy: Keys.self)
            try inner.encode(true, forKey: .repeated)
            try object.encode(Date(timeIntervalSince1970: 5), forKey: .laterKey)
        }
    }

    /// The direct path's own handling of a key given twice and of a second request for
    /// the keyed container.
    struct Repeated: Encodable {
        enum Keys: String, CodingKey { case repeated, laterKey, aFirst }
        func encode(to encoder: any Encoder) throws {
            var first = encoder.container(keyedBy: Keys.self)
            try first.encode(1, forKey: .repeated)
            try first.encode("x", forKey: .aFirst)
            try first.encode(2, forKey: .repeated)
            var second = encoder.container(keyedBy: Keys.self)
            try second.encode(["later"], forKey: .laterKey)
            try second.encode(3, forKey: .repeated)
        }
    }

    struct Empty: Encodable {
        func encode(to encoder: any Encoder) throws {}
    }

    struct ViaSuper: Encodable {
        enum Keys: String, CodingKey { case base, ownValue }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode("mine", forKey: .ownValue)
            try Record(id: UUID(uuid: (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)), ownerId: nil, createdAt: Date(timeIntervalSince1970: 0))
                .encode(to: container.superEncoder(forKey: .base))
            var single = container.superEncoder().singleValueContainer()
            try single.encode(7)
        }
    }
}
