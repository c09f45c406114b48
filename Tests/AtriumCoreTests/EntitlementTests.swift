import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@Suite("Plans decide which modules a tenant may enable")
struct EntitlementTests {
    let catalog: PlanCatalog

    init() throws {
        catalog = try PlanCatalog.parse(
            "plans:\n  free:\n    modules: []\n  pro:\n    price: 1999\n    modules: [notes]\n", path: "plans.yaml", knownModules: ["notes"])
    }

    @Test func upgradeEnablesDowngradeDisablesAndKeepsTheData() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme")
        let catalog = self.catalog
        let logger = TestDatabase.logger
        try await db.withApp { database in
            let registry = try ModuleRegistry([NotesModule()])
            let dependencies = ApplicationDependencies(
                database: database, registry: registry, authenticator: TestAuthenticator(), plans: catalog, logger: logger,
                expectedMigrations: try registry.allMigrations())
            let app = Application(router: buildRouter(dependencies), logger: logger)
            try await app.test(.router) { client in
                let admin: HTTPFields = [.authorization: TestAuthenticator.header(acme, "kernel.modules.manage", "notes.read", "notes.write")]
                let refused = try await client.execute(uri: "/v1/tenants/acme/modules/notes", method: .put, headers: admin)
                #expect(refused.status == .forbidden)
                #expect(json(refused)["code"]?.string == "plan_upgrade_required")
                #expect(try await client.execute(uri: "/v1/tenants/acme/modules/astrology", method: .put, headers: admin).status == .notFound)

                let upgrade = try await db.withOwner {
                    try await PlanChange(catalog: catalog, logger: logger).change(slug: "acme", to: "pro", actor: .init(type: .operator), on: $0)
                }
                #expect(upgrade.from == "free")
                // With the plan allowing it, only the permission check can refuse a member.
                let member: HTTPFields = [.authorization: TestAuthenticator.header(acme, "notes.read")]
                let memberRefused = try await client.execute(uri: "/v1/tenants/acme/modules/notes", method: .put, headers: member)
                #expect(memberRefused.status == .forbidden)
                #expect(json(memberRefused)["code"]?.string == "permission_denied")
                let enabled = try await client.execute(uri: "/v1/tenants/acme/modules/notes", method: .put, headers: admin)
                #expect(enabled.status == .ok)
                #expect(json(enabled)["enabled"] == true)
                var created = admin
                created[.contentType] = "application/json"
                #expect(try await client.execute(uri: "/v1/tenants/acme/notes/notes", method: .post, headers: created, body: ByteBuffer(string: #"{"title":"kept"}"#)).status == .created)

                let downgrade = try await db.withOwner {
                    try await PlanChange(catalog: catalog, logger: logger).change(slug: "acme", to: "free", actor: .init(type: .operator), on: $0)
                }
                #expect(downgrade.disabledModules == ["notes"])
                let disabled = try await client.execute(uri: "/v1/tenants/acme/notes/notes", method: .get, headers: admin)
                #expect(json(disabled)["code"]?.string == "module_disabled")

                _ = try await db.withOwner {
                    try await PlanChange(catalog: catalog, logger: logger).change(slug: "acme", to: "pro", actor: .init(type: .operator), on: $0)
                }
                #expect(try await client.execute(uri: "/v1/tenants/acme/modules/notes", method: .put, headers: admin).status == .ok)
                let notes = json(try await client.execute(uri: "/v1/tenants/acme/notes/notes", method: .get, headers: admin))
                #expect(notes["data"]?.array?.first?["title"]?.string == "kept")
                #expect(try await client.execute(uri: "/v1/tenants/acme/modules/notes", method: .delete, headers: admin).status == .ok)
            }
        }
        let unknownPlan = await #expect(throws: AtriumError.self) {
            try await db.withOwner { try await PlanChange(catalog: catalog, logger: logger).change(slug: "acme", to: "gold", actor: .init(type: .operator), on: $0) }
        }
        #expect(unknownPlan?.code == "validation_failed")
    }
}
