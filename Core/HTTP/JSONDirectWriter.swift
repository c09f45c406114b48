import Foundation

/// `ResponseJSON`'s fast path: values written straight into the output bytes, an object's
/// fields sorted in place once it is complete, with no `JSONNode` tree in between.
///
/// Why: a profile of a 20-row list put the node tree at 16% of the server's CPU per
/// request — an enum case, a box and an array per object, a node per field, then a second
/// pass to write them. Here a field's value is written where it will stay, and its key
/// and byte range are all an object remembers; when the object's `encode(to:)` returns,
/// its fields are copied once, in key order, into their place.
///
/// What synthesized `Encodable` never does — nested containers, super encoders, a
/// container asked for after a value of another kind — marks the writer `unsupported`,
/// and `ResponseJSON` writes that value with `JSONNodeEncoder` instead, so every value is
/// still written exactly as Foundation writes it.
final class JSONDirectWriter {
    var bytes: [UInt8] = []
    /// Set when a value used what this writer leaves to `JSONNodeEncoder`; `bytes` is
    /// then not to be used.
    var unsupported = false
    /// Where a completed object's fields are put in order before they replace it.
    private var scratch: [UInt8] = []
    /// The last object layout seen per `CodingKey` type: the rows of a page share theirs,
    /// so their keys are sorted and escaped once per response, not once per row.
    private var layouts: [ObjectIdentifier: ObjectLayout] = [:]

    /// How an object whose keys came in the order `keys` is written: the fields at
    /// `order` (later values of a repeated key dropped), each after its `prefix`
    /// (a comma but for the first, the escaped key, a colon).
    struct ObjectLayout {
        var keys: [String]
        var order: [Int]
        var prefixes: [[UInt8]]

        init(_ keys: [String]) {
            self.keys = keys
            let sorted = keys.indices.sorted { left, right in
                let (a, b) = (keys[left], keys[right])
                if a == b { return left < right }
                return a.utf8.lexicographicallyPrecedes(b.utf8)
            }
            order = sorted.indices.compactMap { position in
                // a later value wins
                position + 1 < sorted.count && keys[sorted[position + 1]] == keys[sorted[position]] ? nil : sorted[position]
            }
            prefixes = order.enumerated().map { position, index in
                var prefix: [UInt8] = position == 0 ? [] : [UInt8(ascii: ",")]
                JSONText.writeString(keys[index], to: &prefix)
                prefix.append(UInt8(ascii: ":"))
                return prefix
            }
        }

        func matches(_ fields: [(key: String, start: Int, end: Int)]) -> Bool {
            keys.count == fields.count && zip(keys, fields).allSatisfy { $0 == $1.key }
        }
    }

    init() {
        bytes.reserveCapacity(1_024)
    }

    /// Writes `value`; false when it encoded nothing (no container asked for).
    func write<Value: Encodable>(_ value: Value) throws -> Bool {
        if try Self.writeLeaf(value, to: &bytes) { return true }
        let encoder = JSONDirectEncoder(writer: self)
        try value.encode(to: encoder)
        return encoder.finish()
    }

    /// Writes a value Foundation's encoder treats specially (strings, numbers, dates,
    /// `[String: T]`…) as it does; false, writing nothing, for any other value.
    static func writeLeaf<Value: Encodable>(_ value: Value, to output: inout [UInt8]) throws -> Bool {
        // What records are mostly made of, told apart by type identity first: a comparison
        // of metadata, where each `as` below is a call into the runtime's dynamic casting.
        if Value.self == String.self {
            JSONText.writeString(unsafeBitCast(value, to: String.self), to: &output)
            return true
        }
        if Value.self == Date.self {
            JSONText.writeString(try JSONText.timestamp(unsafeBitCast(value, to: Date.self)), to: &output)
            return true
        }
        if Value.self == [String].self {
            output.append(UInt8(ascii: "["))
            for (index, text) in unsafeBitCast(value, to: [String].self).enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                JSONText.writeString(text, to: &output)
            }
            output.append(UInt8(ascii: "]"))
            return true
        }
        switch value {
        case let text as String: JSONText.writeString(text, to: &output)
        case let number as Int: output.append(contentsOf: String(number).utf8)
        case let flag as Bool: output.append(contentsOf: (flag ? "true" : "false").utf8)
        case let date as Date: JSONText.writeString(try JSONText.timestamp(date), to: &output)
        case let url as URL: JSONText.writeString(url.absoluteString, to: &output)
        case let dictionary as any StringKeyedEncodableDictionary: try dictionary.node().write(to: &output)
        case is Data, is Decimal, is Double, is Float: try JSONText.foundationNode(value).write(to: &output)
        default: return false
        }
        return true
    }

    /// A value inside an object or array: one that encoded nothing is an empty object.
    func writeNested<Value: Encodable>(_ value: Value) throws {
        if try !write(value) { bytes.append(contentsOf: "{}".utf8) }
    }

    func writeInteger(_ value: some BinaryInteger) {
        bytes.append(contentsOf: String(value).utf8)
    }

    func writeBool(_ value: Bool) {
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
    }

    func writeNull() {
        bytes.append(contentsOf: "null".utf8)
    }

    func writeFoundation<Value: Encodable>(_ value: Value) throws {
        try JSONText.foundationNode(value).write(to: &bytes)
    }

    /// Replaces an object's fields, written from `start` in the order they came, with the
    /// object in key order. A key given twice keeps its last value.
    func closeObject(from start: Int, fields: [(key: String, start: Int, end: Int)], keyType: ObjectIdentifier) {
        let layout: ObjectLayout
        if let known = layouts[keyType], known.matches(fields) {
            layout = known
        } else {
            layout = ObjectLayout(fields.map(\.key))
            layouts[keyType] = layout
        }
        scratch.removeAll(keepingCapacity: true)
        scratch.append(UInt8(ascii: "{"))
        for (position, index) in layout.order.enumerated() {
            let field = fields[index]
            scratch.append(contentsOf: layout.prefixes[position])
            scratch.append(contentsOf: bytes[field.start..<field.end])
        }
        scratch.append(UInt8(ascii: "}"))
        bytes.replaceSubrange(start..., with: scratch)
    }
}

