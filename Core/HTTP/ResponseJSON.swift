import Foundation

/// The API's JSON written directly: the same bytes `AtriumJSON.encoder` produces (snake_case
/// keys, RFC 3339 UTC times, keys sorted, slashes unescaped), without Foundation's
/// per-key strategy calls and date formatters.
///
/// Why: a profile of a 20-row list put Foundation's `JSONEncoder` at 40% of the server's
/// own CPU per request — a custom key strategy is called with a freshly built coding path
/// for every key of every row, and every date goes through a format style. This writer
/// keeps the encoder's semantics (synthesized `Encodable`, `[String: T]` keys verbatim,
/// `Date`, `Data`, `URL`, `Decimal` and floating-point values as Foundation writes them)
/// and is held to byte equality with it by `ResponseJSONTests`.
public enum ResponseJSON {
    public static func encode<Value: Encodable>(_ value: Value) throws -> [UInt8] {
        let writer = JSONDirectWriter()
        let wrote = try writer.write(value)
        if !writer.unsupported {
            guard wrote else { throw nothingEncoded(value) }
            return writer.bytes
        }
        return try encodeAsNodes(value)
    }

    /// The tree-building path, for values that use what `JSONDirectWriter` leaves out.
    static func encodeAsNodes<Value: Encodable>(_ value: Value) throws -> [UInt8] {
        guard let node = try JSONNodeEncoder.encodedNode(for: value) else {
            throw nothingEncoded(value)
        }
        var output: [UInt8] = []
        output.reserveCapacity(1_024)
        node.write(to: &output)
        return output
    }

    static func nothingEncoded<Value>(_ value: Value) -> EncodingError {
        EncodingError.invalidValue(value, .init(codingPath: [], debugDescription: "Top-level \(Value.self) did not encode any values."))
    }
}

/// A value on its way to JSON. Objects and arrays are boxes, so that a container handed
/// out by an encoder can fill them after it was placed in its parent.
enum JSONNode {
    case null
    case literal(String)  // true, false, a number: written as is
    case string(String)
    case object(JSONObjectBox)
    case array(JSONArrayBox)
    case deferred(JSONNodeEncoder)  // a `superEncoder`'s value, known once it encoded

    func write(to output: inout [UInt8]) {
        switch self {
        case .null:
            output.append(contentsOf: "null".utf8)
        case .literal(let text):
            output.append(contentsOf: text.utf8)
        case .string(let text):
            JSONText.writeString(text, to: &output)
        case .object(let box):
            box.write(to: &output)
        case .array(let box):
            output.append(UInt8(ascii: "["))
            for (index, element) in box.elements.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                element.write(to: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .deferred(let encoder):
            (encoder.node ?? .object(JSONObjectBox())).write(to: &output)
        }
    }
}

final class JSONObjectBox {
    /// Keys and values side by side, with room for a record's fields from the start (one
    /// allocation per object rather than two arrays regrown field by field).
    var entries: [(key: String, value: JSONNode)]

    init(capacity: Int = 16) {
        entries = []
        entries.reserveCapacity(capacity)
    }

    /// A key set twice keeps its last value, as Foundation's dictionary-backed object does.
    func set(_ key: String, _ value: JSONNode) {
        if let index = entries.lastIndex(where: { $0.key == key }) {
            entries[index].value = value
        } else {
            entries.append((key, value))
        }
    }

    /// Keys in UTF-8 byte order: what Foundation's `.sortedKeys` does on Linux.
    func write(to output: inout [UInt8]) {
        output.append(UInt8(ascii: "{"))
        entries.sort { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        for (position, entry) in entries.enumerated() {
            if position > 0 { output.append(UInt8(ascii: ",")) }
            JSONText.writeString(entry.key, to: &output)
            output.append(UInt8(ascii: ":"))
            entry.value.write(to: &output)
        }
        output.append(UInt8(ascii: "}"))
    }
}

final class JSONArrayBox {
    var elements: [JSONNode] = []
}
