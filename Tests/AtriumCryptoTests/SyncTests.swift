import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Testing

@testable import AtriumCrypto

/// Sync against the simulator: trades land exactly once through pages of 1,000, a re-run
/// adds only what is new, and a key the exchange stops accepting marks the connection
/// `auth_failed` without failing the job.
@Suite struct SyncTests {
    static let base = "/v1/tenants/coin/crypto"
    static let key = String(repeating: "S", count: 64)
    static let secret = String(repeating: "z", count: 64)

    /// Tenant `coin` with the module and one member, Ann, logged in, on an application
    /// pointed at `exchange`; `environment` is what a job run beside it needs.
    static func withAnn(
        _ exchange: ExchangeSimulator,
        _ body: @escaping @Sendable (any TestClientProtocol, TestDatabase, Tenant, String, [String: String]) async throws -> Void
    ) async throws {
        let db = try await TestDatabase.create(modules: [CryptoModule()])
        let tenant = try await db.createTenant("coin", modules: ["crypto"])
        _ = try await db.createUser("ann@coin.test", password: "correct horse battery", roles: ["member"], in: tenant)
        let environment = ["ATRIUM_CRYPTO_BINANCE_URL": exchange.url, "ATRIUM_CRYPTO_OUTBOUND_ALLOW": "loopback"]
        try await withTestApplication(db, modules: [CryptoModule()], environment: environment) { client, _ in
            let token = try await client.login("coin", "ann@coin.test", "correct horse battery").access
            try await body(client, db, tenant, token, environment)
        }
    }

    func count(_ db: TestDatabase, _ sql: String) async throws -> Int {
        try await db.withOwner { connection in
            try await connection.query(
                "SELECT set_config('app.tenant_id', (SELECT id::text FROM tenants WHERE slug = 'coin'), false), set_config('app.owner_scope', 'any', false)",
                logger: TestDatabase.logger)
            return try await connection.query(PostgresQuery(unsafeSQL: sql), logger: TestDatabase.logger).collect().first?.decode(Int.self) ?? -1
        }
    }

