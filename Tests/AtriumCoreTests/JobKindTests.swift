import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Synchronization
import Testing

/// A module whose route enqueues a typed job that writes as the user who asked.
struct TallyModule: AtriumModule {
    struct Bump: Codable, Sendable {
        var userID: UUID
        var amount: Int64
    }

    /// What the job saw, for the test to read.
    final class Seen: Sendable {
        let counts = Mutex<[String: Int]>([:])
    }

    static let bump = JobKind<Bump>("tally.bump")
    let seen: Seen

    var id: String { "tally" }
    var version: String { "1.0.0" }
    var requiredKernelVersion: String { "0.1" }
    var permissions: [PermissionDefinition] { [.init("tally.records.own", description: "Own tallies")] }

    func migrations() throws -> [Migration] {
        [Migration(owner: "tally", version: 1, fileName: "0001_tally.sql", sql: """
            CREATE TABLE tally_entries (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL DEFAULT gen_random_uuid(),
                owner_id uuid NOT NULL,
                amount bigint NOT NULL,
                PRIMARY KEY (tenant_id, id)
            );
            CALL atrium_owned_table('tally_entries');
            """)]
    }

    var jobs: [JobDefinition] {
        let seen = seen
        return [Self.bump.definition { context, bump in
            try await context.transaction(actingAs: bump.userID) { transaction -> Void in
                try await transaction.connection.query(
                    "INSERT INTO tally_entries (tenant_id, owner_id, amount) VALUES (\(transaction.tenantID), \(bump.userID), \(bump.amount))",
                    logger: transaction.logger)
            }
            let asSomeoneElse = try await context.transaction(actingAs: UUID()) { transaction in
                try await transaction.connection.query("SELECT count(*)::int FROM tally_entries", logger: transaction.logger).first().decode(Int.self)
            }
            let asEveryone = try await context.transaction(seesAllOwners: true) { transaction in
                try await transaction.connection.query("SELECT count(*)::int FROM tally_entries", logger: transaction.logger).first().decode(Int.self)
            }
            seen.counts.withLock { $0 = ["someone_else": asSomeoneElse, "everyone": asEveryone] }
        }]
    }

    func routes(_ routes: ModuleRoutes) {
        routes.on(.post, "bumps", summary: "Bump later", access: .owned("tally.records"), response: NoContent.self, status: .noContent) { request in
            let user = try request.requireOwnership().userID
            _ = try await request.transaction { transaction in
                try await transaction.enqueue(Self.bump, Bump(userID: user, amount: 3))
            }
            return NoContent()
        }
    }
}

@Suite struct JobKindTests {
    @Test func aTypedJobWritesAsTheUserItNamesInItsTenant() async throws {
        let seen = TallyModule.Seen()
        let module = TallyModule(seen: seen)
        let db = try await TestDatabase.create(modules: [module])
        let tenant = try await db.createTenant("acme", modules: ["tally"])
        let ann = UUID()
        try await withTestApp(db, modules: [module]) { client, _ in
            let response = try await client.execute(
                uri: "/v1/tenants/acme/tally/bumps", method: .post,
                headers: [.authorization: TestAuthenticator.header(tenant, principal: ann, "tally.records.own")], body: nil)
            #expect(response.status == .noContent)
        }
        let logger = TestDatabase.logger
        let ran = try await db.withApp { database in
            try await JobWorker(
                database: database, registry: try ModuleRegistry([module]), configuration: .init(workerID: "tally"), kit: .ephemeral(logger: logger),
                logger: logger
            ).runAvailableJobs()
        }
        #expect(ran == 1)
        #expect(seen.counts.withLock { $0 } == ["someone_else": 0, "everyone": 1])
        let owner = try await db.withOwner { connection in
            try await connection.withTenantTransaction(tenant.id, logger: logger) { connection in
                try await connection.scopeToAllOwners(logger: logger)
                return try await connection.query("SELECT owner_id FROM tally_entries", logger: logger).collect().first?.decode(UUID.self)
            }
        }
        #expect(owner == ann)
    }

