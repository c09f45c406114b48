import AtriumCore
import AtriumTesting
import Foundation
import NIOFoundationCompat
import Hummingbird
import HummingbirdTesting
import Prometheus
import Testing

/// The application `atrium serve` runs (`AtriumRuntime.prepare`) over a test database,
/// with `TestAuthenticator` in place of token authentication.
func withTestApp<Result: Sendable>(
    _ db: TestDatabase, modules: [any AtriumModule] = [NotesModule()], server: ServerConfiguration = .init(),
    _ body: @escaping @Sendable (any TestClientProtocol, PrometheusCollectorRegistry) async throws -> Result
) async throws -> Result {
    try await db.withApp { database in
        let registry = try ModuleRegistry(modules)
        let metrics = PrometheusCollectorRegistry()
        var configuration = try AtriumConfiguration(environment: [:], registry: registry, dataDirectory: db.dataDirectory)
        configuration.server = server
        configuration.hashing = testHashing
        let runtime = try await AtriumRuntime.prepare(
            configuration, registry: registry, location: db.location, database: database, masterKey: .generate(), authenticator: TestAuthenticator(),
            metrics: metrics, logger: TestDatabase.logger)
        let app = Application(router: runtime.router, logger: TestDatabase.logger)
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
