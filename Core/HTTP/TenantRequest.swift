public import Foundation
public import Hummingbird
public import Logging
public import PostgresNIO

/// What a module's handler receives: the request and everything the kernel resolved
/// for it, plus the one way to touch the database, a tenant-scoped transaction.
public struct TenantRequest: Sendable {
    public let request: Request
    public let tenant: Tenant
    /// The authenticated caller; nil only on public routes.
    public let principal: Principal?
    public let logger: Logger
    public let requestID: String
    public let parameters: Parameters
    let services: KernelServices
    let maxUploadSize: Int
    /// The request's open connection and transaction, on authenticated routes.
    let requestTransaction: RequestTransaction?
    /// The client's IP address and user agent, for sessions and the audit log.
    public let client: ClientInfo
    /// The caller's reach over owned records, on routes declared `.owned(prefix)`.
    public internal(set) var ownership: Ownership?
    /// The transaction the kernel opened around the handler (an idempotent create): the
    /// handler's `transaction` blocks join it rather than open their own.
    var ambient: TenantTransaction?

    /// The caller's reach over owned records; only routes declared `.owned` have one.
    public func requireOwnership() throws -> Ownership {
        guard let ownership else { throw ConfigurationError("this route is not declared .owned(...), so it has no ownership") }
        return ownership
    }

    /// The caller, which every authenticated route has.
    public func requirePrincipal() throws -> Principal {
        guard let principal else { throw AtriumError.unauthenticated() }
        return principal
    }

    /// Fails with 403 `permission_denied` unless the caller holds `permission`.
    public func require(_ permission: String) throws {
        guard try requirePrincipal().has(permission) else {
            throw AtriumError.forbidden(code: "permission_denied", "this operation requires the '\(permission)' permission")
        }
    }

    /// A path parameter, or 404 when it is absent or malformed (a bad id is a missing resource).
    public func parameter(_ name: String) throws -> String {
        guard let value = parameters.get(name) else { throw AtriumError.notFound() }
        return value
    }

    public func uuidParameter(_ name: String) throws -> UUID {
        guard let value = parameters.get(name).flatMap(UUID.init(uuidString:)) else { throw AtriumError.notFound() }
        return value
    }

    /// A query-string parameter, percent-decoded.
    public func query(_ name: String) -> String? {
        request.uri.queryParameters[Substring(name)].map(String.init)
    }

    /// A query parameter holding an RFC 3339 time (`?updated_since=`); 422 naming it
    /// unless it is a real time in years 1 to 9999.
    public func timeQuery(_ name: String) throws -> Date? {
        guard let text = query(name) else { return nil }
        guard let date = InputDomain.parseTimestamp(text) else { throw AtriumError.validation(field: name, AtriumJSON.timeProblem) }
        return date
    }

    /// A query parameter holding an id; 422 naming it unless it is a UUID.
    public func uuidQuery(_ name: String) throws -> UUID? {
        guard let text = query(name) else { return nil }
        guard let id = UUID.parsing(text) else { throw AtriumError.validation(field: name, "is not an id") }
        return id
    }

    /// The `?cursor=` of a list ordered by (time, id).
    public func keysetCursor() throws -> KeysetCursor? {
        try KeysetCursor.decode(query("cursor"))
    }

    /// The `?limit=` of a list route (1-200, default 50; 422 otherwise).
    public func limit() throws -> Int {
        try Pagination.limit(query("limit"))
    }

    /// The application role's pool, for work that needs transactions of its own next to
    /// the request's (streaming a large upload in chunks, a long export in pages).
    public var database: Database { services.database }

    /// A limit of the tenant's plan by name (`seats`, `crypto.exchanges`, …), or nil when
    /// the plan sets none (unlimited). The one place modules read their plan limits.
    public func quota(_ name: String) -> Int64? {
        services.plans?.plan(tenant.plan)?.quotas[name]
    }

    /// Counts one sign-in attempt on `account` (an email) against the catalog's
    /// per-account limits; 429 `rate_limited` when they are used up.
    public func limitSignInAttempt(account: String) async throws {
        guard let policies = services.plans?.authRateLimits.perAccount, !policies.isEmpty else { return }
        let decision = try await services.limiter.check(key: "auth-account:\(tenant.id):\(account.lowercased())", policies: policies)
        guard decision.allowed else { throw TenantMiddleware.rateLimited(decision) }
    }

