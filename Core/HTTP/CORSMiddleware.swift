import HTTPTypes
import Hummingbird

/// CORS for browsers, from an explicit allow-list of origins.
///
/// An allowed origin is echoed back (with `Vary: Origin`), never `*`, so credentials
/// can be allowed safely; any other origin gets no CORS headers and the browser blocks
/// the response. Preflight requests from allowed origins are answered here with 204.
struct CORSMiddleware: RouterMiddleware {
    typealias Context = AtriumRequestContext
    let allowedOrigins: Set<String>

    static let allowedMethods = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
    static let allowedHeaders = "Authorization, Content-Type, Idempotency-Key, X-Api-Key, X-Request-Id"
    static let exposedHeaders = "X-Request-Id, RateLimit, RateLimit-Policy, Retry-After"

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin], allowedOrigins.contains(origin) else {
            return try await next(request, context)
        }
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            var response = Response(status: .noContent)
            response.headers[.accessControlAllowMethods] = Self.allowedMethods
            response.headers[.accessControlAllowHeaders] = Self.allowedHeaders
            response.headers[.accessControlMaxAge] = "600"
            decorate(&response, origin: origin)
            return response
        }
        var response = try await next(request, context)
        response.headers[.accessControlExposeHeaders] = Self.exposedHeaders
        decorate(&response, origin: origin)
        return response
    }

    private func decorate(_ response: inout Response, origin: String) {
        response.headers[.accessControlAllowOrigin] = origin
        response.headers[.accessControlAllowCredentials] = "true"
        response.headers[values: .vary].append("Origin")
    }
}
