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
        try await withUnwrappedTransaction(logger: logger, isolation: isolation) { connection in
            try await connection.query("SELECT set_config('app.tenant_id', \(tenantID.uuidString.lowercased()), true)", logger: logger)
            return try await body(connection)
        }
    }

    /// A transaction on this connection that sees the platform-scoped queue tables across tenants.
    @discardableResult
    public func withPlatformTransaction<Result>(
        logger: Logger, isolation: isolated (any Actor)? = #isolation, _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        try await withUnwrappedTransaction(logger: logger, isolation: isolation) { connection in
            try await connection.query("SELECT set_config('app.scope', 'platform', true)", logger: logger)
            return try await body(connection)
        }
    }

    /// `withTransaction` that rethrows the closure's own error rather than postgres-nio's
    /// `PostgresTransactionError` wrapper, so an `AtriumError` thrown inside a transaction
    /// still reaches the client as itself (a 404 stays a 404) after the rollback.
    @discardableResult
    public func withUnwrappedTransaction<Result>(
        logger: Logger, isolation: isolated (any Actor)? = #isolation, _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        do {
            return try await withTransaction(logger: logger, isolation: isolation, body)
        } catch let error as PostgresTransactionError {
            if let closureError = error.closureError { throw closureError }
            if let beginError = error.beginError { throw beginError }
            if let commitError = error.commitError { throw commitError }
            throw error
        }
    }
}
