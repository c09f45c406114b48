public import ArgumentParser
public import AtriumCore
import Foundation

/// Portfolio: users' investment portfolios, their ledgers booked exactly (FIFO, moving
/// average or named lots, splits applied when read, cash derived per currency), and the
/// tenant's market data that values them. Registered through `AtriumModule` like any
/// module; it uses only AtriumCore's public API.
///
/// Access: an `investor` keeps their own portfolios; a `portfolio_advisor` also reads the
/// portfolios of the clients a manager assigned them (a kernel owner delegation, read
/// only); a `portfolio_manager` (and `admin`) sees every portfolio of the tenant, gives
/// one to another owner, assigns advisors and keeps the market data. Owner scope is enforced by the tables' row-level security, whatever a query says.
public struct PortfolioModule: AtriumModule {
    let advisor: any PortfolioAdvisor
    let scorer: any RiskScorer

    /// - Parameters:
    ///   - advisor: what turns an analysis's inputs into advice; `rules/1` unless another is given.
    ///   - scorer: what turns the risk survey's answers into a profile; `rubric/1` unless another is given.
    public init(advisor: any PortfolioAdvisor = RulesAdvisor(), scorer: any RiskScorer = RubricScorer()) {
        self.advisor = advisor
        self.scorer = scorer
    }

    public var id: String { "portfolio" }
    public var version: String { "0.1.0" }
    public var requiredKernelVersion: String { "0.1" }

    public var permissions: [PermissionDefinition] {
        [
            .init(PortfolioPermission.own, description: "Keep your own portfolios and their ledgers"),
            .init(PortfolioPermission.any, description: "Read and edit every portfolio of the tenant"),
            .init(PortfolioPermission.assign, description: "Give a portfolio to another owner"),
            .init(PortfolioPermission.marketWrite, description: "Change the tenant's market data (instruments, prices, FX, splits)"),
            .init(PortfolioPermission.clients, description: "Read the portfolios of the clients you are assigned (never change them)"),
            .init(PortfolioPermission.assignClients, description: "Assign advisors to clients"),
        ]
    }

    public var roleGrants: [String: [String]] {
        let manager = [
            PortfolioPermission.own, PortfolioPermission.any, PortfolioPermission.assign, PortfolioPermission.marketWrite, PortfolioPermission.clients,
            PortfolioPermission.assignClients,
        ]
        return [
            "investor": [PortfolioPermission.own],
            "portfolio_advisor": [PortfolioPermission.own, PortfolioPermission.clients],
            "portfolio_manager": manager,
            "admin": manager,
        ]
    }

    public var meters: [MeterDefinition] {
        [
            MeterDefinition(Self.analysisMeter, aggregation: .count, unit: "analysis"),
            MeterDefinition(Self.adviceMeter, aggregation: .sum, unit: "advice"),
        ]
    }

    /// One per analysis written (what the stock consultant bills 5.00 INR for).
    public static let analysisMeter = "portfolio.analysis"
    /// One per advice item an analysis gave (2.00 INR each on the consultant plan).
    public static let adviceMeter = "portfolio.advice"
    /// A plan's monthly cap on analyses (`quotas: {portfolio.analyses: N}`); none when absent.
    public static let analysesQuota = "portfolio.analyses"

    public var jobs: [JobDefinition] { [Self.marketImports.job, TransactionImports.imports.job, ValuationStore.job, FeedDirectory.job] }

    public var schedules: [ScheduleDefinition] { [ValuationStore.nightly] + FeedDirectory.schedules }

    /// The chat's outside model, when `ATRIUM_PORTFOLIO_LLM_URL` names one.
    public func checkSettings(_ settings: ModuleSettings) throws {
        _ = try settings.url("llm_url")
        _ = try settings.int("llm_timeout_seconds", default: 20, in: 1...120)
    }

    static func outsideModel(_ context: ModuleContext) -> OpenAICompatibleResponder? {
        // `checkSettings` refused malformed values at start.
        guard let url = try? context.settings.url("llm_url") else { return nil }
        let seconds = (try? context.settings.int("llm_timeout_seconds", default: 20, in: 1...120)) ?? 20
        return OpenAICompatibleResponder(
            url: url, key: context.settings.string("llm_key"), model: context.settings.string("llm_model") ?? "llama-3.1-8b-instant",
            timeout: .seconds(seconds), http: context.http)
    }

    public var commands: [any ParsableCommand.Type] { [PortfolioCommand.self] }

    /// Instruments, closes, FX rates, splits and the consultant's `stocks.csv` from files
    /// (`POST market/imports?entity=`), by the kernel's bulk import.
    static let marketImports = BulkImport(module: "portfolio", entities: MarketImports.all, path: "market/imports")

    public func migrations() throws -> [Migration] {
        try Migration.fromFiles(EmbeddedMigrations.files, owner: id)
    }

    public func routes(_ routes: ModuleRoutes) {
        ProfileRoutes(scorer: scorer).register(routes)
        PortfolioRoutes().register(routes)
        TransactionRoutes().register(routes)
        ManualPriceRoutes().register(routes)
        ReportRoutes().register(routes)
        MarketRoutes().register(routes)
        ClientRoutes().register(routes)
        AnalysisRoutes(advisor: advisor).register(routes)
        ChatRoutes(primary: Self.outsideModel(routes.context), rules: RulesResponder()).register(routes)
        FeedRoutes().register(routes)
        Self.marketImports.register(routes, owned: "portfolio.records", requiring: PortfolioPermission.marketWrite)
        TransactionImports.imports.register(routes, owned: "portfolio.records", requiring: PortfolioPermission.own)
    }
}

/// The module's permissions.
public enum PortfolioPermission {
    public static let own = "portfolio.records.own"
    public static let any = "portfolio.records.any"
    public static let assign = "portfolio.owners.assign"
    public static let marketWrite = "portfolio.market.write"
    public static let clients = "portfolio.clients"
    public static let assignClients = "portfolio.clients.assign"
}

/// How the module's routes declare access.
enum PortfolioAccess {
    /// Portfolios and everything in them are owned by a user.
    static let records = RouteAccess.owned("portfolio.records")
    /// The kernel delegation scope an advisor's assignment to a client is granted in.
    static let scope = "portfolio.records"
    /// The scope an assigned advisor writes analyses for a client in.
    static let analysesScope = "portfolio.analyses"
    static let recordRoutes = OwnedRecordRoutes(access: records, assignPermission: PortfolioPermission.assign)
    /// Market data: anyone who keeps a portfolio reads it; the market permission changes it.
    static let marketRead = RouteAccess.permission(PortfolioPermission.own)
    static let marketWrite = RouteAccess.permission(PortfolioPermission.marketWrite)
}