    @Test func tradesLandOnceThroughPagesAndAReRunAddsOnlyWhatIsNew() async throws {
        try await ExchangeSimulator.with { exchange in
            try await exchange.account(key: Self.key, secret: Self.secret, balances: ["BTC": "50", "ETH": "500", "USDT": "1000000"])
            // BTCUSDT twice in the cycle: 1,250 of its trades, two pages; ETHUSDT and ETHBTC 625 each.
            let seeded = try JSONSerialization.data(withJSONObject: ["symbols": ["BTCUSDT", "BTCUSDT", "ETHUSDT", "ETHBTC"], "count": 2500, "seed": 7])
            #expect(try await exchange.call("POST", "/_sim/accounts/\(Self.key)/trades", body: seeded).status == 201)
            try await SyncTests.withAnn(exchange) { client, db, tenant, token, environment in
                let created = try await client.send(
                    .post, Self.base + "/connections", token: token,
                    json: #"{"exchange":"binance","label":"Main","api_key":"\#(Self.key)","api_secret":"\#(Self.secret)"}"#)
                let id = try #require(json(created)["id"]?.string.flatMap(UUID.init(uuidString:)))
                #expect(try await count(db, "SELECT count(*)::int FROM jobs WHERE kind = 'crypto.sync'") == 1, "the first sync is queued with the connection")
                func sync() async throws {
                    try await db.withApp { database in
                        try await runJob(
                            CryptoSync.kind, of: CryptoModule(), tenantID: tenant.id, payload: .init(connection: id), database: database,
                            environment: environment, masterKey: db.masterKey)
                    }
                }
                try await sync()
                #expect(try await count(db, "SELECT count(*)::int FROM crypto_trades") == 2500)
                #expect(try await count(db, "SELECT count(DISTINCT (symbol, trade_id))::int FROM crypto_trades") == 2500)
                #expect(try await count(db, "SELECT count(*)::int FROM crypto_trades WHERE symbol = 'BTCUSDT'") == 1250)
                #expect(try await count(db, "SELECT pages FROM crypto_sync_runs") == 4, "two pages of BTCUSDT, one of each other market")
                #expect(try await count(db, "SELECT count(*)::int FROM crypto_balances WHERE asset IN ('BTC', 'ETH', 'USDT')") == 3)
                let fetched = try await exchange.requests().filter { ($0["path"] as? String) == "/api/v3/myTrades" }
                #expect(fetched.compactMap { $0["query"] as? String }.filter { $0.contains("symbol=BTCUSDT") }.contains { $0.contains("fromId=2000") },
                        "the second page starts at the first page's last id + 1 (ids start at 1000)")

                // The trades list pages through a market exactly once, oldest first.
                var seen: [Int] = []
                var times: [String] = []
                var cursor: String?
                repeat {
                    let answer = try await client.send(
                        .get, Self.base + "/trades?symbol=ETHBTC&limit=200&connection=\(id)" + (cursor.map { "&cursor=\($0)" } ?? ""), token: token)
                    try #require(answer.status == .ok, "\(String(buffer: answer.body))")
                    let page = json(answer)
                    seen += page["data"]?.array?.compactMap { if case .number(let id)? = $0["trade_id"] { Int(id) } else { nil } } ?? []
                    times += page["data"]?.array?.compactMap { $0["traded_at"]?.string } ?? []
                    cursor = page["next_cursor"]?.string
                } while cursor != nil
                #expect(seen.count == 625 && Set(seen).count == 625, "\(seen.count) \(Set(seen).count) \(times.count)")
                #expect(times == times.sorted())
                let junk = try await client.send(.get, Self.base + "/trades?cursor=bm90LW91cnM", token: token)
                #expect(junk.status == .unprocessableContent)

                // The same trades as CSV, and the time filter.
                let export = try await client.send(.get, Self.base + "/trades/export?symbol=ETHBTC&connection=\(id)", token: token)
                #expect(export.status == .ok && export.headers[.contentType]?.hasPrefix("text/csv") == true)
                let csv = String(buffer: export.body).split(separator: "\r\n")
                #expect(csv.first?.hasPrefix("traded_at,connection_id,symbol,trade_id") == true)
                #expect(csv.count == 626 && Set(csv.dropFirst().map { $0.split(separator: ",")[3] }).count == 625, "\(csv.count)")
                let lastTime = try #require(times.last)
                let since = try await client.send(
                    .get, Self.base + "/trades?symbol=ETHBTC&since=\(lastTime.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")", token: token)
                #expect(json(since)["data"]?.array?.count == 1, "only the last trade is at or after its own time: \(String(buffer: since.body).prefix(300))")

                // A manual sync inside the plan's interval (300 s without one) is refused.
                let early = try await client.send(.post, Self.base + "/connections/\(id)/sync", token: token)
                #expect(early.status == .tooManyRequests)
                #expect(json(early)["code"]?.string == "sync_too_soon")
                #expect(early.headers[.retryAfter].flatMap(Int.init).map { (1...300).contains($0) } == true, "\(early.headers)")

                // Again (as the schedule or the CLI would): no balance moved since the full
                // pass, so no market is read and nothing lands; then ten more ETHBTC trades,
                // and only they land.
                let readBefore = try await exchange.requests().filter { ($0["path"] as? String) == "/api/v3/myTrades" }.count
                try await sync()
                #expect(try await exchange.requests().filter { ($0["path"] as? String) == "/api/v3/myTrades" }.count == readBefore)
                #expect(try await count(db, "SELECT count(*)::int FROM crypto_trades") == 2500)
                let more = try JSONSerialization.data(withJSONObject: ["symbols": ["ETHBTC"], "count": 10, "seed": 8])
                _ = try await exchange.call("POST", "/_sim/accounts/\(Self.key)/trades", body: more)
                try await sync()
                #expect(try await count(db, "SELECT count(*)::int FROM crypto_trades") == 2510)
                let runs = json(try await client.send(.get, Self.base + "/connections/\(id)/runs", token: token))["data"]?.array ?? []
                #expect(runs.compactMap { $0["trades_new"] } == [10, 0, 2500], "newest first")
                #expect(runs.allSatisfy { $0["outcome"]?.string == "succeeded" })
                #expect(runs.compactMap { $0["full_pass"]?.bool } == [false, false, true], "the first run reads every market")
                // Weight: the first run read time (1), account and exchangeInfo (20 each)
                // and four pages (20 each); the idle one time, account and exchangeInfo (each
                // run here is a fresh process, which measures the clock offset once).
                #expect(runs.compactMap { $0["weight"]?.int }.suffix(2) == [41, 121])

                // Metered: one sync per run, the trades that were new.
                #expect(try await count(db, "SELECT count(*)::int FROM usage_records WHERE meter = 'crypto.syncs'") == 3)
                #expect(try await count(db, "SELECT sum(quantity)::int FROM usage_records WHERE meter = 'crypto.trades_ingested'") == 2510)

                // Disconnecting takes the secrets and everything synced with them.
                #expect(try await client.send(.delete, Self.base + "/connections/\(id)", token: token).status == .noContent)
                for table in ["crypto_trades", "crypto_balances", "crypto_sync_cursors", "crypto_sync_runs", "crypto_connections"] {
                    #expect(try await count(db, "SELECT count(*)::int FROM \(table)") == 0, "\(table)")
                }
            }
        }
    }