    /// Runs `body` in one transaction where row-level security shows only this tenant's
    /// rows; `app.principal_id` names the caller for tables scoped to their owner.
    ///
    /// On an authenticated route the first block runs in the transaction the kernel
    /// opened to check the caller, on the request's one connection, and commits it; each
    /// later block is a transaction of its own on that connection.
    public func transaction<Result>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (TenantTransaction) async throws -> sending Result
    ) async throws -> sending Result {
        if let ambient { return try await body(ambient) }
        let tenantID = tenant.id
        let principalID = principal?.databaseID
        let logger = logger
        let jobs = services.jobs
        let metering = services.metering
        let channels = services.channels
        let seesAllOwned = ownership?.seesAll == true
        let ownerFilter = ownership?.ownerFilter
        func scoped(_ connection: PostgresConnection) async throws -> TenantTransaction {
            try await Self.scopeOwnership(seesAllOwned, connection, logger)
            return TenantTransaction(
                connection: connection, tenantID: tenantID, principalID: principalID, logger: logger, jobs: jobs, metering: metering,
                channels: channels, ownerFilter: ownerFilter)
        }
        func opened(_ connection: PostgresConnection, _ request: RequestTransaction) async throws -> TenantTransaction {
            var transaction = try await scoped(connection)
            transaction.gate = StatementGate(request: request)
            return transaction
        }
        guard let shared = requestTransaction else {
            return try await services.database.withTenantTransaction(tenantID, principal: principalID, logger: logger, isolation: isolation) { connection in
                try await body(try await scoped(connection))
            }
        }
        switch shared.lease() {
        case .opened:
            do {
                let result = try await body(try await opened(shared.connection, shared))
                try await shared.commit()
                shared.returnLease()
                return result
            } catch {
                await shared.rollback()
                shared.returnLease()
                throw error
            }
        case .reuse:
            defer { shared.returnLease() }
            return try await shared.connection.withTenantTransaction(tenantID, principal: principalID, logger: logger, isolation: isolation) { connection in
                try await body(try await scoped(connection))
            }
        case .none:
            return try await services.database.withTenantTransaction(tenantID, principal: principalID, logger: logger, isolation: isolation) { connection in
                try await body(try await scoped(connection))
            }
        }
    }

    /// Lets the transaction see every owner's rows (`app.owner_scope = 'any'`) for a
    /// caller holding `<prefix>.any`; others see their own, by `app.principal_id`.
    static func scopeOwnership(_ seesAll: Bool, _ connection: PostgresConnection, _ logger: Logger) async throws {
        guard seesAll else { return }
        try await connection.scopeToAllOwners(logger: logger)
    }
}

/// An open tenant-scoped transaction. Everything done through it commits or rolls back together.
public struct TenantTransaction: Sendable {
    public let connection: PostgresConnection
    public let tenantID: UUID
    /// The caller, also set as `app.principal_id` for owner-scoped tables.
    public let principalID: UUID?
    public let logger: Logger
    let jobs: JobQueue
    let metering: Metering
    /// The realtime channels the installed modules declare: `notify` refuses others.
    let channels: Set<String>
    /// The one owner whose rows an owned-records caller reaches, nil when it reaches every
    /// owner's (or the route is not owned). Row-level security enforces the scope either
    /// way; stores add it to list filters so the planner can use an owner index.
    public internal(set) var ownerFilter: UUID? = nil
    /// The statements `lastStatement` allows, and the request's transaction whose `COMMIT`
    /// it may send with the last one.
    var gate = StatementGate(request: nil)

    /// This transaction for a block whose statements others follow: its `lastStatement`
    /// sends no `COMMIT`, which the block's end sends instead.
    func committingAtBlockEnd() -> TenantTransaction {
        var transaction = self
        transaction.gate = StatementGate(request: nil)
        return transaction
    }

