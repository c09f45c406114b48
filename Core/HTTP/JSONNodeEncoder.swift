import Foundation

/// The `Encoder` behind `ResponseJSON`: builds `JSONNode`s as Foundation's `JSONEncoder`
/// builds its values under `AtriumJSON.encoder`'s strategies.
///
/// It keeps no coding path (`codingPath` is empty): building one per value is much of
/// what made Foundation's encoder slow here, and only error messages would read it.
final class JSONNodeEncoder: Encoder {
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    /// What this encoder's value became: set by the first container asked for.
    var node: JSONNode?

    /// `value` as a node: the types Foundation's encoder treats specially first, then the
    /// value's own `encode(to:)`; a value that encoded nothing is an empty object.
    static func node<Value: Encodable>(for value: Value) throws -> JSONNode {
        try encodedNode(for: value) ?? .object(JSONObjectBox())
    }

    /// As `node(for:)`, but nil when `value` encoded nothing (Foundation refuses that at
    /// the top level).
    static func encodedNode<Value: Encodable>(for value: Value) throws -> JSONNode? {
        if let leaf = try leafNode(for: value) { return leaf }
        let encoder = JSONNodeEncoder()
        try value.encode(to: encoder)
        return encoder.node
    }

    /// The node of a value Foundation's encoder treats specially (strings, numbers,
    /// dates, `[String: T]`…), or nil for one whose own `encode(to:)` says what it is:
    /// its text as `JSONDirectWriter.writeLeaf` writes it, so both paths agree.
    static func leafNode<Value: Encodable>(for value: Value) throws -> JSONNode? {
        var text: [UInt8] = []
        guard try JSONDirectWriter.writeLeaf(value, to: &text) else { return nil }
        return .literal(String(decoding: text, as: UTF8.self))
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if case .object(let box) = node { return KeyedEncodingContainer(JSONKeyedContainer<Key>(box: box)) }
        let box = JSONObjectBox()
        node = .object(box)
        return KeyedEncodingContainer(JSONKeyedContainer<Key>(box: box))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if case .array(let box) = node { return JSONUnkeyedContainer(box: box) }
        let box = JSONArrayBox()
        node = .array(box)
        return JSONUnkeyedContainer(box: box)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        JSONSingleValueContainer(encoder: self)
    }
}

/// `[String: Value]` is written with its keys as they are (Foundation exempts such
/// dictionaries from key strategies), every other dictionary as its `Encodable` says.
protocol StringKeyedEncodableDictionary {
    func node() throws -> JSONNode
}

extension Dictionary: StringKeyedEncodableDictionary where Key == String, Value: Encodable {
    func node() throws -> JSONNode {
        let box = JSONObjectBox(capacity: count)
        for (key, value) in self {
            box.entries.append((key, try JSONNodeEncoder.node(for: value)))
        }
        return .object(box)
    }
}

/// The node of each primitive a container is given, in one place for all containers.
enum JSONPrimitive {
    static func bool(_ value: Bool) -> JSONNode { .literal(value ? "true" : "false") }
    static func integer(_ value: some BinaryInteger) -> JSONNode { .literal(String(value)) }
}

struct JSONKeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let box: JSONObjectBox
    var codingPath: [any CodingKey] { [] }

    private func put(_ node: JSONNode, _ key: Key) { box.set(SnakeCaseKey.converted(key.stringValue), node) }

    mutating func encodeNil(forKey key: Key) throws { put(.null, key) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { put(JSONPrimitive.bool(value), key) }
    mutating func encode(_ value: String, forKey key: Key) throws { put(.string(value), key) }
    mutating func encode(_ value: Double, forKey key: Key) throws { put(try JSONText.foundationNode(value), key) }
    mutating func encode(_ value: Float, forKey key: Key) throws { put(try JSONText.foundationNode(value), key) }
    mutating func encode(_ value: Int, forKey key: Key) throws { put(JSONPrimitive.integer(value), key) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { put(JSONPrimitive.integer(value), key) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { put(JSONPrimitive.integer(value), key) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { put(JSONPrimitive.integer(value), key) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { put(JSONPrimitive.integer(value), key) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { put(JSONPrimitive.integer(value), key) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { put(JSONPrimitive.integer(value), key) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { put(JSONPrimitive.integer(value), key) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { put(JSONPrimitive.integer(value), key) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { put(JSONPrimitive.integer(value), key) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { put(try JSONNodeEncoder.node(for: value), key) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        let nested = JSONObjectBox()
        put(.object(nested), key)
        return KeyedEncodingContainer(JSONKeyedContainer<NestedKey>(box: nested))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let nested = JSONArrayBox()
        put(.array(nested), key)
        return JSONUnkeyedContainer(box: nested)
    }

    mutating func superEncoder() -> any Encoder {
        let encoder = JSONNodeEncoder()
        box.set("super", .deferred(encoder))
        return encoder
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        let encoder = JSONNodeEncoder()
        put(.deferred(encoder), key)
        return encoder
    }
}

/// A container that takes one value at a time (an array's next element, or the single
/// value): every primitive becomes its node the same way, written once here.
protocol JSONValueSink {
    func put(_ node: JSONNode)
}

extension JSONValueSink {
    mutating func encodeNil() throws { put(.null) }
    mutating func encode(_ value: Bool) throws { put(JSONPrimitive.bool(value)) }
    mutating func encode(_ value: String) throws { put(.string(value)) }
    mutating func encode(_ value: Double) throws { put(try JSONText.foundationNode(value)) }
    mutating func encode(_ value: Float) throws { put(try JSONText.foundationNode(value)) }
    mutating func encode(_ value: Int) throws { put(JSONPrimitive.integer(value)) }
    mutating func encode(_ value: Int8) throws { put(JSONPrimitive.integer(value)) }
    mutating func encode(_ value: Int16) throws { put(JSONPrimitive.integer(value)) }
    mutating func encode(_ value: Int32) throws { put(JSONPrimitive.integer(value)) }
    mutating func encode(_ value: Int64) throws { put(JSONPrimitive.integer(value)) }
    mutating func encode(_ value: UInt) throws { put(JSONPrimitive.integer(value)) }
    mutating func encode(_ value: UInt8) throws { put(JSONPrimitive.integer(value)) }
    mutating func encode(_ value: UInt16) throws { put(JSONPrimitive.integer(value)) }
    mutating func encode(_ value: UInt32) throws { put(JSONPrimitive.integer(value)) }
    mutating func encode(_ value: UInt64) throws { put(JSONPrimitive.integer(value)) }
    mutating func encode<T: Encodable>(_ value: T) throws { put(try JSONNodeEncoder.node(for: value)) }
}

struct JSONUnkeyedContainer: UnkeyedEncodingContainer, JSONValueSink {
    let box: JSONArrayBox
    var codingPath: [any CodingKey] { [] }
    var count: Int { box.elements.count }

    func put(_ node: JSONNode) { box.elements.append(node) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let nested = JSONObjectBox()
        put(.object(nested))
        return KeyedEncodingContainer(JSONKeyedContainer<NestedKey>(box: nested))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let nested = JSONArrayBox()
        put(.array(nested))
        return JSONUnkeyedContainer(box: nested)
    }

    mutating func superEncoder() -> any Encoder {
        let encoder = JSONNodeEncoder()
        put(.deferred(encoder))
        return encoder
    }
}

struct JSONSingleValueContainer: SingleValueEncodingContainer, JSONValueSink {
    let encoder: JSONNodeEncoder
    var codingPath: [any CodingKey] { [] }

    func put(_ node: JSONNode) { encoder.node = node }
}
