/// One field of a JSON Merge Patch (RFC 7396) body: absent keeps the stored value,
/// `null` clears it, a value replaces it.
///
/// Declare a PATCH body's fields as `Patch<T>` (not `T?`, which cannot tell absent from
/// null) and write the update as `column = CASE WHEN \(field.isSet) THEN \(field.value)
/// ELSE column END`: one statement, whatever the client sent. A column that may not be
/// empty refuses `.clear` in the body's validation (`requireValue`).
public enum Patch<Value: Sendable>: Sendable {
    case keep
    case clear
    case set(Value)

    /// Whether the body named the field (as a value or as null).
    public var isSet: Bool {
        if case .keep = self { return false }
        return true
    }

    /// The new value: nil to clear (or when kept; then `isSet` is false).
    public var value: Value? {
        if case .set(let value) = self { return value }
        return nil
    }

    /// The same change with the value transformed (trimmed, lowercased, checked).
    public func map<Other: Sendable>(_ transform: (Value) throws -> Other) rethrows -> Patch<Other> {
        switch self {
        case .keep: .keep
        case .clear: .clear
        case .set(let value): .set(try transform(value))
        }
    }

    /// The same change carrying `checked`, the value after validation normalised it (an
    /// email lowercased): a kept or cleared field stays so.
    public func carrying(_ checked: Value?) -> Patch<Value> {
        guard case .set = self, let checked else { return self }
        return .set(checked)
    }

    /// Whether the body sent `null` for the field.
    public var isCleared: Bool {
        if case .clear = self { return true }
        return false
    }

    /// 422 naming `field` when the patch clears it: for columns that must hold a value.
    public func requireValue(_ field: String) throws(AtriumError) -> Patch<Value> {
        if case .clear = self { throw .validation(field: field, "cannot be cleared (null)") }
        return self
    }
}

extension Patch: Equatable where Value: Equatable {}

/// The merge-patch checks every PATCH body needs.
public enum MergePatch {
    /// 422 naming every field in `fields` (name, whether the body clears it) that the body
    /// sets to `null`, all at once: for columns that must hold a value.
    public static func refuseClearing(_ fields: [(String, Bool)]) throws(AtriumError) {
        let cleared = fields.filter(\.1).map { AtriumError.FieldError(field: $0.0, message: "cannot be cleared (null)") }
        if !cleared.isEmpty { throw .validation(cleared) }
    }
}

extension Patch: Decodable where Value: Decodable {
    /// A present field: null clears, anything else is decoded as `Value`. (Absence is
    /// handled by `KeyedDecodingContainer.decode(_:forKey:)` below.)
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        self = container.decodeNil() ? .clear : .set(try container.decode(Value.self))
    }
}

extension Patch: Encodable where Value: Encodable {
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .keep, .clear: try container.encodeNil()
        case .set(let value): try container.encode(value)
        }
    }
}

extension KeyedDecodingContainer {
    /// Synthesized `Decodable` calls this for `Patch` properties: an absent key is `.keep`
    /// (rather than a missing-key error), a null is `.clear`.
    public func decode<Value: Decodable & Sendable>(_ type: Patch<Value>.Type, forKey key: Key) throws -> Patch<Value> {
        guard contains(key) else { return .keep }
        return try decodeIfPresent(type, forKey: key) ?? .clear
    }
}

extension KeyedEncodingContainer {
    /// Synthesized `Encodable` calls this for `Patch` properties: a kept field is left out,
    /// so a stored patch (an idempotent replay's fingerprint) says what the client said.
    public mutating func encode<Value: Encodable & Sendable>(_ value: Patch<Value>, forKey key: Key) throws {
        switch value {
        case .keep: return
        case .clear: try encodeNil(forKey: key)
        case .set(let wrapped): try encode(wrapped, forKey: key)
        }
    }
}

extension Patch: SchemaContainerType where Value: Decodable {
    static var containerSchema: JSONSchema { .nullable(SchemaReflector.schema(for: Value.self)) }
}

/// Marks `Patch` for the OpenAPI reflector, which documents optional properties as
/// accepting `null` but leaves a merge-patch field's nullability to its route.
protocol MergePatchField {}
extension Patch: MergePatchField {}
