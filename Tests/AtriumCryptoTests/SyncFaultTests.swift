import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Testing

@testable import AtriumCrypto

/// An exchange that fails as real ones do: 5xx and timeouts are tried again, 429 and
/// 418 stop every worker until their Retry-After, a garbled page is not ingested, and
/// through all of it every trade lands exactly once.
@Suite struct SyncFaultTests {
    static let base = SyncTests.base
    static let key = SyncTests.key
    static let secret = SyncTests.secret

    /// Faults of the simulator's: `{"path", "status"?, "retry_after"?, "count", "delay_ms"?, "garbled"?}`.
    func fault(_ exchange: ExchangeSimulator, _ fields: [String: Any]) async throws {
        #expect(try await exchange.call("POST", "/_sim/faults", body: try JSONSerialization.data(withJSONObject: fields)).status == 201)
    }

    func myTrades(_ exchange: ExchangeSimulator) async throws -> [[String: Any]] {
        try await exchange.requests().filter { ($0["path"] as? String) == "/api/v3/myTrades" }
    }

    @Test func tradesLandOnceThroughServerErrorsATimeoutA429AndAGarbledPage() async throws {
        try await ExchangeSimulator.with { exchange in
            try await exchange.account(key: Self.key, secret: Self.secret, balances: ["BTC": "50", "ETH": "500", "USDT": "1000000"])
            let seeded = try JSONSerialization.data(withJSONObject: ["symbols": ["BTCUSDT", "ETHUSDT", "ETHBTC"], "count": 2500, "seed": 11])
            #expect(try await exchange.call("POST", "/_sim/accounts/\(Self.key)/trades", body: seeded).status == 201)
            try await SyncTests.withAnn(exchange) { client, db, tenant, token, environment in
                let created = try await client.send(
                    .post, Self.base + "/connections", token: token,
                    json: #"{"exchange":"binance","label":"Main","api_key":"\#(Self.key)","api_secret":"\#(Self.secret)"}"#)
                let id = try #require(json(created)["id"]?.string.flatMap(UUID.init(uuidString:)))
                let quick = environment.merging(["ATRIUM_CRYPTO_EXCHANGE_TIMEOUT_SECONDS": "1", "ATRIUM_CRYPTO_EXCHANGE_BACKOFF_MS": "20",
                                                 "ATRIUM_CRYPTO_BINANCE_WEIGHT_PER_MINUTE": "6000"]) { $1 }
                func sync() async throws {
                    try await db.withApp { database in
                        try await runJob(
                            CryptoSync.kind, of: CryptoModule(), tenantID: tenant.id, payload: .init(connection: id), database: database,
                            environment: quick, masterKey: db.masterKey)
                    }
                }
                let count = { (sql: String) in try await SyncTests().count(db, sql) }
                /// As the queue would: a run told to wait comes back after its delay.
                func syncUntilDone(full: Bool = false) async throws {
                    for _ in 0..<30 {
                        do {
                            try await db.withApp { database in
                                try await runJob(
                                    CryptoSync.kind, of: CryptoModule(), tenantID: tenant.id, payload: .init(connection: id, full: full), database: database,
                                    environment: quick, masterKey: db.masterKey)
                            }
                            return
                        } catch let later as JobRetryLater {
                            try await Task.sleep(for: min(later.delay, .seconds(3)))
                        }
                    }
                    Issue.record("the sync did not finish")
                }

                // After a first page that lands, two 500s and a page that outlasts the
                // timeout: tried again within the run.
                try await fault(exchange, ["path": "/api/v3/myTrades", "count": 1])
                try await fault(exchange, ["path": "/api/v3/myTrades", "status": 500, "count": 2])
                try await fault(exchange, ["path": "/api/v3/myTrades", "delay_ms": 1500, "count": 1])
                // Then a 429 saying two seconds: the run stops, its pages kept.
                try await fault(exchange, ["path": "/api/v3/myTrades", "status": 429, "retry_after": 2, "count": 1])
                let stopped = await #expect(throws: JobRetryLater.self) { try await sync() }
                #expect(stopped.map { $0.delay >= .seconds(2) } == true, "\(String(describing: stopped))")
                let pagesKept = try await count("SELECT count(*)::int FROM crypto_trades")
                #expect(pagesKept > 0 && pagesKept < 2500, "\(pagesKept)")
                let told = try #require(try await myTrades(exchange).last?["time_ms"] as? Int)

                // Nobody calls the host before the Retry-After: not this connection's job,
                // not another (the hold is the host's, in PostgreSQL).
                let sentBefore = try await exchange.requests().count
                await #expect(throws: JobRetryLater.self) { try await sync() }
                #expect(try await exchange.requests().count == sentBefore, "nothing sent during the hold")

                // A garbled page is not ingested: the run ends bad_exchange_response.
                try await fault(exchange, ["path": "/api/v3/myTrades", "garbled": true, "count": 1])
                try await syncUntilDone()
                #expect(try await count("SELECT count(*)::int FROM crypto_trades") == pagesKept)
                let runs = json(try await client.send(.get, Self.base + "/connections/\(id)/runs", token: token))["data"]?.array ?? []
                #expect(runs.first?["outcome"]?.string == "bad_exchange_response", "\(runs.first ?? .null)")
                let resumed = try #require(try await myTrades(exchange).compactMap { $0["time_ms"] as? Int }.first { $0 > told })
                #expect(resumed >= told + 2_000, "the first call after the 429 came \(resumed - told) ms later")

                // The last run (a full pass, asked as the CLI asks) brings the rest, once.
                try await syncUntilDone(full: true)
                #expect(try await count("SELECT count(*)::int FROM crypto_trades") == 2500)
                #expect(try await count("SELECT count(DISTINCT (symbol, trade_id))::int FROM crypto_trades") == 2500)
                let outcomes = (json(try await client.send(.get, Self.base + "/connections/\(id)/runs", token: token))["data"]?.array ?? [])
                    .compactMap { $0["outcome"]?.string }
                #expect(outcomes.first == "succeeded" && outcomes.contains("bad_exchange_response"), "\(outcomes)")
                #expect(Set(outcomes).isSubset(of: ["succeeded", "bad_exchange_response", "exchange_unavailable"]), "\(outcomes)")
                #expect(try await count("SELECT count(*)::int FROM jobs WHERE state = 'dead'") == 0)
            }
        }
    }

    /// The used-weight header counts everyone calling from the address: past the budget,
    /// nobody calls until the minute ends. A 418 (banned) holds the host likewise.
    @Test func theUsedWeightHeaderAndA418HoldTheHost() async throws {
        try await ExchangeSimulator.with { exchange in
            try await exchange.account(key: Self.key, secret: Self.secret, balances: ["BTC": "1", "USDT": "100"])
            try await SyncTests.withAnn(exchange) { client, db, tenant, token, environment in
                let created = try await client.send(
                    .post, Self.base + "/connections", token: token,
                    json: #"{"exchange":"binance","label":"Main","api_key":"\#(Self.key)","api_secret":"\#(Self.secret)"}"#)
                let id = try #require(json(created)["id"]?.string.flatMap(UUID.init(uuidString:)))
                func sync(_ environment: [String: String]) async throws {
                    try await db.withApp { database in
                        try await runJob(
                            CryptoSync.kind, of: CryptoModule(), tenantID: tenant.id, payload: .init(connection: id), database: database,
                            environment: environment, masterKey: db.masterKey)
                    }
                }
                // Another client on the address used 5,000 of this minute's 6,000: the first
                // answer says so, and nothing more is sent this minute.
                _ = try await exchange.call("PUT", "/_sim/weight", body: Data(#"{"used": 5000}"#.utf8))
                let sentBefore = try await exchange.requests().count
                await #expect(throws: JobRetryLater.self) { try await sync(environment) }
                #expect(try await exchange.requests().count == sentBefore + 1, "one call, then the hold")

                // Banned (418, Retry-After 90) on a fresh budget: held for 90 s.
                let other = environment.merging(["ATRIUM_CRYPTO_BINANCE_URL": exchange.url.replacingOccurrences(of: "127.0.0.1", with: "localhost")]) { $1 }
                try await fault(exchange, ["path": "/api/v3/time", "status": 418, "retry_after": 90, "count": 1])
                let banned = await #expect(throws: JobRetryLater.self) { try await sync(other) }
                #expect(banned.map { $0.delay >= .seconds(89) } == true, "\(String(describing: banned))")
                let sent = try await exchange.requests().count
                await #expect(throws: JobRetryLater.self) { try await sync(other) }
                #expect(try await exchange.requests().count == sent)
            }
        }
    }
}
