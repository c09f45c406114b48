import Foundation
public import HTTPTypes
public import Hummingbird
import PostgresNIO

/// The one error type that crosses the HTTP edge.
///
/// Every failure a client can see is rendered from this value as an RFC 9457
/// `application/problem+json` document with a stable `code`, so clients branch on
/// `code` rather than on prose, and nothing internal (driver messages, stack traces)
/// ever reaches them.
public struct AtriumError: Error, Sendable, Equatable {
    /// A field-level validation problem, listed under `errors` in the problem document.
    public struct FieldError: Sendable, Equatable, Codable {
        public var field: String
        public var message: String
        public init(field: String, message: String) {
            self.field = field
            self.message = message
        }
    }

    public var status: HTTPResponse.Status
    public var code: String
    public var title: String
    public var detail: String?
    public var fieldErrors: [FieldError]
    public var headers: HTTPFields
    /// Extra members of the problem document (RFC 9457 §3.2), such as an MFA challenge token.
    public var extensions: [String: JSONValue] = [:]

    public init(
        status: HTTPResponse.Status,
        code: String,
        title: String,
        detail: String? = nil,
        fieldErrors: [FieldError] = [],
        headers: HTTPFields = [:]
    ) {
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.fieldErrors = fieldErrors
        self.headers = headers
    }

    public static func notFound(_ detail: String = "The requested resource does not exist.") -> Self {
        .init(status: .notFound, code: "not_found", title: "Not found", detail: detail)
    }

    public static func validation(_ fieldErrors: [FieldError], detail: String = "The request is invalid.") -> Self {
        .init(status: .unprocessableContent, code: "validation_failed", title: "Validation failed", detail: detail, fieldErrors: fieldErrors)
    }

    public static func validation(field: String, _ message: String) -> Self {
        .validation([FieldError(field: field, message: message)], detail: "\(field): \(message)")
    }

    public static func badRequest(code: String = "bad_request", _ detail: String) -> Self {
        .init(status: .badRequest, code: code, title: "Bad request", detail: detail)
    }

    public static func unauthenticated(_ detail: String = "A valid access token or API key is required.") -> Self {
        .init(status: .unauthorized, code: "unauthenticated", title: "Unauthenticated", detail: detail, headers: [.wwwAuthenticate: "Bearer"])
    }

    public static func forbidden(code: String = "forbidden", _ detail: String) -> Self {
        .init(status: .forbidden, code: code, title: "Forbidden", detail: detail)
    }

    public static func conflict(code: String = "conflict", _ detail: String) -> Self {
        .init(status: .conflict, code: code, title: "Conflict", detail: detail)
    }

    public static func internalError() -> Self {
        .init(status: .internalServerError, code: "internal_error", title: "Internal server error", detail: "The server failed to handle the request; it has been logged.")
    }
}

extension AtriumError: HTTPResponseError {
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var document: [String: JSONValue] = extensions
        document["type"] = .string("https://atrium.dev/problems/\(code)")
        document["title"] = .string(title)
        document["status"] = .number(Double(status.code))
        document["instance"] = .string(request.uri.path)
        document["code"] = .string(code)
        if let detail { document["detail"] = .string(detail) }
        if !fieldErrors.isEmpty {
            document["errors"] = .array(fieldErrors.map { .object(["field": .string($0.field), "message": .string($0.message)]) })
        }
        var headers = self.headers
        headers[.contentType] = "application/problem+json"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = try encoder.encode(JSONValue.object(document))
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

extension AtriumError {
    /// SQLSTATE of the rules the database enforces itself (seat limits): the trigger's
    /// HINT is the problem code and its MESSAGE the detail.
    static let databaseRuleState = "ATQ01"

    /// The 403 a database rule's refusal stands for, or nil for any other database error.
    public static func fromDatabaseRule(_ error: any Error) -> AtriumError? {
        guard let error = error as? PSQLError, error.serverInfo?[.sqlState] == databaseRuleState else { return nil }
        return .forbidden(code: error.serverInfo?[.hint] ?? "forbidden", error.serverInfo?[.message] ?? "refused by a plan limit")
    }
}
