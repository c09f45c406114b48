import AtriumCore
import Foundation
import PostgresNIO

/// `crypto.sync`: one connection's balances and trades brought from its exchange.
///
/// A run reads the balances (and keeps them), then the trades of every market whose two
/// assets the account holds or has traded, and of the markets the connection declares,
/// each from where the last run stopped: pages of `pageSize` from the cursor (the
/// exchange's `fromId` is inclusive, so the next page starts at the last id + 1), until a
/// shorter page. Each page lands with one set-based insert that skips trades already
/// there and moves its market's cursor, in one transaction: a retry, a re-run or a killed
/// worker neither skips nor repeats a trade. A key the exchange refuses marks the
/// connection `auth_failed` (with the exchange's reason) and ends the run without a retry:
/// nothing will change until the user gives new credentials.
enum CryptoSync {
    struct Request: Codable, Sendable {
        var connection: UUID
        /// Read every market's trades, not only those whose assets' balances moved (a
        /// full pass also runs when the last is a day old).
        var full: Bool? = nil
    }

    static let kind = JobKind<Request>("crypto.sync")

    /// One queued or running sync per connection.
    static func uniqueKey(_ connection: UUID) -> String { "crypto.sync:\(connection.uuidString.lowercased())" }

    static func job(adapter: @escaping @Sendable (JobContext) -> any ExchangeAdapter) -> JobDefinition {
        kind.definition(maxAttempts: 4, lease: .seconds(600), backoff: .seconds(30)) { context, request in
            try await run(request.connection, full: request.full ?? false, adapter: adapter(context), context: context)
        }
    }

    /// How old the last full pass may be before a run reads every market again: a buy and
    /// a sell that cancel out move no balance, so only a full pass finds them.
    static let fullPassEvery: TimeInterval = 86_400

    struct Tick: Codable, Sendable {}

    static let tick = JobKind<Tick>("crypto.tick")

    /// Every five minutes for each tenant with the module: the plan's connection count
    /// applied (the newest beyond it paused, paused ones within it resumed), then a sync
    /// queued for every active connection that is due (one queued or running per
    /// connection whatever the count), and the snapshot job when a user's is due.
    static let schedule = ScheduleDefinition(name: "crypto.tick", kind: tick.name, every: .seconds(tickSeconds), perTenant: true)
    static let tickSeconds: Int64 = 300

    static var tickJob: JobDefinition {
        tick.definition(maxAttempts: 3, lease: .seconds(120)) { context, _ in
            try await context.transaction(seesAllOwners: true) { transaction in
                _ = try await transaction.query("SELECT crypto_apply_plan_limit(\(transaction.tenantID))")
                let due = try await transaction.query(
                    "SELECT id FROM crypto_connections WHERE state = 'active' AND next_sync_at <= now() ORDER BY next_sync_at LIMIT 1000"
                ).map { try $0.decode(UUID.self) }
                for connection in due {
                    try await transaction.enqueue(kind, .init(connection: connection), uniqueKey: uniqueKey(connection))
                }
                let snapshotDue = try await transaction.query("SELECT \(unescaped: Snapshots.dueCondition)").first?.decode(Bool.self) ?? false
                if snapshotDue { try await transaction.enqueue(Snapshots.kind, .init(), uniqueKey: Snapshots.uniqueKey) }
            }
        }
    }

    /// What a run starts from: the connection's owner, declared markets, the credentials
    /// opened, the run's row, and whether it reads every market.
    struct Start: Sendable {
        var owner: UUID
        var declared: [String]
        var run: UUID
        var credentials: ExchangeCredentials
        var full: Bool
    }

