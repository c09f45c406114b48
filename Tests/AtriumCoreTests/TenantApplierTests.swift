import AtriumCore
import AtriumTesting
import Foundation
import Testing

@Suite("Tenant files")
struct TenantApplierTests {
    @Test func filesMustKeepToThePlanCatalog() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let registry = try ModuleRegistry([NotesModule()])
        let plans = try PlanCatalog.parse("plans:\n  free:\n    modules: []\n  pro:\n    modules: [notes]\n", path: "plans.yaml", knownModules: ["notes"])
        let applier = TenantApplier(registry: registry, hasher: testHasher, plans: plans, logger: TestDatabase.logger)
        func problem(_ yaml: String) async -> String {
            do {
                let file = try TenantFile.parse(yaml, path: "acme.yaml")
                _ = try await db.withOwner { try await applier.apply([file], on: $0) }
                return ""
            } catch {
                return "\(error)"
            }
        }
        #expect(await problem("slug: acme\nname: Acme\nplan: gold\n") == "acme.yaml: plan 'gold' is not in the plan catalog")
        #expect(await problem("slug: acme\nname: Acme\nmodules: [notes]\n") == "acme.yaml: the 'free' plan does not include the 'notes' module")
        #expect(await problem("slug: acme\nname: Acme\nplan: pro\nmodules: [notes]\n") == "")
        #expect(await problem("slug: Bad Slug\nname: x\n").hasPrefix("acme.yaml: slug:"))
        // Nothing was half-applied by the refused files: only the valid one created a tenant.
        let tenants = try await db.withOwner { try await TenantStore(logger: TestDatabase.logger).list(on: $0) }
        #expect(tenants.map(\.slug) == ["acme"])
        #expect(tenants.first?.plan == "pro")
    }
}
