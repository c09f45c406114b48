import Foundation

/// Derives a JSON schema from a type's `Decodable` conformance.
///
/// It decodes a throwaway value through a decoder that records every key asked for:
/// `decode` marks a property required, `decodeIfPresent` optional. Because the schema
/// comes from the same conformance that decodes real requests, the OpenAPI document
/// cannot drift from what the server accepts.
public enum SchemaReflector {
    public static func schema<T: Decodable>(for type: T.Type) -> JSONSchema {
        if let described = type as? any JSONSchemaDescribable.Type { return described.jsonSchema }
        if let primitive = primitiveSchema(type) { return primitive }
        if let container = type as? any SchemaContainerType.Type { return container.containerSchema }
        let recorder = SchemaRecorder()
        _ = try? T(from: ReflectingDecoder(recorder: recorder))
        if let single = recorder.singleValue { return single }
        if recorder.isArray { return .array(recorder.arrayElement ?? .freeform) }
        return .object(properties: recorder.properties, required: recorder.required)
    }

    /// The name `type` is listed under in the document's components: its Swift name,
    /// a generic's argument first (`Page<Contact>` is `ContactPage`), letters and digits
    /// only; nil for types that are not objects of their own (arrays, primitives, JSON).
    static func componentName(for type: Any.Type) -> String? {
        if primitiveSchema(type) != nil || type is any SchemaContainerType.Type { return nil }
        let described = String(describing: type)
        var words: [Substring] = []
        // "Page<Contact>" -> ["Contact", "Page"]; "Outer<A, B>" -> ["A", "B", "Outer"].
        if let open = described.firstIndex(of: "<"), described.hasSuffix(">") {
            let inner = described[described.index(after: open)..<described.index(before: described.endIndex)]
            words = inner.split(separator: ",").map { $0.split(separator: ".").last ?? $0 }
            words.append(described[..<open])
        } else {
            words = [described.split(separator: ".").last ?? Substring(described)]
        }
        let name = words.map { $0.filter { $0.isLetter || $0.isNumber } }.joined()
        guard let first = name.first, first.isLetter else { return nil }
        return name
    }

    static func primitiveSchema(_ type: Any.Type) -> JSONSchema? {
        switch type {
        case is String.Type: return .string()
        case is UUID.Type: return .string(format: "uuid")
        case is Date.Type: return .string(format: "date-time")
        case is URL.Type: return .string(format: "uri")
        case is Data.Type: return .string(format: "byte")
        case is Bool.Type: return .boolean
        case is Int.Type, is Int64.Type, is Int32.Type, is Int16.Type, is Int8.Type, is UInt.Type, is UInt64.Type, is UInt32.Type:
            return .integer
        case is Double.Type, is Float.Type, is Decimal.Type: return .number
        case is JSONValue.Type: return .freeform
        default: return nil
        }
    }

    /// A throwaway value of `type`, for decoding to continue past a nested property.
    static func placeholder<T: Decodable>(_ type: T.Type) throws -> T {
        if let value = primitivePlaceholder(type) as? T { return value }
        if let cases = type as? any CaseIterable.Type, let first = firstCase(cases) as? T { return first }
        return try T(from: ReflectingDecoder(recorder: SchemaRecorder()))
    }

    private static func firstCase<C: CaseIterable>(_ type: C.Type) -> Any? { C.allCases.first }

    private static func primitivePlaceholder(_ type: Any.Type) -> Any? {
        switch type {
        case is String.Type: return ""
        case is UUID.Type: return UUID()
        case is Date.Type: return Date(timeIntervalSince1970: 0)
        case is URL.Type: return URL(string: "https://example.com")
        case is Data.Type: return Data()
        case is Bool.Type: return false
        case is Int.Type: return 0
        case is Int64.Type: return Int64(0)
        case is Int32.Type: return Int32(0)
        case is Double.Type: return 0.0
        case is Decimal.Type: return Decimal(0)
        case is JSONValue.Type: return JSONValue.null
        default: return nil
        }
    }
}

/// Arrays, optionals and string-keyed dictionaries describe themselves through their elements.
protocol SchemaContainerType {
    static var containerSchema: JSONSchema { get }
}

extension Array: SchemaContainerType where Element: Decodable {
    static var containerSchema: JSONSchema { .array(SchemaReflector.schema(for: Element.self)) }
}

extension Optional: SchemaContainerType where Wrapped: Decodable {
    static var containerSchema: JSONSchema { .nullable(SchemaReflector.schema(for: Wrapped.self)) }
}

extension Dictionary: SchemaContainerType where Key == String, Value: Decodable {
    static var containerSchema: JSONSchema { .freeform }
}

final class SchemaRecorder {
    var properties: [String: JSONSchema] = [:]
    var required: [String] = []
    var singleValue: JSONSchema?
    var isArray = false
    var arrayElement: JSONSchema?
}