    static func run(_ connection: UUID, full requested: Bool, adapter: any ExchangeAdapter, context: JobContext) async throws {
        let sealer = context.module.sealer
        let started = try await context.transaction(seesAllOwners: true) { transaction -> Start? in
            // A downgrade pauses connections beyond the plan's count even between ticks.
            _ = try await transaction.query("SELECT crypto_apply_plan_limit(\(transaction.tenantID))")
            // The row with the data key it is sealed under, in one statement (one snapshot):
            // a rotation re-sealing it meanwhile cannot leave a version that is gone, and no
            // row lock is needed (one sync per connection runs at a time), so a rotation's
            // batch holding the row does not hold up the sync.
            let rows = try await transaction.query(
                """
                SELECT c.owner_id, c.state, c.markets, c.api_key_sealed, c.api_secret_sealed, c.key_version, k.wrapped,
                    coalesce(c.last_full_sync_at < now() - make_interval(secs => \(fullPassEvery)), true)
                FROM crypto_connections c JOIN crypto_data_keys k ON k.tenant_id = c.tenant_id AND k.version = c.key_version
                WHERE c.id = \(connection)
                """)
            guard let row = rows.first else { return nil }
            let (owner, state, markets, sealedKey, sealedSecret, version, wrapped, fullDue) = try row.decode(
                (UUID, String, [String], Data, Data, Int, Data, Bool).self)
            guard state == "active" else { return nil }
            let credentials: ExchangeCredentials
            do {
                let key = try TenantKeys.open(version: version, wrapped: wrapped, sealer: sealer, tenant: transaction.tenantID)
                credentials = ExchangeCredentials(
                    apiKey: try key.open(sealedKey, tenant: transaction.tenantID, connection: connection, field: "api_key"),
                    apiSecret: try key.open(sealedSecret, tenant: transaction.tenantID, connection: connection, field: "api_secret"))
            } catch let error as CryptoKeyError {
                // Damaged or moved: no retry can help, new credentials can (not a dead job).
                context.logger.error("a connection's stored key does not open", metadata: ["connection": "\(connection)", "error": "\(error)"])
                try await transaction.query(
                    """
                    UPDATE crypto_connections SET state = 'auth_failed', updated_at = now(),
                        last_error = 'the stored key does not open; give new credentials (PUT connections/{id}/credentials)'
                    WHERE id = \(connection)
                    """)
                return nil
            }
            let full = requested || fullDue
            let started = try await transaction.query(
                """
                INSERT INTO crypto_sync_runs (tenant_id, connection_id, owner_id, full_pass)
                VALUES (\(transaction.tenantID), \(connection), \(owner), \(full)) RETURNING id
                """)
            guard let run = try started.first?.decode(UUID.self) else { throw AtriumError.internalError() }
            return Start(owner: owner, declared: markets, run: run, credentials: credentials, full: full)
        }
        // Deleted, paused, or waiting for new credentials: nothing to do.
        guard let start = started else { return }
        let (owner, run, credentials) = (start.owner, start.run, start.credentials)
        do {
            let balances = try await adapter.balances(of: credentials)
            let moved = try await keep(balances, of: connection, owner: owner, context: context)
            let markets = try await adapter.markets()
            // Where each market's trades were read up to (read once: a run is the only
            // writer of its connection's cursors, one sync per connection at a time).
            let cursors = try await context.transaction(seesAllOwners: true) { transaction in
                Dictionary(
                    try await transaction.query("SELECT symbol, next_trade_id FROM crypto_sync_cursors WHERE connection_id = \(connection)")
                        .map { try $0.decode((String, Int64).self) },
                    uniquingKeysWith: max)
            }
            var candidates = symbols(markets: markets, balances: balances, traded: Array(cursors.keys), declared: start.declared)
            if !start.full {
                // Between full passes, only markets one of whose assets moved can have new trades.
                let listed = Dictionary(markets.map { ($0.symbol, $0) }, uniquingKeysWith: { first, _ in first })
                candidates = candidates.filter { symbol in listed[symbol].map { moved.contains($0.base) || moved.contains($0.quote) } ?? false }
            }
            for symbol in candidates {
                try await pages(
                    of: symbol, from: cursors[symbol] ?? 0, connection: connection, owner: owner, run: run, credentials: credentials, adapter: adapter,
                    context: context)
            }
            try await finish(run, connection: connection, outcome: "succeeded", error: nil, weight: await adapter.weightSpent(), context: context)
        } catch let failure as ExchangeFailure {
            let weight = await adapter.weightSpent()
            switch failure {
            case .rejectedCredentials(let code, let message):
                let reason = "the exchange refused the key (\(code): \(message)); give new credentials (PUT connections/{id}/credentials)"
                try await finish(run, connection: connection, outcome: "auth_failed", error: reason, weight: weight, context: context)
                context.logger.warning("exchange refused a connection's key", metadata: ["connection": "\(connection)", "exchange.code": "\(code)"])
            case .unavailable(let reason, let retryAfter):
                // Committed pages stay. Told when to come back (the exchange's Retry-After,
                // or the weight budget's), the job waits that long without using an
                // attempt. Otherwise the adapter already tried four times: the run ends and
                // the schedule takes the connection up again within minutes. Either way no
                // job dies and nothing retries in a storm.
                try await finish(
                    run, connection: connection, outcome: "exchange_unavailable", error: reason, weight: weight,
                    retryIn: retryAfter == nil ? Int(tickSeconds) : nil, context: context)
                if let retryAfter { throw JobRetryLater(after: .seconds(max(1, retryAfter)), reason: reason) }
            case .clockSkew(let milliseconds):
                try await finish(
                    run, connection: connection, outcome: "clock_skew", error: "the exchange's clock is \(milliseconds) ms from ours", weight: weight, context: context)
            case .badResponse(let what):
                try await finish(run, connection: connection, outcome: "bad_exchange_response", error: what, weight: weight, context: context)
            }
        }
    }

