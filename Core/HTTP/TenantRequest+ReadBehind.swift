import Logging
import PostgresNIO

extension TenantRequest {
    /// Runs `body` in a read-only transaction behind the request path: on the background
    /// lane's thread (raised nice value), on a connection of the background pool whose
    /// embedded-cluster backend is niced too, scoped like `transaction` (this tenant, this
    /// caller, the route's ownership).
    ///
    /// For a report that reads hundreds of thousands of rows (five years of 500
    /// instruments' closes): on a request connection its rows are received and decoded on
    /// an event loop that also serves other requests, and its backend competes with theirs
    /// at the same priority; there `/healthz` waited 2.6× longer at p99 while replays ran.
    /// Behind the request path it takes only the CPU requests leave, so on a quiet box it
    /// runs as fast and on a busy one it slows itself down, not everyone else.
    ///
    /// The transaction is its own (its own snapshot, not the request's), and read-only:
    /// a write, `enqueue` or `recordUsage` in it fails. Imports hold at most all but one
    /// of the background pool's connections (`BulkPermits`), so a report does not wait
    /// for them; reports share what is left, one heavy read after another. Without a
    /// background pool (a process that made none) it runs on the shared pool at normal
    /// priority.
    public func readBehindRequests<Result: Sendable>(
        isolation: isolated (any Actor)? = #isolation, _ body: (TenantTransaction) async throws -> Result
    ) async throws -> Result {
        let (tenantID, principalID, logger) = (tenant.id, principal?.databaseID, logger)
        let (jobs, metering, channels) = (services.jobs, services.metering, services.channels)
        let (seesAllOwned, ownerFilter) = (ownership?.seesAll == true, ownership?.ownerFilter)
        return try await services.database.withBackgroundConnection(logger: logger, bulk: false, isolation: isolation) { connection in
            try await connection.withTenantTransaction(tenantID, principal: principalID, logger: logger, isolation: isolation) { connection in
                try await connection.query("SET TRANSACTION READ ONLY", logger: logger)
                try await Self.scopeOwnership(seesAllOwned, connection, logger)
                return try await body(
                    TenantTransaction(
                        connection: connection, tenantID: tenantID, principalID: principalID, logger: logger, jobs: jobs, metering: metering,
                        channels: channels, ownerFilter: ownerFilter))
            }
        }
    }
}
