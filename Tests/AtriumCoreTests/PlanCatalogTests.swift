import AtriumCore
import Testing

@Suite("Plan catalog")
struct PlanCatalogTests {
    static let catalog = """
        plans:
          free:
            name: Free
            currency: USD
            price: 0
            modules: [crypto]
            quotas:
              seats: 3
              api_calls_per_month: 1000
              crypto.exchanges: 1
            rate_limits:
              daily: { limit: 200, window: 86400 }
              hourly: { limit: 50, window: 3600 }
          pro:
            name: Pro
            price: 1999
            modules: [crypto, portfolio]
            quotas: { api_calls_per_month: 10000, crypto.exchanges: 3 }
          enterprise:
            name: Enterprise
            price: 9999
            modules: [crypto, portfolio]
            quotas: { api_calls_per_month: 100000 }
          consultant:
            name: Stock consultant
            currency: INR
            price: 0
            modules: [portfolio]
            meters:
              portfolio.analyses: { per_unit: 500 }
              portfolio.advice: { per_unit: 200, free_units: 1 }
              portfolio.imports: { graduated: [ { up_to: 100, unit: 0 }, { unit: 2, flat: 100 } ] }
        """

    @Test func readsTheCryptoTrackerTiersAndTheConsultantPricing() throws {
        let catalog = try PlanCatalog.parse(Self.catalog, path: "plans.yaml", knownModules: ["crypto", "portfolio"])
        let free = try #require(catalog.plan("free"))
        #expect(free.monthlyFee == 0)
        #expect(free.quotas["crypto.exchanges"] == 1)
        #expect(free.quotas["api_calls_per_month"] == 1000)
        #expect(free.rateLimits.map(\.name) == ["hourly", "daily"])
        #expect(catalog.plan("pro")?.monthlyFee == 1999)
        #expect(catalog.plan("pro")?.currency == "USD")
        #expect(catalog.plan("enterprise")?.quotas["crypto.exchanges"] == nil)  // unlimited
        let consultant = try #require(catalog.plan("consultant"))
        #expect(consultant.currency == "INR")
        // 3 analyses and 2 pieces of advice (one free): 15.00 + 2.00 INR.
        let analyses = try #require(consultant.meters["portfolio.analyses"])
        let advice = try #require(consultant.meters["portfolio.advice"])
        #expect(analyses.model.amount(for: 3, freeUnits: analyses.freeUnits) + advice.model.amount(for: 2, freeUnits: advice.freeUnits) == 1700)
    }

    @Test func errorsNameTheFileAndLine() {
        func problem(_ yaml: String, modules: Set<String>? = ["crypto"]) -> String {
            do {
                _ = try PlanCatalog.parse(yaml, path: "plans.yaml", knownModules: modules)
                return ""
            } catch {
                return "\(error)"
            }
        }
        #expect(problem("plans:\n  free:\n    modules: [crypto, astrology]\n") == "plans.yaml:3: unknown module 'astrology'")
        #expect(problem("plans:\n  free:\n    price: -5\n") == "plans.yaml:3: price must be at least 0, not -5")
        #expect(problem("plans:\n  free:\n    price: 9.99\n") == "plans.yaml:3: price must be a whole number (minor units)")
        #expect(problem("plans:\n  free:\n    currency: dollars\n") == "plans.yaml:3: currency must be an ISO 4217 code such as USD")
        #expect(problem("plans:\n  free:\n    meters:\n      crypto.syncs: { graduated: [ { up_to: 10, unit: 1 }, { up_to: 5, unit: 1 }, { unit: 1 } ] }\n")
            == "plans.yaml:4: meter 'crypto.syncs': tier 2 overlaps the previous one (up_to 5 is not above 10)")
        #expect(problem("plans:\n  free:\n    meters:\n      crypto.syncs: { per_unit: -1 }\n") == "plans.yaml:4: per_unit must be at least 0, not -1")
        #expect(problem("nothing: here\n").hasPrefix("plans.yaml:1: needs a `plans:` mapping"))
        // A quota nothing enforces: a misspelt kernel quota, a module's without the module.
        #expect(problem("plans:\n  free:\n    quotas:\n      seat: 3\n").hasPrefix("plans.yaml:4: unknown quota 'seat'"))
        #expect(problem("plans:\n  free:\n    quotas:\n      beauty.staff: 3\n").hasPrefix("plans.yaml:4: unknown quota 'beauty.staff'"))
        #expect(problem("plans:\n  free:\n    quotas:\n      crypto.exchanges: 1\n      seats: 3\n") == "")
    }
}

/// A plan's price for a meter nothing records is refused at start, naming it.
@Suite struct UndeclaredMeterTests {
    @Test func aPricedMeterNoModuleDeclaresIsRefused() throws {
        let registry = try ModuleRegistry([])
        let priced = try PlanCatalog.parse(
            "meters:\n  partner.calls: { aggregation: count, unit: call }\nplans:\n  free:\n    meters:\n      kernel.api_calls: { per_unit: 1 }\n      partner.calls: { per_unit: 2 }\n",
            path: "plans.yaml")
        try priced.requireDeclaredMeters(registry: registry, source: "plans.yaml")
        let misspelt = try PlanCatalog.parse("plans:\n  free:\n    meters:\n      kernel.api_cals: { per_unit: 1 }\n", path: "plans.yaml")
        let error = #expect(throws: ConfigurationError.self) { try misspelt.requireDeclaredMeters(registry: registry, source: "plans.yaml") }
        #expect(error?.description.contains("free: kernel.api_cals") == true, "\(String(describing: error))")
    }
}