/// The `Encoder` of one value on the direct path.
final class JSONDirectEncoder: Encoder {
    enum State {
        case empty
        case object(JSONDirectObject)
        case array(count: Int)
        case single
    }

    let writer: JSONDirectWriter
    var state = State.empty
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(writer: JSONDirectWriter) {
        self.writer = writer
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        switch state {
        case .empty:
            let object = JSONDirectObject(start: writer.bytes.count, keyType: ObjectIdentifier(Key.self))
            state = .object(object)
            return KeyedEncodingContainer(JSONDirectKeyedContainer<Key>(encoder: self, object: object))
        case .object(let object):
            return KeyedEncodingContainer(JSONDirectKeyedContainer<Key>(encoder: self, object: object))
        case .array, .single:
            return unsupported()
        }
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        guard case .empty = state else { return unsupported() }
        writer.bytes.append(UInt8(ascii: "["))
        state = .array(count: 0)
        return JSONDirectUnkeyedContainer(encoder: self)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        JSONDirectSingleValueContainer(encoder: self)
    }

    /// Ends the value: an object goes into key order, an array is closed. False when no
    /// container was asked for.
    func finish() -> Bool {
        switch state {
        case .empty:
            return false
        case .object(let object):
            writer.closeObject(from: object.start, fields: object.fields, keyType: object.keyType)
        case .array:
            writer.bytes.append(UInt8(ascii: "]"))
        case .single:
            break
        }
        return true
    }

    /// What the direct path leaves to `JSONNodeEncoder`: the value is written again that
    /// way, and what is given to these containers meanwhile goes nowhere.
    func unsupported<Key: CodingKey>() -> KeyedEncodingContainer<Key> {
        writer.unsupported = true
        return KeyedEncodingContainer(JSONKeyedContainer<Key>(box: JSONObjectBox()))
    }

    func unsupported() -> any UnkeyedEncodingContainer {
        writer.unsupported = true
        return JSONUnkeyedContainer(box: JSONArrayBox())
    }

    func unsupportedEncoder() -> any Encoder {
        writer.unsupported = true
        return JSONNodeEncoder()
    }

    /// Runs `write` as the array's next element.
    func element(_ write: (JSONDirectWriter) throws -> Void) throws {
        guard case .array(let count) = state else {
            writer.unsupported = true
            return
        }
        if count > 0 { writer.bytes.append(UInt8(ascii: ",")) }
        state = .array(count: count + 1)
        try write(writer)
    }

    /// Runs `write` as the single value.
    func single(_ write: (JSONDirectWriter) throws -> Void) throws {
        guard case .empty = state else {
            writer.unsupported = true
            return
        }
        state = .single
        try write(writer)
    }
}

/// An object's fields as written so far: keys and where their values' bytes are.
final class JSONDirectObject {
    let start: Int
    /// The `CodingKey` type of its first container: where its layout is remembered.
    let keyType: ObjectIdentifier
    var fields: [(key: String, start: Int, end: Int)] = []

    init(start: Int, keyType: ObjectIdentifier) {
        self.start = start
        self.keyType = keyType
        fields.reserveCapacity(16)
    }
}