    /// Every request of a sync takes its Binance weight from one budget per host, which
    /// every tenant's syncs share: spent, the run ends `exchange_unavailable` before the
    /// call that would exceed it, and its job tries again later.
    @Test func aSyncStopsWhereTheSharedWeightBudgetEnds() async throws {
        try await ExchangeSimulator.with { exchange in
            try await exchange.account(key: Self.key, secret: Self.secret, balances: ["BTC": "1", "USDT": "100"])
            try await SyncTests.withAnn(exchange) { client, db, tenant, token, environment in
                let created = try await client.send(
                    .post, Self.base + "/connections", token: token,
                    json: #"{"exchange":"binance","label":"Main","api_key":"\#(Self.key)","api_secret":"\#(Self.secret)"}"#)
                let id = try #require(json(created)["id"]?.string.flatMap(UUID.init(uuidString:)))
                // time (1) + account (20) + exchangeInfo (20) fit in 50; myTrades (20) does not.
                let small = environment.merging(["ATRIUM_CRYPTO_BINANCE_WEIGHT_PER_MINUTE": "50"]) { $1 }
                await #expect(throws: JobRetryLater.self, "the job waits for the budget, without using an attempt") {
                    try await db.withApp { database in
                        try await runJob(
                            CryptoSync.kind, of: CryptoModule(), tenantID: tenant.id, payload: .init(connection: id), database: database, environment: small,
                            masterKey: db.masterKey)
                    }
                }
                let run = json(try await client.send(.get, Self.base + "/connections/\(id)/runs", token: token))["data"]?.array?.first
                #expect(run?["outcome"]?.string == "exchange_unavailable")
                #expect(run?["error"]?.string?.contains("weight") == true, "\(run ?? .null)")
                let paths = try await exchange.requests().compactMap { $0["path"] as? String }
                #expect(paths.contains("/api/v3/exchangeInfo") && !paths.contains("/api/v3/myTrades"), "\(paths)")
            }
        }
    }

