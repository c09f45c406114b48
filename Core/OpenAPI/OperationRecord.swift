public import HTTPTypes

/// One documented operation, captured when its route is registered.
public struct OperationRecord: Sendable {
    public var method: HTTPRequest.Method
    /// The path in OpenAPI form, `/v1/tenants/{tenant}/sales/contacts/{id}`.
    public var path: String
    public var summary: String
    public var tag: String
    public var permission: String?
    public var authenticated: Bool
    public var query: [QueryParameter]
    public var requestBody: JSONSchema?
    public var response: JSONSchema?
    /// The names the body and the response are listed under in `components/schemas`
    /// (after their Swift types: `Contact`, `ContactFields`, `ContactPage`), so that
    /// generated clients name their types as the server does and reuse them.
    public var requestBodyName: String?
    public var responseName: String?
    public var successStatus: Int
    /// Media types other than JSON, for routes that stream files (CSV uploads and downloads).
    public var requestContentTypes: [String] = []
    public var responseContentType: String = "application/json"
    /// The route's declared access (`permission` is what it requires of the caller).
    public var access: RouteAccess = .anyCaller
    /// Whether the route honours `Idempotency-Key`.
    public var idempotent = false
}

/// A documented query parameter.
public struct QueryParameter: Sendable, Equatable {
    public var name: String
    public var description: String
    public var schema: JSONSchema
    public init(_ name: String, _ description: String, schema: JSONSchema = .string()) {
        self.name = name
        self.description = description
        self.schema = schema
    }

    /// The `limit` and `cursor` parameters every list route takes.
    public static let pagination: [QueryParameter] = [
        .init("limit", "Page size, 1-200 (default 50).", schema: .integer),
        .init("cursor", "Opaque cursor from the previous page's next_cursor."),
    ]
}

/// Collects operations while routes are registered; read once to build the document.
public final class OperationCollector {
    public private(set) var operations: [OperationRecord] = []
    public init() {}
    func add(_ operation: OperationRecord) { operations.append(operation) }
}