    /// Two tenants' jobs spend their own budgets apart, and one budget together.
    @Test func tenantsShareABudgetAcrossTenantsAndKeepTheirOwnApart() async throws {
        let seen = TallyModule.Seen()
        let module = SharedBudgetModule(seen: seen)
        let db = try await TestDatabase.create(modules: [module])
        let tenants = [try await db.createTenant("acme", modules: ["shared"]), try await db.createTenant("zeta", modules: ["shared"])]
        try await db.withApp { database in
            for tenant in tenants {
                try await runJob("shared.sync", of: module, tenantID: tenant.id, payload: [String: String](), database: database)
            }
        }
        #expect(seen.counts.withLock { $0 } == ["own allowed": 2, "shared allowed": 1, "shared refused": 1])
    }

    /// A job reads its tenant's plan quota and spends a budget every process shares.
    @Test func aJobReadsItsPlanQuotaAndSpendsASharedBudget() async throws {
        let seen = TallyModule.Seen()
        let module = BudgetModule(seen: seen)
        let db = try await TestDatabase.create(modules: [module])
        let tenant = try await db.createTenant("acme", modules: ["budget"])
        let catalog = try PlanCatalog.parse("plans:\n  free:\n    modules: [budget]\n    quotas: { budget.accounts: 3 }\n", path: "plans.yaml")
        try await db.withOwner { try await catalog.publishQuotas(on: $0, logger: TestDatabase.logger) }
        let logger = TestDatabase.logger
        try await db.withApp { database in
            let queue = JobQueue(logger: logger)
            for _ in 0..<3 {
                _ = try await database.withTenantTransaction(tenant.id, logger: logger) { connection in
                    try await queue.enqueue(kind: "budget.sync", tenantID: tenant.id, moduleID: "budget", payload: [String: String](), on: connection)
                }
            }
            // Each job spends through limits of its own, as a job in another process
            // would: what they share is the budget's state in PostgreSQL.
            let ran = try await JobWorker(
                database: database, registry: try ModuleRegistry([module]), configuration: .init(workerID: "budget"),
                kit: .ephemeral(logger: logger), logger: logger
            ).runAvailableJobs()
            #expect(ran == 3)
        }
        #expect(seen.counts.withLock { $0 } == ["quota": 3, "allowed": 2, "refused": 1])
    }
}

/// A module whose job spends 6 of a 10-per-minute budget twice: once of the tenant's own
/// (`limits`), once of the one every tenant shares (`limitsAcrossTenants`).
struct SharedBudgetModule: AtriumModule {
    let seen: TallyModule.Seen
    var id: String { "shared" }
    var version: String { "1.0.0" }
    var requiredKernelVersion: String { "0.1" }
    func routes(_ routes: ModuleRoutes) {}

    var jobs: [JobDefinition] {
        let seen = seen
        return [JobDefinition(kind: "shared.sync") { context in
            let policy = Plan.RateLimit(name: "weight", limit: 10, windowSeconds: 60)
            let own = try await context.limits.spend(6, of: policy, key: "host")
            let shared = try await context.limitsAcrossTenants.spend(6, of: policy, key: "host")
            seen.counts.withLock { counts in
                counts["own " + (own.allowed ? "allowed" : "refused"), default: 0] += 1
                counts["shared " + (shared.allowed ? "allowed" : "refused"), default: 0] += 1
            }
        }]
    }
}

/// A module whose job reads a plan quota and spends 4 of a 10-per-minute budget.
struct BudgetModule: AtriumModule {
    let seen: TallyModule.Seen
    var id: String { "budget" }
    var version: String { "1.0.0" }
    var requiredKernelVersion: String { "0.1" }
    func routes(_ routes: ModuleRoutes) {}

    var jobs: [JobDefinition] {
        let seen = seen
        return [JobDefinition(kind: "budget.sync") { context in
            let quota = try await context.quota("budget.accounts")
            let decision = try await context.limits.spend(4, of: Plan.RateLimit(name: "weight", limit: 10, windowSeconds: 60), key: "account-1")
            seen.counts.withLock { counts in
                counts["quota"] = quota.map(Int.init)
                counts[decision.allowed ? "allowed" : "refused", default: 0] += 1
            }
        }]
    }
}