    /// Runs `body`, which runs one statement through this transaction, as the
    /// transaction's last: on the request's own connection the commit goes in the same
    /// write as that statement, so a block of one statement costs one round trip (a read
    /// from a session in memory: the scope and the statement in one write, committed by the
    /// statement's `Sync` with no `BEGIN` or `COMMIT`).
    ///
    /// Use it for the statement a block ends with: the transaction has ended when `body`
    /// returns (committed, or the error thrown), so another statement in `body`, or after
    /// it in the block, throws `StatementGate.Closed` before it is sent — on every
    /// connection, so a module that breaks the rule learns it in its tests. Elsewhere (a
    /// later block, a job) it runs `body` and the block commits as usual.
    public func lastStatement<Result>(
        isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> sending Result
    ) async throws -> sending Result {
        try gate.enterLast()
        defer { gate.exitLast() }
        guard let request = gate.request, let commit = request.commitWithNextStatement() else {
            return try await body()
        }
        let result: Result
        do {
            result = try await body()
        } catch {
            // PostgreSQL answered the COMMIT behind a failed statement with ROLLBACK (or it
            // was never sent); the statement's own error is the one to report.
            try? await request.settleCommit(commit)
            throw error
        }
        try await request.settleCommit(commit)
        return result
    }

    /// Runs `sql` in this transaction and returns its rows. The statement is prepared on
    /// the connection the first time it runs there (parsed and planned once, not once per
    /// request), so write statements whose text is the same on every call and let values
    /// vary only through interpolation.
    @discardableResult
    public func query(_ sql: SQL) async throws -> [PostgresRow] {
        try gate.admitStatement()
        return try await PreparedStatements.shared.rows(sql, on: connection, logger: logger)
    }

    /// Records usage of one of the module's meters in this transaction: rolled back with
    /// it, and recorded once per `idempotencyKey`, ever (a repeat changes nothing).
    ///
    /// In a request's first block it costs no round trip of its own: the record travels in
    /// front of the block's next statement (or its `COMMIT`), in the same write, and fails
    /// that statement if it fails. It locks no shared row: metered writes of one tenant do
    /// not queue behind each other (usage reads add the records not yet folded into the
    /// month's counters).
    ///
    /// With `quota` (from `TenantRequest.quota(_:)`), the month's usage may not pass it:
    /// checked and consumed atomically, 429 `quota_exceeded` otherwise. That needs the
    /// month's counter locked and read, so it runs at once, as a round trip of its own.
    public func recordUsage(
        _ meter: String, quantity: Int64 = 1, idempotencyKey: String, at time: Date = Date(), properties: [String: JSONValue] = [:],
        quota: Int64? = nil
    ) async throws {
        try gate.admitStatement()
        guard quota == nil else {
            try await metering.record(
                meter, quantity: quantity, idempotencyKey: idempotencyKey, at: time, properties: properties, tenantID: tenantID, quota: quota,
                on: connection)
            return
        }
        let statement = try metering.recordingStatement(
            meter, quantity: quantity, idempotencyKey: idempotencyKey, at: time, properties: properties, tenantID: tenantID)
        if gate.request?.sendWithNextStatement(statement) == true { return }
        _ = try await PreparedStatements.shared.rows(statement.sql, on: connection, logger: logger)
    }

    /// Enqueues a job for this tenant in the same transaction as the caller's writes.
    @discardableResult
    public func enqueue(
        _ kind: String, moduleID: String? = nil, payload: some Encodable, runAt: Date? = nil, uniqueKey: String? = nil
    ) async throws -> UUID? {
        // A module's job is skipped for tenants without the module; the kernel's always run.
        let owner = moduleID ?? kind.split(separator: ".").first.map(String.init)
        try gate.admitStatement()
        return try await jobs.enqueue(
            kind: kind, tenantID: tenantID, moduleID: owner == "kernel" ? nil : owner, payload: payload, runAt: runAt, uniqueKey: uniqueKey,
            on: connection)
    }
}

/// The kernel services route handlers reach through their request.
struct KernelServices: Sendable {
    var database: Database
    var directory: TenantDirectory
    var apiCalls: APICallCounter
    var jobs: JobQueue
    var tenants: TenantStore
    var enablement: ModuleEnablement
    var authenticator: any Authenticator
    var identity: Identity?
    var trustedProxies: TrustedProxies
    var plans: PlanCatalog?
    var limiter: any RateLimitStore
    var metering: Metering
    /// The realtime channels the installed modules declare.
    var channels: Set<String>
    var kit: ModuleKit
    var events: EventHub
}
