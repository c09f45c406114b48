import AtriumCore
import AtriumTesting
import Foundation
import PostgresNIO
import Testing

/// A module that writes down, in its own table, every plan change it is told of (and can
/// be made to refuse one).
struct PlanWatcherModule: AtriumModule {
    var refuses = false
    var id: String { "watcher" }
    var version: String { "1.0.0" }
    var requiredKernelVersion: String { "0.1" }
    func routes(_ routes: ModuleRoutes) {}

    func migrations() throws -> [Migration] {
        [Migration(owner: "watcher", version: 1, fileName: "0001_watcher.sql", sql: """
            CREATE TABLE watcher_changes (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL DEFAULT gen_random_uuid(),
                plan text NOT NULL,
                quota bigint,
                PRIMARY KEY (tenant_id, id)
            );
            CALL atrium_tenant_table('watcher_changes');
            """)]
    }

    func planChanged(to plan: String, on transaction: TenantTransaction) async throws {
        if refuses { throw AtriumError.conflict("the watcher refuses") }
        // The new plan's quota is what the database shows already.
        try await transaction.query(
            """
            INSERT INTO watcher_changes (tenant_id, plan, quota)
            SELECT \(transaction.tenantID), \(plan), (SELECT q.value FROM plan_quotas q JOIN tenants t ON t.plan = q.plan
                                                    WHERE t.id = \(transaction.tenantID) AND q.name = 'watcher.things')
            """)
    }
}

/// `PlanChange` tells the modules a tenant keeps, in the change's own transaction.
@Suite struct PlanChangeHookTests {
    @Test func keptModulesAreToldInTheChangesTransactionAndCanRefuseIt() async throws {
        let db = try await TestDatabase.create(modules: [PlanWatcherModule()])
        let tenant = try await db.createTenant("acme", modules: ["watcher"])
        let catalog = try PlanCatalog.parse(
            """
            plans:
              free: { modules: [watcher], quotas: { watcher.things: 5 } }
              small: { modules: [watcher], quotas: { watcher.things: 1 } }
              bare: { modules: [] }
            """, path: "plans.yaml", knownModules: ["watcher"])
        let logger = TestDatabase.logger
        try await db.withOwner { try await catalog.publishQuotas(on: $0, logger: logger) }
        func changes() async throws -> [String] {
            try await db.withOwner { connection in
                try await connection.query("SELECT set_config('app.tenant_id', \(tenant.id.uuidString), false)", logger: logger)
                return try await connection.query("SELECT plan || ':' || coalesce(quota::text, '-') FROM watcher_changes ORDER BY plan", logger: logger)
                    .collect().map { try $0.decode(String.self) }
            }
        }
        func change(to plan: String, modules: [any AtriumModule]) async throws {
            _ = try await db.withOwner {
                try await PlanChange(catalog: catalog, modules: modules, logger: logger).change(slug: "acme", to: plan, actor: .init(type: .operator), on: $0)
            }
        }

        try await change(to: "small", modules: [PlanWatcherModule()])
        #expect(try await changes() == ["small:1"], "told, with the new plan's quota in place")
        // A module that refuses rolls the change back.
        await #expect(throws: AtriumError.self) { try await change(to: "free", modules: [PlanWatcherModule(refuses: true)]) }
        let plan = try await db.withOwner { connection in
            try await connection.query("SELECT plan FROM tenants WHERE id = \(tenant.id)", logger: logger).collect().first?.decode(String.self)
        }
        #expect(plan == "small")
        // A plan without the module disables it, and it is not told.
        try await change(to: "bare", modules: [PlanWatcherModule()])
        #expect(try await changes() == ["small:1"])
    }
}
