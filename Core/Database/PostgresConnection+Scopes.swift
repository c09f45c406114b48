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
        try await withTransaction(setting: "app.tenant_id", to: tenantID.uuidString.lowercased(), logger: logger, isolation: isolation, body)
    }

    /// A tenant transaction that also names the principal acting (`app.principal_id`),
    /// for modules whose row-level security scopes rows to their owner. Both settings
    /// are made in one statement and end with the transaction.
    @discardableResult
    public func withTenantTransaction<Result>(
        _ tenantID: UUID, principal: UUID?, logger: Logger, isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        guard let principal else { return try await withTenantTransaction(tenantID, logger: logger, isolation: isolation, body) }
        return try await withUnwrappedTransaction(logger: logger, isolation: isolation) { connection in
            try await connection.scopeTransaction(toTenant: tenantID, principal: principal, logger: logger)
            return try await body(connection)
        }
    }

    /// A transaction on this connection that sees the platform-scoped queue tables across tenants.
    @discardableResult
    public func withPlatformTransaction<Result>(
        logger: Logger, isolation: isolated (any Actor)? = #isolation, _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        try await withTransaction(setting: "app.scope", to: "platform", logger: logger, isolation: isolation, body)
    }

    /// A transaction with one row-level security setting made transaction-local, so it
    /// ends with the transaction and never travels with a pooled connection.
    private func withTransaction<Result>(
        setting name: String, to value: String, logger: Logger, isolation: isolated (any Actor)?,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        try await withUnwrappedTransaction(logger: logger, isolation: isolation) { connection in
            try await connection.setLocal(name, to: value, logger: logger)
            return try await body(connection)
        }
    }

    /// Scopes the transaction already open on this connection to `tenantID`, for operator
    /// work that touches several tenants' rows in one transaction.
    public func scopeTransaction(toTenant tenantID: UUID, logger: Logger) async throws {
        try await setLocal("app.tenant_id", to: tenantID.uuidString.lowercased(), logger: logger)
    }

    /// Scopes this whole session to `tenantID` (and every owner's rows with
    /// `seesAllOwners`), for the life of the connection: for a tool that holds one
    /// connection of its own and runs statement after statement in autocommit (a benchmark
    /// of a row-by-row importer, a one-off script). Never for a pooled connection, which
    /// would carry the tenant into the next holder's work: those scope each transaction
    /// (`withTenantTransaction`).
    public func scopeSession(toTenant tenantID: UUID, seesAllOwners: Bool = false, logger: Logger) async throws {
        try await query(
            "SELECT set_config('app.tenant_id', \(tenantID.lowercasedString), false), set_config('app.owner_scope', \(seesAllOwners ? "any" : ""), false)",
            logger: logger)
    }

    /// Scopes the transaction already open on this connection to a tenant and the
    /// principal acting in it, in one statement (what an `Authenticator` must leave). Every
    /// request with a session served from memory opens with it, so it runs as a prepared
    /// statement of the connection.
    ///
    /// On a request's connection whose `BEGIN` has not been sent yet, the settings go with
    /// it, in the same write as the request's first statement (`PipelinedBeginHandler`).
    public func scopeTransaction(toTenant tenantID: UUID, principal: UUID, logger: Logger) async throws {
        if setLocallyWithPendingBegin([("app.tenant_id", tenantID.lowercasedString), ("app.principal_id", principal.lowercasedString)]) {
            return
        }
        _ = try await PreparedStatements.shared.rows(
            "SELECT set_config('app.tenant_id', \(tenantID.lowercasedString), true), set_config('app.principal_id', \(principal.lowercasedString), true)",
            on: self, logger: logger)
    }

    /// Hands `settings` to the pipelined `BEGIN` of the request this task serves, when
    /// this is its connection and that `BEGIN` is still waiting for a statement to go with.
    func setLocallyWithPendingBegin(_ settings: [(name: String, value: String)]) -> Bool {
        guard let lease = RequestLease.current, lease.connection === self else { return false }
        return lease.setLocallyWithBegin(settings)
    }

    private func setLocal(_ name: String, to value: String, logger: Logger) async throws {
        try await query("SELECT set_config(\(name), \(value), true)", logger: logger)
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
