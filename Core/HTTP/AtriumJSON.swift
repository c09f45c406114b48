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