    @Test func aKeyTheExchangeStopsAcceptingMarksTheConnectionAuthFailed() async throws {
        try await ExchangeSimulator.with { exchange in
            try await exchange.account(key: Self.key, secret: Self.secret)
            try await SyncTests.withAnn(exchange) { client, db, tenant, token, environment in
                let created = try await client.send(
                    .post, Self.base + "/connections", token: token,
                    json: #"{"exchange":"binance","label":"Main","api_key":"\#(Self.key)","api_secret":"\#(Self.secret)"}"#)
                let id = try #require(json(created)["id"]?.string.flatMap(UUID.init(uuidString:)))
                try await exchange.revoke(key: Self.key)
                // The job ends without an error: retrying cannot help until the user acts.
                try await db.withApp { database in
                    try await runJob(
                        CryptoSync.kind, of: CryptoModule(), tenantID: tenant.id, payload: .init(connection: id), database: database,
                        environment: environment, masterKey: db.masterKey)
                }
                let connection = json(try await client.send(.get, Self.base + "/connections/\(id)", token: token))
                #expect(connection["state"]?.string == "auth_failed")
                #expect(connection["last_error"]?.string?.contains("-2015") == true, "\(connection)")
                let runs = json(try await client.send(.get, Self.base + "/connections/\(id)/runs", token: token))["data"]?.array ?? []
                #expect(runs.first?["outcome"]?.string == "auth_failed")
                #expect(try await count(db, "SELECT count(*)::int FROM audit_events WHERE action = 'crypto.connection.auth_failed'") == 1, "audited")
                #expect(try await count(db, "SELECT count(*)::int FROM jobs WHERE state = 'dead'") == 0)

                // Not scheduled while it waits; a new key (rotated at the exchange) recovers it.
                #expect(try await client.send(.post, Self.base + "/connections/\(id)/sync", token: token).status == .conflict)
                let newKey = String(repeating: "N", count: 64)
                try await exchange.account(key: newKey, secret: Self.secret, balances: ["BTC": "3"])
                let replaced = try await client.send(
                    .put, Self.base + "/connections/\(id)/credentials", token: token, json: #"{"api_key":"\#(newKey)","api_secret":"\#(Self.secret)"}"#)
                #expect(replaced.status == .ok && json(replaced)["state"]?.string == "active" && json(replaced)["key_last4"]?.string == "NNNN")
                try await db.withApp { database in
                    try await runJob(
                        CryptoSync.kind, of: CryptoModule(), tenantID: tenant.id, payload: .init(connection: id), database: database,
                        environment: environment, masterKey: db.masterKey)
                }
                let recovered = json(try await client.send(.get, Self.base + "/connections/\(id)/runs", token: token))["data"]?.array?.first
                #expect(recovered?["outcome"]?.string == "succeeded")
                #expect(try await count(db, "SELECT count(*)::int FROM crypto_balances WHERE asset = 'BTC' AND free = 3") == 1)
            }
        }
    }
}

/// `crypto.tick` queues a sync for each active connection that is due, and none for one
/// waiting for its time or for new credentials.
@Suite struct SyncScheduleTests {
    @Test func theTickQueuesTheConnectionsThatAreDue() async throws {
        try await ExchangeSimulator.with { exchange in
            try await SyncTests.withAnn(exchange) { client, db, tenant, token, environment in
                var ids: [String] = []
                for letter in ["D", "L", "F"] {
                    let key = String(repeating: letter, count: 64)
                    try await exchange.account(key: key, secret: SyncTests.secret)
                    let created = try await client.send(
                        .post, SyncTests.base + "/connections", token: token,
                        json: #"{"exchange":"binance","label":"\#(letter)","api_key":"\#(key)","api_secret":"\#(SyncTests.secret)"}"#)
                    ids.append(try #require(json(created)["id"]?.string))
                }
                try await db.withOwner { connection in
                    try await connection.query(
                        "SELECT set_config('app.tenant_id', \(tenant.id.uuidString), false), set_config('app.owner_scope', 'any', false)", logger: TestDatabase.logger)
                    // The first syncs ran; one connection is due, one later, one refused.
                    try await connection.query("DELETE FROM jobs WHERE kind = 'crypto.sync'", logger: TestDatabase.logger)
                    try await connection.query(
                        "UPDATE crypto_connections SET next_sync_at = now() - interval '1 minute' WHERE id = \(UUID(uuidString: ids[0]))", logger: TestDatabase.logger)
                    try await connection.query(
                        "UPDATE crypto_connections SET next_sync_at = now() + interval '10 minutes' WHERE id = \(UUID(uuidString: ids[1]))", logger: TestDatabase.logger)
                    try await connection.query(
                        "UPDATE crypto_connections SET next_sync_at = now() - interval '1 minute', state = 'auth_failed' WHERE id = \(UUID(uuidString: ids[2]))",
                        logger: TestDatabase.logger)
                }
                for _ in 0..<2 {
                    try await db.withApp { database in
                        try await runJob(CryptoSync.tick, of: CryptoModule(), tenantID: tenant.id, payload: .init(), database: database, environment: environment)
                    }
                }
                let queued = try await db.withOwner { connection in
                    try await connection.query(
                        "SELECT set_config('app.tenant_id', \(tenant.id.uuidString), false)", logger: TestDatabase.logger)
                    return try await connection.query(
                        "SELECT payload->>'connection' FROM jobs WHERE kind = 'crypto.sync' AND state = 'pending'", logger: TestDatabase.logger
                    ).collect().map { try $0.decode(String.self).lowercased() }
                }
                #expect(queued == [ids[0]], "once, though the tick ran twice")
            }
        }
    }
}