struct JSONDirectKeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let encoder: JSONDirectEncoder
    let object: JSONDirectObject
    var codingPath: [any CodingKey] { [] }

    private func field(_ key: Key, _ write: (JSONDirectWriter) throws -> Void) rethrows {
        let writer = encoder.writer
        let start = writer.bytes.count
        try write(writer)
        object.fields.append((SnakeCaseKey.converted(key.stringValue), start, writer.bytes.count))
    }

    mutating func encodeNil(forKey key: Key) throws { field(key) { $0.writeNull() } }
    mutating func encode(_ value: Bool, forKey key: Key) throws { field(key) { $0.writeBool(value) } }
    mutating func encode(_ value: String, forKey key: Key) throws { field(key) { JSONText.writeString(value, to: &$0.bytes) } }
    mutating func encode(_ value: Double, forKey key: Key) throws { try field(key) { try $0.writeFoundation(value) } }
    mutating func encode(_ value: Float, forKey key: Key) throws { try field(key) { try $0.writeFoundation(value) } }
    mutating func encode(_ value: Int, forKey key: Key) throws { field(key) { $0.writeInteger(value) } }
    mutating func encode(_ value: Int8, forKey key: Key) throws { field(key) { $0.writeInteger(value) } }
    mutating func encode(_ value: Int16, forKey key: Key) throws { field(key) { $0.writeInteger(value) } }
    mutating func encode(_ value: Int32, forKey key: Key) throws { field(key) { $0.writeInteger(value) } }
    mutating func encode(_ value: Int64, forKey key: Key) throws { field(key) { $0.writeInteger(value) } }
    mutating func encode(_ value: UInt, forKey key: Key) throws { field(key) { $0.writeInteger(value) } }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { field(key) { $0.writeInteger(value) } }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { field(key) { $0.writeInteger(value) } }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { field(key) { $0.writeInteger(value) } }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { field(key) { $0.writeInteger(value) } }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { try field(key) { try $0.writeNested(value) } }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        encoder.unsupported()
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer { encoder.unsupported() }
    mutating func superEncoder() -> any Encoder { encoder.unsupportedEncoder() }
    mutating func superEncoder(forKey key: Key) -> any Encoder { encoder.unsupportedEncoder() }
}

/// The containers that take one value at a time, their primitives written once here.
protocol JSONDirectSink {
    func put(_ write: (JSONDirectWriter) throws -> Void) throws
}

extension JSONDirectSink {
    mutating func encodeNil() throws { try put { $0.writeNull() } }
    mutating func encode(_ value: Bool) throws { try put { $0.writeBool(value) } }
    mutating func encode(_ value: String) throws { try put { JSONText.writeString(value, to: &$0.bytes) } }
    mutating func encode(_ value: Double) throws { try put { try $0.writeFoundation(value) } }
    mutating func encode(_ value: Float) throws { try put { try $0.writeFoundation(value) } }
    mutating func encode(_ value: Int) throws { try put { $0.writeInteger(value) } }
    mutating func encode(_ value: Int8) throws { try put { $0.writeInteger(value) } }
    mutating func encode(_ value: Int16) throws { try put { $0.writeInteger(value) } }
    mutating func encode(_ value: Int32) throws { try put { $0.writeInteger(value) } }
    mutating func encode(_ value: Int64) throws { try put { $0.writeInteger(value) } }
    mutating func encode(_ value: UInt) throws { try put { $0.writeInteger(value) } }
    mutating func encode(_ value: UInt8) throws { try put { $0.writeInteger(value) } }
    mutating func encode(_ value: UInt16) throws { try put { $0.writeInteger(value) } }
    mutating func encode(_ value: UInt32) throws { try put { $0.writeInteger(value) } }
    mutating func encode(_ value: UInt64) throws { try put { $0.writeInteger(value) } }
    mutating func encode<T: Encodable>(_ value: T) throws { try put { try $0.writeNested(value) } }
}

struct JSONDirectUnkeyedContainer: UnkeyedEncodingContainer, JSONDirectSink {
    let encoder: JSONDirectEncoder
    var codingPath: [any CodingKey] { [] }
    var count: Int {
        if case .array(let count) = encoder.state { return count }
        return 0
    }

    func put(_ write: (JSONDirectWriter) throws -> Void) throws { try encoder.element(write) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        encoder.unsupported()
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer { encoder.unsupported() }
    mutating func superEncoder() -> any Encoder { encoder.unsupportedEncoder() }
}

struct JSONDirectSingleValueContainer: SingleValueEncodingContainer, JSONDirectSink {
    let encoder: JSONDirectEncoder
    var codingPath: [any CodingKey] { [] }

    func put(_ write: (JSONDirectWriter) throws -> Void) throws { try encoder.single(write) }
}