    /// The markets to read: those whose base and quote the account holds or has traded,
    /// and those the connection declares, that the exchange lists.
    static func symbols(markets: [ExchangeMarket], balances: [ExchangeBalance], traded: [String], declared: [String]) -> [String] {
        let listed = Dictionary(markets.map { ($0.symbol, $0) }, uniquingKeysWith: { first, _ in first })
        var assets = Set(balances.filter { (DecimalString($0.free)?.value ?? 0) + (DecimalString($0.locked)?.value ?? 0) != 0 }.map(\.asset))
        for symbol in traded { if let market = listed[symbol] { assets.formUnion([market.base, market.quote]) } }
        let held = markets.filter { assets.contains($0.base) && assets.contains($0.quote) }.map(\.symbol)
        return Array(Set(held + declared.filter { listed[$0] != nil } + traded.filter { listed[$0] != nil })).sorted()
    }

    /// Stores the account's balances; returns the assets whose balance changed, appeared
    /// or went since the last run.
    static func keep(_ balances: [ExchangeBalance], of connection: UUID, owner: UUID, context: JobContext) async throws -> Set<String> {
        try await context.transaction(seesAllOwners: true) { transaction in
            let moved = try await transaction.query(
                """
                WITH fresh AS (
                    SELECT * FROM unnest(\(balances.map(\.asset))::text[], \(balances.map(\.free))::numeric[], \(balances.map(\.locked))::numeric[])
                        AS b (asset, free, locked)
                ), gone AS (
                    DELETE FROM crypto_balances WHERE connection_id = \(connection) AND asset NOT IN (SELECT asset FROM fresh)
                    RETURNING asset
                ), kept AS (
                    INSERT INTO crypto_balances (tenant_id, connection_id, owner_id, asset, free, locked)
                    SELECT \(transaction.tenantID), \(connection), \(owner), asset, free, locked FROM fresh
                    ON CONFLICT (tenant_id, connection_id, asset) DO UPDATE SET free = excluded.free, locked = excluded.locked, updated_at = now()
                    WHERE (crypto_balances.free, crypto_balances.locked) IS DISTINCT FROM (excluded.free, excluded.locked)
                    RETURNING asset
                )
                SELECT asset FROM gone UNION SELECT asset FROM kept
                """)
            return Set(try moved.map { try $0.decode(String.self) })
        }
    }

    /// The trades of `symbol` from its cursor `from`, page by page, each page with its
    /// cursor in one transaction. The next page is asked for while one lands (it starts
    /// after this page's last id whatever the landing does), so the exchange's time and
    /// the database's overlap; a page only counts once it has landed with its cursor.
    static func pages(
        of symbol: String, from: Int64, connection: UUID, owner: UUID, run: UUID, credentials: ExchangeCredentials, adapter: any ExchangeAdapter,
        context: JobContext
    ) async throws {
        let size = adapter.pageSize
        var page = try await adapter.trades(of: credentials, symbol: symbol, from: from, limit: size)
        while let last = page.last {
            let (full, landing) = (page.count == size, page)
            async let next = full ? adapter.trades(of: credentials, symbol: symbol, from: last.id + 1, limit: size) : []
            try await land(landing, next: last.id + 1, symbol: symbol, connection: connection, owner: owner, run: run, context: context)
            page = try await next
        }
    }

