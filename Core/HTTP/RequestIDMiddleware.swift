import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// Accepts the client's `X-Request-Id` (when it is a sane token) or makes one, puts it
/// in every log line of the request, and echoes it with the security headers that every
/// response carries.
struct RequestIDMiddleware: RouterMiddleware {
    typealias Context = AtriumRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let offered = request.headers[.requestID]
        let id = offered.flatMap { Self.isAcceptable($0) ? $0 : nil } ?? UUID.random().lowercasedString
        context.requestID = id
        // One id per log line: Hummingbird's own generated id would be a second, unrelated one.
        context.logger[metadataKey: "hb.request.id"] = nil
        context.logger[metadataKey: "request.id"] = .string(id)
        var response = try await next(request, context)
        response.headers[.requestID] = id
        response.headers[.xContentTypeOptions] = "nosniff"
        return response
    }

    static func isAcceptable(_ id: String) -> Bool {
        (1...128).contains(id.utf8.count) && id.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2D || byte == 0x2E || byte == 0x5F
        }
    }
}

extension HTTPField.Name {
    static let requestID = constant("X-Request-Id")
    static let xContentTypeOptions = constant("X-Content-Type-Options")
    static let referrerPolicy = constant("Referrer-Policy")
    static let apiKey = constant("X-Api-Key")
    static let xForwardedFor = constant("X-Forwarded-For")
    static let rateLimit = constant("RateLimit")
    static let rateLimitPolicy = constant("RateLimit-Policy")

    /// A header name written in the source; only a typo in a literal could fail here.
    private static func constant(_ name: String) -> Self {
        guard let field = Self(name) else { preconditionFailure("invalid HTTP header name literal '\(name)'") }
        return field
    }
}