struct ReflectingDecoder: Decoder {
    let recorder: SchemaRecorder
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] = [:]

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(KeyedReflector<Key>(recorder: recorder))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        recorder.isArray = true
        return UnkeyedReflector(recorder: recorder)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleValueReflector(recorder: recorder)
    }
}

struct ReflectionStop: Error {}

struct KeyedReflector<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let recorder: SchemaRecorder
    var codingPath: [any CodingKey] = []
    var allKeys: [Key] { [] }

    func contains(_ key: Key) -> Bool { true }

    func decodeNil(forKey key: Key) throws -> Bool { false }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        let name = SnakeCase.convert(key.stringValue)
        recorder.properties[name] = SchemaReflector.schema(for: type)
        if !recorder.required.contains(name) { recorder.required.append(name) }
        return try SchemaReflector.placeholder(type)
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        try decodeIfPresent(type, key)
    }

    // The protocol's default implementations of these would call `decode` and mark the
    // property required, so each is routed to the generic version above.
    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { try decodeIfPresent(type as Bool.Type, key) }
    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { try decodeIfPresent(type as String.Type, key) }
    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { try decodeIfPresent(type as Double.Type, key) }
    func decodeIfPresent(_ type: Float.Type, forKey key: Key) throws -> Float? { try decodeIfPresent(type as Float.Type, key) }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try decodeIfPresent(type as Int.Type, key) }
    func decodeIfPresent(_ type: Int8.Type, forKey key: Key) throws -> Int8? { try decodeIfPresent(type as Int8.Type, key) }
    func decodeIfPresent(_ type: Int16.Type, forKey key: Key) throws -> Int16? { try decodeIfPresent(type as Int16.Type, key) }
    func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? { try decodeIfPresent(type as Int32.Type, key) }
    func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { try decodeIfPresent(type as Int64.Type, key) }
    func decodeIfPresent(_ type: UInt.Type, forKey key: Key) throws -> UInt? { try decodeIfPresent(type as UInt.Type, key) }
    func decodeIfPresent(_ type: UInt8.Type, forKey key: Key) throws -> UInt8? { try decodeIfPresent(type as UInt8.Type, key) }
    func decodeIfPresent(_ type: UInt16.Type, forKey key: Key) throws -> UInt16? { try decodeIfPresent(type as UInt16.Type, key) }
    func decodeIfPresent(_ type: UInt32.Type, forKey key: Key) throws -> UInt32? { try decodeIfPresent(type as UInt32.Type, key) }
    func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? { try decodeIfPresent(type as UInt64.Type, key) }

    /// An optional property: the API's decoder reads `null` as absent, so the schema says
    /// it accepts `null` (a client that sends one is not wrong). A merge-patch field
    /// (`Patch`) is left as its value's schema: whether it may be cleared is the route's
    /// rule (`requireValue`), which reflection cannot see.
    private func decodeIfPresent<T: Decodable>(_ type: T.Type, _ key: Key) throws -> T? {
        let schema = SchemaReflector.schema(for: type)
        recorder.properties[SnakeCase.convert(key.stringValue)] = type is any MergePatchField.Type ? schema : .nullable(schema)
        return nil
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        recorder.properties[SnakeCase.convert(key.stringValue)] = .freeform
        return KeyedDecodingContainer(KeyedReflector<NestedKey>(recorder: SchemaRecorder()))
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        recorder.properties[SnakeCase.convert(key.stringValue)] = .array(.freeform)
        return UnkeyedReflector(recorder: SchemaRecorder())
    }

    func superDecoder() throws -> any Decoder { ReflectingDecoder(recorder: recorder) }
    func superDecoder(forKey key: Key) throws -> any Decoder { ReflectingDecoder(recorder: SchemaRecorder()) }
}

struct UnkeyedReflector: UnkeyedDecodingContainer {
    let recorder: SchemaRecorder
    var codingPath: [any CodingKey] = []
    var count: Int? { 0 }
    var isAtEnd: Bool { true }
    var currentIndex: Int { 0 }

    mutating func decodeNil() throws -> Bool { false }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        recorder.arrayElement = SchemaReflector.schema(for: type)
        throw ReflectionStop()
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        throw ReflectionStop()
    }
    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { throw ReflectionStop() }
    mutating func superDecoder() throws -> any Decoder { throw ReflectionStop() }
}

struct SingleValueReflector: SingleValueDecodingContainer {
    let recorder: SchemaRecorder
    var codingPath: [any CodingKey] = []

    func decodeNil() -> Bool { false }
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        recorder.singleValue = SchemaReflector.schema(for: type)
        return try SchemaReflector.placeholder(type)
    }
}