    /// Lands a page with its market's cursor and the run's counts, and meters the trades
    /// that were new (once per run and page, whatever the retries).
    static func land(
        _ page: [ExchangeTrade], next: Int64, symbol: String, connection: UUID, owner: UUID, run: UUID, context: JobContext
    ) async throws {
        try await context.transaction(seesAllOwners: true) { transaction in
            let landed = try await transaction.query(
                """
                WITH landed AS (
                    INSERT INTO crypto_trades (tenant_id, connection_id, owner_id, symbol, trade_id, order_id, price, quantity, quote_quantity,
                        commission, commission_asset, traded_at, is_buyer, is_maker)
                    SELECT \(transaction.tenantID), \(connection), \(owner), \(symbol), t.id, t.order_id, t.price, t.quantity, t.quote_quantity,
                        t.commission, t.commission_asset, to_timestamp(t.time / 1000.0), t.is_buyer, t.is_maker
                    FROM unnest(\(page.map(\.id))::int8[], \(page.map(\.orderId))::int8[], \(page.map(\.price))::numeric[], \(page.map(\.quantity))::numeric[],
                                \(page.map(\.quoteQuantity))::numeric[], \(page.map(\.commission))::numeric[], \(page.map(\.commissionAsset))::text[],
                                \(page.map(\.time))::int8[], \(page.map(\.isBuyer))::bool[], \(page.map(\.isMaker))::bool[])
                        AS t (id, order_id, price, quantity, quote_quantity, commission, commission_asset, time, is_buyer, is_maker)
                    ON CONFLICT DO NOTHING
                    RETURNING 1
                ), cursor AS (
                    INSERT INTO crypto_sync_cursors (tenant_id, connection_id, owner_id, symbol, next_trade_id)
                    VALUES (\(transaction.tenantID), \(connection), \(owner), \(symbol), \(next))
                    ON CONFLICT (tenant_id, connection_id, symbol) DO UPDATE SET next_trade_id = greatest(crypto_sync_cursors.next_trade_id, excluded.next_trade_id),
                        updated_at = now()
                )
                UPDATE crypto_sync_runs SET pages = pages + 1, trades_new = trades_new + (SELECT count(*) FROM landed), trades_seen = trades_seen + \(page.count)
                WHERE id = \(run)
                RETURNING (SELECT count(*) FROM landed)
                """)
            let new = try landed.first?.decode(Int64.self) ?? 0
            if new > 0 {
                _ = try await transaction.recordUsage(
                    CryptoModule.tradesMeter, quantity: new, idempotencyKey: "crypto.trades:\(run.uuidString.lowercased()):\(symbol):\(next)")
            }
        }
    }

    /// Ends a run with its outcome and the weight it spent; the connection's next sync is
    /// due the plan's interval after the run started (or `retryIn` seconds from now, for
    /// a run the exchange cut short). Metered once per run.
    static func finish(
        _ run: UUID, connection: UUID, outcome: String, error: String?, weight: Int64, retryIn: Int? = nil, context: JobContext
    ) async throws {
        try await context.transaction(seesAllOwners: true) { transaction in
            _ = try await transaction.query(
                """
                WITH finished AS (
                    UPDATE crypto_sync_runs SET outcome = \(outcome), error = \(error), finished_at = now(), weight = \(weight)
                    WHERE id = \(run)
                    RETURNING started_at, full_pass
                )
                UPDATE crypto_connections SET
                    state = CASE WHEN \(outcome) = 'auth_failed' THEN 'auth_failed' ELSE state END,
                    last_error = \(error), updated_at = now(),
                    last_full_sync_at = CASE WHEN \(outcome) = 'succeeded' AND finished.full_pass THEN finished.started_at ELSE last_full_sync_at END,
                    next_sync_at = coalesce(now() + make_interval(secs => \(retryIn)),
                        finished.started_at + make_interval(secs => crypto_sync_interval(\(transaction.tenantID))))
                FROM finished
                WHERE id = \(connection)
                """)
            _ = try await transaction.recordUsage(CryptoModule.syncsMeter, idempotencyKey: "crypto.sync:\(run.uuidString.lowercased())")
            if outcome == "auth_failed" {
                // Security-relevant: a key stopped working (revoked, or not the user's any more).
                try await AuditLog(logger: transaction.logger).record(
                    "crypto.connection.auth_failed", tenantID: transaction.tenantID, actor: .init(type: .system),
                    subject: "connection:\(connection.uuidString.lowercased())", details: ["reason": .string(error ?? "")], on: transaction.connection)
            }
        }
    }
}
