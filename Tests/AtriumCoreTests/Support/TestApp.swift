import AtriumCore
import AtriumTesting
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

/// The application with the identity layer on (`AtriumTesting.withTestApplication`),
/// with the kernel tests' own module by default.
func withIdentityApp<Result: Sendable>(
    _ db: TestDatabase, settings: SessionSettings = SessionSettings(), plans: PlanCatalog? = nil, operatorToken: String? = nil,
    modules: [any AtriumModule] = [NotesModule()], _ body: @escaping @Sendable (any TestClientProtocol, Identity) async throws -> Result
) async throws -> Result {
    try await withTestApplication(db, modules: modules, settings: settings, plans: plans, operatorToken: operatorToken, body)
}
