public import Foundation

/// Why a console command failed, with the exit code scripts can branch on: 1 failure,
/// 2 usage error, 3 not logged in, 4 permission denied.
public struct RemoteFailure: Error, CustomStringConvertible, Sendable {
    public enum Kind: Int32, Sendable {
        case failure = 1
        case usage = 2
        case notLoggedIn = 3
        case permissionDenied = 4
    }

    public var kind: Kind
    public var message: String
    /// The server's problem document, its HTTP status and its `code`, when the failure is
    /// the server's answer.
    public var body: Data?
    public var status: Int?
    public var code: String?

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
    public var exitCode: Int32 { kind.rawValue }

    public static func failure(_ message: String) -> Self { Self(.failure, message) }
    public static func usage(_ message: String) -> Self { Self(.usage, message) }

    /// The failure a server's answer means, read from its problem document (RFC 9457):
    /// what a person can act on, never a stack trace.
    public static func answer(_ response: OutboundResponse, server: String) -> Self {
        var failure = classify(response, server: server)
        failure.body = response.body
        failure.status = response.status
        failure.code = (try? JSONDecoder().decode(Problem.self, from: response.body))?.code
        return failure
    }

    private static func classify(_ response: OutboundResponse, server: String) -> Self {
        let problem = try? JSONDecoder().decode(Problem.self, from: response.body)
        let text = describe(response)
        switch response.status {
        case 401:
            return Self(.notLoggedIn, "not logged in to \(server): \(text)")
        case 403 where problem?.code == "permission_denied":
            return Self(.permissionDenied, "permission denied: \(text)")
        case 429:
            let wait = response.header("Retry-After").map { " (retry after \($0) s)" } ?? ""
            return .failure("rate limited\(wait): \(text)")
        default:
            return .failure(problem?.code.map { "\(text) [\($0)]" } ?? text)
        }
    }

    /// The problem's detail (or title), with one line per field error.
    public static func describe(_ response: OutboundResponse) -> String {
        let problem = try? JSONDecoder().decode(Problem.self, from: response.body)
        var lines = [problem?.detail ?? problem?.title ?? "HTTP \(response.status)"]
        for field in problem?.errors ?? [] { lines.append("  \(field.field ?? "body"): \(field.message ?? "is not valid")") }
        return lines.joined(separator: "\n")
    }

    struct Problem: Decodable {
        struct FieldError: Decodable {
            var field: String?
            var message: String?
        }
        var title: String?
        var detail: String?
        var code: String?
        var errors: [FieldError]?
    }
}
