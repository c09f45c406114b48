public import Foundation
public import Logging
public import PostgresNIO

extension PostgresConnection {
    /// A transaction on this connection scoped to one tenant by row-level security.
    @discardableResult
    public func withTenantTransaction<Result>(
        _ tenantID: UUID, logger: Logger, isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        try await withTransaction(logger: logger, isolation: isolation) { connection in
            try await connection.query("SELECT set_config('app.tenant_id', \(tenantID.uuidString.lowercased()), true)", logger: logger)
            return try await body(connection)
        }
    }

    /// A transaction on this connection that sees the platform-scoped queue tables across tenants.
    @discardableResult
    public func withPlatformTransaction<Result>(
        logger: Logger, isolation: isolated (any Actor)? = #isolation, _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        try await withTransaction(logger: logger, isolation: isolation) { connection in
            try await connection.query("SELECT set_config('app.scope', 'platform', true)", logger: logger)
            return try await body(connection)
        }
    }
}
