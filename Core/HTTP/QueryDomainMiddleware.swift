import Hummingbird

/// Refuses query parameters no handler could store or compare: a percent-decoded value
/// holding NUL (`%00`) would reach PostgreSQL, which cannot take it in text, and come
/// back as a 500. Checked once here, so every route and module inherits it.
struct QueryDomainMiddleware: RouterMiddleware {
    typealias Context = AtriumRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.uri.query?.contains("%00") == true || request.uri.query?.utf8.contains(0) == true {
            for (name, value) in request.uri.queryParameters where InputDomain.containsNUL(value) || name.contains("%00") {
                throw AtriumError.validation(field: String(name.prefix(100)), "must not contain NUL characters (%00)")
            }
        }
        return try await next(request, context)
    }
}
