import AtriumCore
import Foundation
import NIOFoundationCompat
import Hummingbird
import HummingbirdTesting
import Prometheus
import Testing

/// Builds the real router over a test database and runs `body` against it in-process.
func withTestApp<Result: Sendable>(
    _ db: TestDatabase, modules: [any AtriumModule] = [NotesModule()], server: ServerConfiguration = .init(),
    _ body: @escaping @Sendable (any TestClientProtocol, PrometheusCollectorRegistry) async throws -> Result
) async throws -> Result {
    try await db.withApp { database in
        let registry = try ModuleRegistry(modules)
        let metrics = PrometheusCollectorRegistry()
        let dependencies = ApplicationDependencies(
            database: database, registry: registry, authenticator: TestAuthenticator(), metrics: metrics, logger: TestDatabase.logger,
            expectedMigrations: try registry.allMigrations())
        let app = Application(router: buildRouter(dependencies, server: server), logger: TestDatabase.logger)
        return try await app.test(.router) { client in try await body(client, metrics) }
    }
}

/// Decodes a JSON response body into a loose JSON value for assertions: null for an
/// empty body, and a recorded issue (not a silent null) for a body that is not JSON.
func json(_ response: TestResponse, sourceLocation: SourceLocation = #_sourceLocation) -> JSONValue {
    guard response.body.readableBytes > 0 else { return .null }
    do {
        return try JSONDecoder().decode(JSONValue.self, from: Data(buffer: response.body))
    } catch {
        Issue.record("the response body is not JSON: \(String(buffer: response.body).prefix(200))", sourceLocation: sourceLocation)
        return .null
    }
}

extension JSONValue {
    var string: String? {
        if case .string(let value) = self { return value }
        return nil
    }
    var array: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }
}
