public import Foundation
public import Logging
public import PostgresNIO

/// The kernel's access to PostgreSQL as the application role.
///
/// The application role owns no table and cannot bypass row-level security, so every
/// tenant-owned row it reads or writes goes through a transaction that has set
/// `app.tenant_id` transaction-locally: a pooled connection never carries one tenant's
/// setting into another tenant's request.
public struct Database: Sendable {
    public let client: PostgresClient
    /// The pool's connection limit, reported in `/metrics`.
    public let maximumConnections: Int

    public init(client: PostgresClient, maximumConnections: Int = 20) {
        self.client = client
        self.maximumConnections = maximumConnections
    }

    /// Runs `body` in one transaction scoped to `tenantID` by row-level security.
    @discardableResult
    public func withTenantTransaction<Result>(
        _ tenantID: UUID,
        logger: Logger,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        try await client.withConnection(isolation: isolation) { connection in
            try await connection.withTenantTransaction(tenantID, logger: logger, isolation: isolation, body)
        }
    }

    /// Runs `body` in one transaction scoped to `tenantID`, acting as `principal`
    /// (`app.principal_id`, which owner-scoped module tables read).
    @discardableResult
    public func withTenantTransaction<Result>(
        _ tenantID: UUID,
        principal: UUID?,
        logger: Logger,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        try await client.withConnection(isolation: isolation) { connection in
            try await connection.withTenantTransaction(tenantID, principal: principal, logger: logger, isolation: isolation, body)
        }
    }

    /// Runs `body` in one transaction that sees platform-scoped rows (the job queue)
    /// across tenants. Only the kernel's own cross-tenant machinery uses it.
    @discardableResult
    public func withPlatformTransaction<Result>(
        logger: Logger,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        try await client.withConnection(isolation: isolation) { connection in
            try await connection.withPlatformTransaction(logger: logger, isolation: isolation, body)
        }
    }

    /// Runs `body` in a transaction with no tenant set: only platform tables are visible.
    @discardableResult
    public func withTransaction<Result>(
        logger: Logger,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        try await client.withConnection(isolation: isolation) { connection in
            try await connection.withUnwrappedTransaction(logger: logger, isolation: isolation, body)
        }
    }
}
