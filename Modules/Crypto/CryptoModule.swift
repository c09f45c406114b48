public import ArgumentParser
public import AtriumCore
import Foundation

/// Crypto: users connect exchange accounts by read-only API keys, kept sealed at rest
/// under a per-tenant data key (itself sealed by the kernel's module key, so a master-key
/// rotation re-wraps it). Registered through `AtriumModule` like any module; it uses only
/// AtriumCore's public API.
///
/// Access: a `member` keeps their own connections; an `admin` sees everyone's. Another
/// owner's connection answers 404, as a missing one does (row-level security).
///
/// Settings: `ATRIUM_CRYPTO_BINANCE_URL` (default `https://api.binance.com`), the
/// operator's and never a tenant's; `ATRIUM_CRYPTO_OUTBOUND_ALLOW=loopback` lets it
/// point at a local simulator; `ATRIUM_CRYPTO_BINANCE_WEIGHT_PER_MINUTE` (4800),
/// `ATRIUM_CRYPTO_EXCHANGE_TIMEOUT_SECONDS` (10), `ATRIUM_CRYPTO_EXCHANGE_BACKOFF_MS` (500,
/// the first retry's wait after a 5xx or timeout).
public struct CryptoModule: AtriumModule {
    /// The offset to Binance's clock, measured once for the process.
    let binanceClock = BinanceClock()
    /// Markets and prices for this process, at most five minutes old.
    let marketData = MarketData()

    public init() {}

    public var id: String { "crypto" }
    public var version: String { "0.1.0" }
    public var requiredKernelVersion: String { "0.1" }

    public var permissions: [PermissionDefinition] {
        [
            .init(CryptoPermission.own, description: "Connect and read your own exchange accounts"),
            .init(CryptoPermission.any, description: "Read and disconnect every exchange account of the tenant"),
            .init(CryptoPermission.assign, description: "Give an exchange connection to another owner"),
        ]
    }

    public var roleGrants: [String: [String]] {
        [
            "member": [CryptoPermission.own],
            "admin": [CryptoPermission.own, CryptoPermission.any, CryptoPermission.assign],
        ]
    }

    public func checkSettings(_ settings: ModuleSettings) throws {
        _ = try settings.url("binance_url")
        _ = try settings.int("binance_weight_per_minute", default: Self.defaultWeightPerMinute, in: 1...6000)
        _ = try settings.int("exchange_timeout_seconds", default: 10, in: 1...120)
        _ = try settings.int("exchange_backoff_ms", default: 500, in: 1...60_000)
    }

    /// 80 % of Binance's 6,000 a minute per IP address, leaving room for anything else
    /// calling from the same address.
    static let defaultWeightPerMinute = 4800

    /// The plan's cap on how many connections a tenant keeps (`quotas: {crypto.exchanges: N}`);
    /// none when absent.
    public static let exchangesQuota = "crypto.exchanges"
    /// Seconds between a connection's scheduled syncs on the plan (at least 300, also the
    /// value without one); a manual sync inside it answers 429 `sync_too_soon`.
    public static let syncIntervalQuota = "crypto.sync_interval_seconds"
    /// One per sync run that reached the exchange.
    public static let syncsMeter = "crypto.syncs"
    /// Trades a sync brought in that were not there before.
    public static let tradesMeter = "crypto.trades_ingested"

    public var meters: [MeterDefinition] {
        [
            MeterDefinition(Self.syncsMeter, aggregation: .count, unit: "sync"),
            MeterDefinition(Self.tradesMeter, aggregation: .sum, unit: "trade"),
        ]
    }

    static func binanceURL(_ settings: ModuleSettings) -> URL {
        // `checkSettings` refused a malformed value at start.
        ((try? settings.url("binance_url")) ?? nil) ?? URL(string: "https://api.binance.com")!
    }

    public var commands: [any ParsableCommand.Type] { [CryptoCommand.self] }

    /// A downgrade pauses the newest connections beyond the new plan's count, an upgrade
    /// resumes them: with the plan change, not at the next tick.
    public func planChanged(to plan: String, on transaction: TenantTransaction) async throws {
        _ = try await transaction.query("SELECT crypto_apply_plan_limit(\(transaction.tenantID))")
    }

    /// The tenant's data keys, re-wrapped under the module's current key (`atrium keys
    /// rotate-master`); the secrets sealed under them do not change.
    public func rewrapSecrets(_ sealer: Sealer, on transaction: TenantTransaction) async throws -> Int {
        try await KeyRotation.rewrap(sealer: sealer, on: transaction)
    }

    public func migrations() throws -> [Migration] {
        try Migration.fromFiles(EmbeddedMigrations.files, owner: id)
    }

    /// The exchange the module's context points at (its settings and outbound HTTP);
    /// with `weights`, each request spends from the budget every tenant's syncs share.
    func binance(_ context: ModuleContext, weights: SharedLimits? = nil) -> any ExchangeAdapter {
        var adapter = BinanceSpot(baseURL: Self.binanceURL(context.settings), http: context.http, clock: binanceClock, logger: context.logger)
        // `checkSettings` refused malformed values at start.
        adapter.timeout = .seconds((try? context.settings.int("exchange_timeout_seconds", default: 10, in: 1...120)) ?? 10)
        adapter.backoff = .milliseconds((try? context.settings.int("exchange_backoff_ms", default: 500, in: 1...60_000)) ?? 500)
        if let weights {
            // `checkSettings` refused a malformed value at start.
            let perMinute = (try? context.settings.int("binance_weight_per_minute", default: Self.defaultWeightPerMinute, in: 1...6000))
                ?? Self.defaultWeightPerMinute
            adapter.weights = (weights, Int64(perMinute))
        }
        return adapter
    }

    public var jobs: [JobDefinition] {
        [
            CryptoSync.job { context in binance(context.module, weights: context.limitsAcrossTenants) },
            CryptoSync.tickJob,
            Snapshots.job(adapter: { context in binance(context.module, weights: context.limitsAcrossTenants) }, marketData: marketData),
        ]
    }

    public var schedules: [ScheduleDefinition] { [CryptoSync.schedule] }

    public func routes(_ routes: ModuleRoutes) {
        ConnectionRoutes(adapter: binance(routes.context)).register(routes)
        SyncRoutes().register(routes)
        TradeRoutes().register(routes)
        HoldingsRoutes(adapter: binance(routes.context), marketData: marketData).register(routes)
        SnapshotRoutes().register(routes)
        ProfitAndLossRoutes(adapter: binance(routes.context), marketData: marketData).register(routes)
        SettingsRoutes().register(routes)
    }
}

/// The module's permissions.
public enum CryptoPermission {
    public static let own = "crypto.connections.own"
    public static let any = "crypto.connections.any"
    public static let assign = "crypto.connections.assign"
}

/// How the module's routes declare access.
enum CryptoAccess {
    static let records = RouteAccess.owned("crypto.connections")
    static let recordRoutes = OwnedRecordRoutes(access: records, assignPermission: CryptoPermission.assign)
}
