public import Foundation

/// The JSON conventions of the whole API: snake_case keys, RFC 3339 UTC timestamps.
public enum AtriumJSON {
    public static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
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
        try encode(value.uuidString.lowercased(), forKey: key)
    }

    public mutating func encodeIfPresent(_ value: UUID?, forKey key: Key) throws {
        try encodeIfPresent(value?.uuidString.lowercased(), forKey: key)
    }
}
