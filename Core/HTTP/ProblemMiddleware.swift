import Foundation
import HTTPTypes
import Hummingbird
import Logging
import PostgresNIO

/// Renders every error as RFC 9457 problem+json, in one place.
///
/// Unknown routes, wrong methods, oversized or malformed bodies and unexpected
/// failures all reach the client as a problem document with a stable `code`; an
/// unexpected error's details go to the log only.
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = AtriumRequestContext
    /// The routes' methods, for answering 405 rather than 404 to a known path.
    var routeMethods = RouteMethods()
    /// Problems that migrations declare for their constraints (`COMMENT ON CONSTRAINT`).
    var constraints: DeclaredConstraints?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as AtriumError {
            return try error.response(from: request, context: context)
        } catch let error as DecodingError {
            return try AtriumRequestDecoder.problem(for: error).response(from: request, context: context)
        } catch let error as HTTPError where error.status == .notFound && !routeMethods.allowed(for: request.uri.path).isEmpty {
            let allowed = routeMethods.allowed(for: request.uri.path)
            var problem = AtriumError(
                status: .methodNotAllowed, code: "method_not_allowed", title: "Method not allowed",
                detail: "\(request.uri.path) answers \(allowed.joined(separator: ", ")), not \(request.method.rawValue).")
            problem.headers[.allow] = allowed.joined(separator: ", ")
            return try problem.response(from: request, context: context)
        } catch let error as HTTPError {
            return try Self.problem(for: error, path: request.uri.path).response(from: request, context: context)
        } catch let error as PSQLError where AtriumError.fromDatabaseRule(error) != nil {
            return try (AtriumError.fromDatabaseRule(error) ?? .internalError()).response(from: request, context: context)
        } catch let error as PSQLError where DatabaseProblems.problem(for: error) != nil {
            // A constraint whose migration declares what it means to a client says so.
            if let declared = await constraints?.problem(for: error) {
                return try declared.response(from: request, context: context)
            }
            // The edge let a value through that the database refused: the client's input, but
            // a check the kernel or a module should make earlier, so it is logged.
            context.logger.warning("database refused a value", metadata: [
                "sqlstate": "\(error.serverInfo?[.sqlState] ?? "")", "constraint": "\(error.serverInfo?[.constraintName] ?? "")",
                "error": "\(error.serverInfo?[.message] ?? "")",
            ])
            return try (DatabaseProblems.problem(for: error) ?? .internalError()).response(from: request, context: context)
        } catch let error as PipelinedBeginHandler.CommitOutcome where DatabaseProblems.problem(for: error) != nil {
            // The transaction's commit refused a value (a deferred constraint): the same
            // answer as the statement would have had, the same warning.
            guard case .refused(let state, let message, let constraint, let table, _) = error else {
                return try AtriumError.internalError().response(from: request, context: context)
            }
            if let constraint, let table, let declared = await constraints?.problem(constraint: constraint, table: table) {
                return try declared.response(from: request, context: context)
            }
            context.logger.warning("database refused a value at commit", metadata: [
                "sqlstate": "\(state)", "constraint": "\(constraint ?? "")", "error": "\(message)",
            ])
            return try (DatabaseProblems.problem(for: error) ?? .internalError()).response(from: request, context: context)
        } catch where DatabaseAvailability.isLost(error) {
            // The database went away (a connection died, the server restarts): the client
            // may try again in a moment; never a 500.
            context.logger.error("request failed: database unavailable", metadata: ["error": "\(String(reflecting: error))"])
            return try DatabaseAvailability.problem().response(from: request, context: context)
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))"])
            return try AtriumError.internalError().response(from: request, context: context)
        }
    }

    static func problem(for error: HTTPError, path: String) -> AtriumError {
        switch error.status {
        case .notFound:
            return .init(status: .notFound, code: "not_found", title: "Not found", detail: "No route matches \(path).")
        case .methodNotAllowed:
            return .init(status: .methodNotAllowed, code: "method_not_allowed", title: "Method not allowed", detail: "This route does not accept that method.")
        case .contentTooLarge:
            return .init(status: .contentTooLarge, code: "payload_too_large", title: "Payload too large", detail: "The request body is too large.")
        case .badRequest:
            return .badRequest(error.body ?? "The request is malformed.")
        case .unsupportedMediaType:
            return .init(status: .unsupportedMediaType, code: "unsupported_media_type", title: "Unsupported media type", detail: error.body)
        default:
            return .init(status: error.status, code: error.status.reasonPhrase.lowercased().replacingOccurrences(of: " ", with: "_"),
                         title: error.status.reasonPhrase, detail: error.body)
        }
    }
}
