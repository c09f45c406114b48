public import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The JSON conventions of the whole API: snake_case keys, RFC 3339 UTC timestamps.
public enum AtriumJSON {
    public static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .custom { path in SnakeCaseKey(path.last?.stringValue ?? "") }
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// What a time the decoder refuses is told (a real RFC 3339 time, years 1 to 9999).
    public static let timeProblem = "must be an RFC 3339 time (2024-05-01T12:30:00Z) in years 1 to 9999"

    public static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = InputDomain.parseTimestamp(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: timeProblem)
            }
            return date
        }
        return decoder
    }
}

/// Ids are written in lowercase everywhere the API speaks (JSON, CLI, logs), as RFC 9562
/// recommends and as PostgreSQL prints them; Foundation's `UUID` encodes uppercase. These
/// overloads are more specific than the generic `encode`, so every synthesized `Encodable`
/// in a module that imports the kernel picks them.
extension KeyedEncodingContainer {
    public mutating func encode(_ value: UUID, forKey key: Key) throws {
        try encode(value.lowercasedString, forKey: key)
    }

    public mutating func encodeIfPresent(_ value: UUID?, forKey key: Key) throws {
        try encodeIfPresent(value?.lowercasedString, forKey: key)
    }
}

/// Foundation's `.convertToSnakeCase` of a key, worked out once per key. The strategy
/// itself scans every key of every value it encodes against Unicode character sets: in
/// a profile of a 20-row list that was 6% of the server's CPU per request. The spelling
/// is Foundation's own (asked of it on a key's first use), so output cannot differ; the
/// memory is bounded, as dictionary keys pass through here too.
struct SnakeCaseKey: CodingKey {
    /// Per thread (`ThreadLocalMemo`): a page of 20 rows converts every key 20 times.
    static let known = ThreadLocalMemo<String, String>(limit: 4_096)

    var stringValue: String
    var intValue: Int? { nil }

    init(_ key: String) {
        stringValue = Self.converted(key)
    }

    init?(stringValue: String) {
        self.stringValue = stringValue
    }

    init?(intValue: Int) {
        return nil
    }

    static func converted(_ key: String) -> String {
        // Keys already in snake case (most, written so in CodingKeys) convert to themselves.
        if key.utf8.allSatisfy({ $0 < 0x80 && !(0x41...0x5A).contains($0) }) { return key }
        return known.value(for: key) { foundation(key) }
    }

    /// What `.convertToSnakeCase` makes of `key`: an object with that one key, encoded.
    static func foundation(_ key: String) -> String {
        struct Raw: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { return nil }
        }
        struct One: Encodable {
            let key: String
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: Raw.self)
                try container.encodeNil(forKey: Raw(stringValue: key))
            }
        }
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        guard let data = try? encoder.encode(One(key: key)),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let name = object.keys.first
        else { return key }
        return name
    }
}


extension UUID {
    /// A random (version 4) id from the system's generator (`getrandom`). Foundation's
    /// `UUID()` on Linux opens and reads `/dev/urandom` for each id: a file opened per
    /// request for its request id. glibc's `arc4random_buf` fills the 16 bytes with one
    /// `getrandom` call (`SystemRandomNumberGenerator` makes a call per 8 bytes).
    public static func random() -> UUID {
        var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &bytes) { buffer in
            #if canImport(Glibc)
            if let start = buffer.baseAddress { arc4random_buf(start, buffer.count) }
            #else
            var generator = SystemRandomNumberGenerator()
            buffer.storeBytes(of: generator.next() as UInt64, toByteOffset: 0, as: UInt64.self)
            buffer.storeBytes(of: generator.next() as UInt64, toByteOffset: 8, as: UInt64.self)
            #endif
            buffer[6] = (buffer[6] & 0x0F) | 0x40
            buffer[8] = (buffer[8] & 0x3F) | 0x80
        }
        return UUID(uuid: bytes)
    }

    /// The id in `text` (`6ba7b810-9dad-11d1-80b4-00c04fd430c8`, either case), or nil for
    /// anything but that 8-4-4-4-12 hex form, read from the bytes. Foundation's
    /// `UUID(uuidString:)` goes through `sscanf` (which also takes some malformed text, a
    /// space for a leading digit), and every authenticated request reads three ids from
    /// its token.
    public static func parsing(_ text: String) -> UUID? {
        func nibble(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        let utf8 = text.utf8
        guard utf8.count == 36 else { return nil }
        var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        let parsed = withUnsafeMutableBytes(of: &bytes) { output -> Bool in
            var iterator = utf8.makeIterator()
            for index in 0..<16 {
                if index == 4 || index == 6 || index == 8 || index == 10 {
                    guard iterator.next() == UInt8(ascii: "-") else { return false }
                }
                guard let high = iterator.next().flatMap(nibble), let low = iterator.next().flatMap(nibble) else { return false }
                output[index] = high << 4 | low
            }
            return true
        }
        return parsed ? UUID(uuid: bytes) : nil
    }

    /// The id as the API writes it (`6ba7b810-9dad-…`), formatted from its bytes: Foundation's
    /// `uuidString` goes through `sprintf` and then needs lowercasing, twice per id on
    /// every row of every list.
    public var lowercasedString: String {
        let hex = JSONText.hexDigits
        return withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { buffer in
                var position = 0
                for (index, byte) in bytes.enumerated() {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        buffer[position] = UInt8(ascii: "-")
                        position += 1
                    }
                    buffer[position] = hex[Int(byte >> 4)]
                    buffer[position + 1] = hex[Int(byte & 0x0F)]
                    position += 2
                }
                return position
            }
        }
    }
}
