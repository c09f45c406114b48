/// The subset of JSON Schema (2020-12, as OpenAPI 3.1 uses it) that Atrium's API needs.
public indirect enum JSONSchema: Sendable, Equatable {
    case string(format: String? = nil, enumValues: [String]? = nil)
    case integer
    case number
    case boolean
    case array(JSONSchema)
    case object(properties: [String: JSONSchema], required: [String])
    /// A JSON object with arbitrary members.
    case freeform
    case nullable(JSONSchema)

    /// The schema as a JSON value, ready to embed in the OpenAPI document.
    public var json: JSONValue {
        switch self {
        case .string(let format, let values):
            var object: [String: JSONValue] = ["type": "string"]
            if let format { object["format"] = .string(format) }
            if let values { object["enum"] = .array(values.map(JSONValue.string)) }
            // Free text never holds NUL: PostgreSQL cannot store it, so the API refuses it.
            if format == nil && values == nil { object["pattern"] = .string(#"^[^\u0000]*$"#) }
            return .object(object)
        case .integer: return ["type": "integer"]
        case .number: return ["type": "number"]
        case .boolean: return ["type": "boolean"]
        case .array(let items): return ["type": "array", "items": items.json]
        case .object(let properties, let required):
            var object: [String: JSONValue] = [
                "type": "object",
                "properties": .object(properties.mapValues(\.json)),
            ]
            if !required.isEmpty { object["required"] = .array(required.sorted().map(JSONValue.string)) }
            return .object(object)
        case .freeform: return ["type": "object"]
        case .nullable(let wrapped):
            guard case .object(var object) = wrapped.json, case .string(let type)? = object["type"] else { return wrapped.json }
            object["type"] = .array([.string(type), "null"])
            // An enumeration lists its values: null must be one of them to be accepted.
            if case .array(let values)? = object["enum"] { object["enum"] = .array(values + [.null]) }
            return .object(object)
        }
    }
}

/// A type that states its own schema instead of having it derived from its `Decodable`
/// conformance; string enums use this to list their cases.
public protocol JSONSchemaDescribable {
    static var jsonSchema: JSONSchema { get }
}

extension JSONSchemaDescribable where Self: CaseIterable & RawRepresentable, RawValue == String {
    public static var jsonSchema: JSONSchema { .string(enumValues: allCases.map(\.rawValue)) }
}
