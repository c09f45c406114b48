import AtriumCore
import AtriumCrypto
import AtriumPortfolio
import AtriumSales
import Foundation
import Testing

/// The plan catalog and demo tenants in `tenants/` are what `make run` starts with; they
/// must load against the modules this binary installs.
@Suite("Shipped tenants/ configuration")
struct ShippedConfigurationTests {
    static let tenants = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appending(path: "tenants")

    @Test func thePlanCatalogLoadsAndPricesAsDocumented() throws {
        let catalog = try PlanCatalog.load(Self.tenants.appending(path: "plans.yaml"), knownModules: ["sales", "portfolio", "crypto"])
        let free = try #require(catalog.plan("free"))
        #expect(free.quotas["api_calls_per_month"] == 1000)
        #expect(free.quotas["seats"] == 3)
        #expect(free.rateLimits.map(\.name) == ["hourly", "daily"])
        #expect(catalog.plan("pro")?.monthlyFee == 1999)
        #expect(catalog.plan("enterprise")?.monthlyFee == 9999)
        #expect(catalog.plan("enterprise")?.quotas["seats"] == nil)
        #expect(catalog.allows("sales", on: "pro"))
        #expect(!catalog.allows("sales", on: "free"))
        #expect(!catalog.authRateLimits.perIP.isEmpty)
        // The consultant: 5.00 INR per analysis and 2.00 per advice.
        let consultant = try #require(catalog.plan("consultant"))
        let analyses = try #require(consultant.meters["portfolio.analysis"])
        let advice = try #require(consultant.meters["portfolio.advice"])
        #expect(catalog.allows("portfolio", on: "consultant"))
        #expect(consultant.currency == "INR")
        #expect(analyses.model.amount(for: 4) + advice.model.amount(for: 3) == 2600)
        #expect(catalog.meters.map(\.name) == ["advisory.advice_generated", "advisory.portfolio_analyses"])
    }

    /// The binary carries the shipped catalog, for a server whose folder has none.
    @Test func theBuiltInCatalogIsTheShippedFile() throws {
        let shipped = try PlanCatalog.load(Self.tenants.appending(path: "plans.yaml"), knownModules: ["sales", "portfolio", "crypto"])
        let builtIn = try PlanCatalog.builtIn(knownModules: ["sales", "portfolio", "crypto"])
        #expect(builtIn.plans.keys.sorted() == shipped.plans.keys.sorted())
        for (id, plan) in shipped.plans {
            #expect(builtIn.plan(id)?.quotas == plan.quotas, "\(id)")
            #expect(builtIn.plan(id)?.rateLimits.map(\.limit) == plan.rateLimits.map(\.limit), "\(id)")
        }
    }

    /// A folder without plans.yaml gets the built-in catalog, with its limits: never none.
    @Test func aServerWithoutAPlansFileUsesTheBuiltInCatalog() throws {
        let empty = FileManager.default.temporaryDirectory.appending(path: "atrium-no-plans-\(UUID().uuidString)")
        let configuration = try AtriumConfiguration(
            environment: [:], registry: try ModuleRegistry([SalesModule(), PortfolioModule(), CryptoModule()]), dataDirectory: empty, plansFile: empty.appending(path: "plans.yaml"))
        #expect(configuration.plansSource == PlanCatalog.builtInSource)
        #expect(configuration.plans?.plan("free")?.quotas["api_calls_per_month"] == 1000)
    }

    @Test func theDemoTenantsParseAndKeepToTheirPlans() throws {
        let catalog = try PlanCatalog.load(Self.tenants.appending(path: "plans.yaml"), knownModules: ["sales", "portfolio", "crypto"])
        let files = try TenantFile.load(directory: Self.tenants)
        #expect(files.map(\.slug).sorted() == ["acme", "consult", "glow"])
        for file in files {
            for module in file.modules ?? [] { #expect(catalog.allows(module, on: file.plan ?? "free"), "\(file.slug) may enable \(module)") }
        }
        #expect(SalesModule().id == "sales")
    }
}
