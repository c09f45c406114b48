public import Foundation
import Logging
import PostgresNIO

/// Budgets a module spends across every process: an exchange's API weight per minute,
/// a mail provider's sends per hour. The state lives in PostgreSQL (the rate-limit
/// store every process shares), so ten workers syncing one account share one budget.
public struct SharedLimits: Sendable {
    let store: PostgresRateLimitStore
    let namespace: String
    let clock: any AtriumClock

    /// `namespace` keeps one module's (and one tenant's) keys apart from another's.
    init(database: Database, namespace: String, clock: any AtriumClock, logger: Logger) {
        self.store = PostgresRateLimitStore(database: database, logger: logger, clock: { clock.now })
        self.namespace = namespace
        self.clock = clock
    }

    /// Spends `cost` of `policy`'s quota on `key` when the whole cost fits, and says so;
    /// a refused spend takes nothing and tells in `retryAfter` how many seconds to wait.
    /// A cost above the quota takes the whole quota, when it is whole.
    public func spend(_ cost: Int64 = 1, of policy: Plan.RateLimit, key: String) async throws -> RateLimitDecision {
        try await store.check([RateLimitRule(key: "\(namespace):\(key)", policy: policy, cost: cost)], now: clock.now)
    }

    /// No spend of `policy` on `key` before `until`, in any process; after it the quota
    /// refills from empty. For a service that answered "come back later" (429 or 418
    /// with `Retry-After`, or a used-weight header past the budget): every worker waits,
    /// not only the one that was told.
    public func hold(_ policy: Plan.RateLimit, key: String, until: Date) async throws {
        try await store.hold(RateLimitRule(key: "\(namespace):\(key)", policy: policy), until: until)
    }
}

extension JobContext {
    /// The module's shared budgets, keyed within this job's tenant.
    public var limits: SharedLimits {
        SharedLimits(database: database, namespace: "\(module.moduleID):\(tenantID?.uuidString.lowercased() ?? "platform")", clock: module.clock, logger: logger)
    }

    /// The module's budgets shared by every tenant: for what an outside service counts
    /// across all of them (an exchange weighs requests per IP address, whichever account
    /// they read), one key is one budget whichever tenant's job spends it.
    public var limitsAcrossTenants: SharedLimits {
        SharedLimits(database: database, namespace: "\(module.moduleID):all-tenants", clock: module.clock, logger: logger)
    }

    /// A limit of the tenant's plan by name (`crypto.exchanges`, `portfolio.analyses`),
    /// or nil when the plan sets none: the quotas the serving process published from
    /// `plans.yaml`, read in the job's tenant transaction.
    public func quota(_ name: String) async throws -> Int64? {
        guard tenantID != nil else { return nil }
        return try await transaction { transaction in
            try await transaction.connection.query(
                """
                SELECT q.value FROM plan_quotas q JOIN tenants t ON t.plan = q.plan
                WHERE t.id = \(transaction.tenantID) AND q.name = \(name)
                """, logger: transaction.logger
            ).collect().first?.decode(Int64.self)
        }
    }
}

extension ModuleContext {
    /// This module's shared budgets within `request`'s tenant: the same budgets the
    /// module's jobs spend for that tenant.
    public func limits(for request: TenantRequest) -> SharedLimits {
        SharedLimits(database: request.database, namespace: "\(moduleID):\(request.tenant.id.uuidString.lowercased())", clock: clock, logger: logger)
    }
}
