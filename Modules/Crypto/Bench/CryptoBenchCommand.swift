import ArgumentParser
import AtriumCore
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// `atrium crypto bench …`: the measurements `bench/crypto.sh` prints (hidden from help;
/// not an operator's tool). Each runs in one process against the database and the
/// exchange the environment names, as a worker would, and prints one JSON line.
struct CryptoBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measurements for bench/crypto.sh.", shouldDisplay: false, subcommands: [Sync.self, Snapshot.self, Rotation.self])

    /// One connection's every market read from its cursor at 0, three ways:
    /// `fetch` (pages fetched and parsed, nothing written: the baseline), `sync` (the
    /// module's own run: a set-based insert and the cursor per page) and `rows` (the same
    /// pages written one INSERT per trade, as a naive sync would).
    struct Sync: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Trades per second of a full sync, of fetching alone, and of a per-row insert loop.")
        @OptionGroup var global: GlobalOptions
        @Option var tenant: String
        @Option var connection: String
        @Option(help: "fetch, sync or rows") var mode: String

        func run() async throws {
            guard let id = UUID(uuidString: connection), ["fetch", "sync", "rows"].contains(mode) else { throw ValidationFailure("--connection ID --mode fetch|sync|rows") }
            let logger = global.logger(defaultLevel: .warning)
            let (mode, slug) = (self.mode, tenant)
            let line = try await global.withJobContext(of: CryptoModule(), tenant: slug, logger: logger) { context in
                let module = CryptoModule()
                let adapter = module.binance(context.module)
                let sampler = ResidentMemory.Sampler()
                let start = ContinuousClock.now
                var trades = 0
                switch mode {
                case "sync":
                    try await CryptoSync.run(id, full: true, adapter: adapter, context: context)
                    trades = try await context.transaction(seesAllOwners: true) { transaction in
                        try await transaction.query("SELECT coalesce(sum(trades_new), 0)::int FROM crypto_sync_runs WHERE connection_id = \(id)").first?.decode(Int.self) ?? 0
                    }
                default:
                    let (credentials, owner) = try await context.transaction(seesAllOwners: true) { transaction in
                        let row = try await transaction.query(
                            "SELECT owner_id, api_key_sealed, api_secret_sealed, key_version FROM crypto_connections WHERE id = \(id)").first
                        guard let (owner, key, secret, version) = try row?.decode((UUID, Data, Data, Int).self) else { throw ValidationFailure("no such connection") }
                        return (try await ConnectionStore.credentials(
                            of: id, sealedKey: key, sealedSecret: secret, version: version, sealer: context.module.sealer, on: transaction), owner)
                    }
                    let balances = try await adapter.balances(of: credentials)
                    let symbols = CryptoSync.symbols(markets: try await adapter.markets(), balances: balances, traded: [], declared: [])
                    for symbol in symbols {
                        var from: Int64 = 0
                        while true {
                            let page = try await adapter.trades(of: credentials, symbol: symbol, from: from, limit: adapter.pageSize)
                            trades += page.count
                            if mode == "rows", !page.isEmpty { try await Self.landRowByRow(page, symbol: symbol, connection: id, owner: owner, context: context) }
                            guard let last = page.last, page.count == adapter.pageSize else { break }
                            from = last.id + 1
                        }
                    }
                }
                let elapsed = ContinuousClock.now - start
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                let memory = await sampler.stop()
                return String(
                    format: #"{"mode":"%@","trades":%d,"seconds":%.3f,"trades_per_second":%.0f,"rss_start_mb":%.1f,"rss_max_mb":%.1f}"#,
                    mode, trades, seconds, Double(trades) / seconds, memory.start, memory.maximum)
            }
            Console.line(line)
        }

        /// A page written as a naive sync would: one INSERT per trade (in the page's
        /// transaction, with the cursor).
        static func landRowByRow(_ page: [ExchangeTrade], symbol: String, connection: UUID, owner: UUID, context: JobContext) async throws {
            try await context.transaction(seesAllOwners: true) { transaction in
                for t in page {
                    try await transaction.query(
                        """
                        INSERT INTO crypto_trades (tenant_id, connection_id, owner_id, symbol, trade_id, order_id, price, quantity, quote_quantity,
                            commission, commission_asset, traded_at, is_buyer, is_maker)
                        VALUES (\(transaction.tenantID), \(connection), \(owner), \(symbol), \(t.id), \(t.orderId), \(t.price)::numeric, \(t.quantity)::numeric,
                            \(t.quoteQuantity)::numeric, \(t.commission)::numeric, \(t.commissionAsset), to_timestamp(\(t.time) / 1000.0), \(t.isBuyer), \(t.isMaker))
                        ON CONFLICT DO NOTHING
                        """)
                }
                try await transaction.query(
                    """
                    INSERT INTO crypto_sync_cursors (tenant_id, connection_id, owner_id, symbol, next_trade_id)
                    VALUES (\(transaction.tenantID), \(connection), \(owner), \(symbol), \((page.last?.id ?? 0) + 1))
                    ON CONFLICT (tenant_id, connection_id, symbol) DO UPDATE SET next_trade_id = excluded.next_trade_id
                    """)
            }
        }
    }

    /// Snapshots of every tenant with the module, `--parallel` tenants at once: the
    /// seconds the whole round takes.
    struct Snapshot: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Seconds to snapshot every tenant's due users.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Any tenant with the module (the context's first).") var tenant: String
        @Option(help: "Snapshot the tenants whose slug starts so.") var prefix: String
        @Option var parallel: Int = 4

        func run() async throws {
            let logger = global.logger(defaultLevel: .warning)
            let (parallel, prefix) = (max(1, self.parallel), self.prefix)
            let line = try await global.withJobContext(of: CryptoModule(), tenant: tenant, logger: logger) { context in
                let module = CryptoModule()
                let tenants = try await context.database.withTransaction(logger: logger) { connection in
                    try await connection.query("SELECT id FROM tenants WHERE starts_with(slug, \(prefix)) ORDER BY id", logger: logger)
                        .collect().map { try $0.decode(UUID.self) }
                }
                let start = ContinuousClock.now
                let taken = try await withThrowingTaskGroup(of: Int.self) { group in
                    var pending = tenants[...]
                    var total = 0
                    func next(_ group: inout ThrowingTaskGroup<Int, any Error>) {
                        guard let tenant = pending.popFirst() else { return }
                        var scoped = context
                        scoped.tenantID = tenant
                        group.addTask { try await Snapshots.take(adapter: module.binance(scoped.module), marketData: module.marketData, context: scoped) }
                    }
                    for _ in 0..<parallel { next(&group) }
                    while let count = try await group.next() {
                        total += count
                        next(&group)
                    }
                    return total
                }
                let elapsed = ContinuousClock.now - start
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                return String(format: #"{"tenants":%d,"snapshots":%d,"seconds":%.3f}"#, tenants.count, taken, seconds)
            }
            Console.line(line)
        }
    }

    /// A tenant with `--connections` sealed connections: the data-key rotation's rows per
    /// second, and the p99 of one connection's syncs without and during the rotation.
    struct Rotation: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Rotation rows/s, and sync p99 during it against without.")
        @OptionGroup var global: GlobalOptions
        @Option var tenant: String
        @Option(help: "The connection whose syncs are timed.") var connection: String
        @Option var connections: Int = 10_000
        @Option var syncs: Int = 40

        func run() async throws {
            guard let id = UUID(uuidString: connection) else { throw ValidationFailure("--connection must be a UUID") }
            let logger = global.logger(defaultLevel: .warning)
            let (slug, count, syncs) = (tenant, connections, self.syncs)
            let line = try await global.withJobContext(of: CryptoModule(), tenant: slug, logger: logger) { context in
                let module = CryptoModule()
                try await Self.fill(count, context: context)
                // Syncs one after another: `syncs` of them, or with `running`, as many as
                // start while it runs (so that every timed sync overlaps it).
                func timedSyncs(while running: (@Sendable () async throws -> Void)?) async throws -> (p99: Double, rotation: Double?, count: Int) {
                    let done = ManagedAtomicFlag()
                    return try await withThrowingTaskGroup(of: Double?.self) { group in
                        if let running {
                            group.addTask {
                                let start = ContinuousClock.now
                                try await running()
                                done.set()
                                return (ContinuousClock.now - start).seconds
                            }
                        }
                        var times: [Double] = []
                        while times.isEmpty || (running == nil ? times.count < syncs : !done.isSet) {
                            let start = ContinuousClock.now
                            try await CryptoSync.run(id, full: false, adapter: module.binance(context.module), context: context)
                            times.append((ContinuousClock.now - start).seconds * 1000)
                        }
                        var rotation: Double?
                        for try await result in group { rotation = result ?? rotation }
                        times.sort()
                        return (times[min(times.count - 1, Int(Double(times.count) * 0.99))], rotation, times.count)
                    }
                }
                let idle = try await timedSyncs(while: nil)
                let during = try await timedSyncs {
                    _ = try await KeyRotation.run(tenant: slug, rewrapOnly: false, dryRun: false, context: context)
                }
                let rotated = count + 1
                return String(
                    format: #"{"connections":%d,"rotation_seconds":%.3f,"rows_per_second":%.0f,"syncs":%d,"sync_p99_ms":%.2f,"syncs_during":%d,"sync_p99_during_ms":%.2f,"ratio":%.2f}"#,
                    rotated, during.rotation ?? 0, Double(rotated) / (during.rotation ?? 1), idle.count, idle.p99, during.count, during.p99,
                    during.p99 / idle.p99)
            }
            Console.line(line)
        }

        /// `count` connections of the tenant's first user, their (fake) secrets sealed as
        /// real ones are, inserted 1,000 at a time.
        static func fill(_ count: Int, context: JobContext) async throws {
            let sealer = context.module.sealer
            var made = 0
            while made < count {
                let (batch, first) = (min(1_000, count - made), made)
                try await context.transaction(seesAllOwners: true) { transaction in
                    guard let owner = try await transaction.query("SELECT owner_id FROM crypto_connections LIMIT 1").first?.decode(UUID.self) else {
                        throw ValidationFailure("the tenant needs one connection first")
                    }
                    let key = try await TenantKeys.active(sealer: sealer, on: transaction)
                    var ids: [UUID] = [], keys: [String] = [], secrets: [String] = [], prints: [String] = []
                    for index in 0..<batch {
                        let id = UUID()
                        let apiKey = String(format: "%064d", first + index)
                        ids.append(id)
                        keys.append(KeyRotation.hex(try key.seal(apiKey, tenant: transaction.tenantID, connection: id, field: "api_key")))
                        secrets.append(KeyRotation.hex(try key.seal(String(repeating: "s", count: 64), tenant: transaction.tenantID, connection: id, field: "api_secret")))
                        prints.append(ConnectionStore.fingerprint(of: apiKey))
                    }
                    try await transaction.query(
                        """
                        INSERT INTO crypto_connections (tenant_id, id, owner_id, exchange, label, api_key_sealed, api_secret_sealed, key_version,
                            key_fingerprint, key_last4, state, next_sync_at)
                        SELECT \(transaction.tenantID), r.id, \(owner), 'binance', 'bench', decode(r.k, 'hex'), decode(r.s, 'hex'), \(key.version), r.f, '0000',
                            'auth_failed', now() + interval '1 year'
                        FROM unnest(\(ids)::uuid[], \(keys)::text[], \(secrets)::text[], \(prints)::text[]) AS r (id, k, s, f)
                        """)
                }
                made += batch
            }
        }
    }
}

/// A flag one task sets and another polls.
final class ManagedAtomicFlag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}

extension Duration {
    fileprivate var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// This process's resident memory (Linux `/proc/self/status`), sampled while a
/// measurement runs: whether memory stays flat as the trades go by.
enum ResidentMemory {
    static func megabytes() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kilobytes / 1024
    }

    final class Sampler: Sendable {
        let start = ResidentMemory.megabytes()
        private let task: Task<Double, Never>

        init() {
            task = Task {
                var maximum = ResidentMemory.megabytes()
                while !Task.isCancelled {
                    maximum = max(maximum, ResidentMemory.megabytes())
                    try? await Task.sleep(for: .milliseconds(50))
                }
                return maximum
            }
        }

        func stop() async -> (start: Double, maximum: Double) {
            task.cancel()
            return (start, await task.value)
        }
    }
}
