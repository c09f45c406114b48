import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Testing

@testable import AtriumCrypto

/// Holdings and snapshots valued at the exchange's prices: direct, inverse and
/// BTC-bridged markets, unpriced assets left out (never 0), one snapshot per slot, and old
/// snapshots thinned to one a day.
@Suite struct ValuationTests {
    static let base = SyncTests.base

    @Test func holdingsAndSnapshotsAreValuedThroughDirectInverseAndBridgedMarkets() async throws {
        try await ExchangeSimulator.with { exchange in
            try await exchange.account(
                key: SyncTests.key, secret: SyncTests.secret, balances: ["BTC": "2", "ETH": "10", "USDT": "1000", "LINK": "4", "XYZ": "5", "SOL": "0"])
            try await SyncTests.withAnn(exchange) { client, db, tenant, token, environment in
                let created = try await client.send(
                    .post, Self.base + "/connections", token: token,
                    json: #"{"exchange":"binance","label":"Main","api_key":"\#(SyncTests.key)","api_secret":"\#(SyncTests.secret)"}"#)
                let id = try #require(json(created)["id"]?.string.flatMap(UUID.init(uuidString:)))
                try await db.withApp { database in
                    try await runJob(
                        CryptoSync.kind, of: CryptoModule(), tenantID: tenant.id, payload: .init(connection: id), database: database,
                        environment: environment, masterKey: db.masterKey)
                }

                // In USDT (the default): BTC and ETH direct, LINK through BTC, XYZ unpriced.
                let usdt = json(try await client.send(.get, Self.base + "/holdings", token: token))
                #expect(usdt["valuation_asset"]?.string == "USDT")
                #expect(usdt["total_value"]?.string == "151120.00000000", "2 × 60000 + 10 × 3000 + 1000 + 4 × 0.0005 × 60000")
                #expect(usdt["unpriced_assets"]?.array?.compactMap(\.string) == ["XYZ"])
                let lines = Dictionary(uniqueKeysWithValues: (usdt["assets"]?.array ?? []).compactMap { line in line["asset"]?.string.map { ($0, line) } })
                #expect(lines["LINK"]?["value"]?.string == "120.00000000")
                #expect(lines["XYZ"]?["quantity"]?.string == "5")
                #expect([nil, .null].contains(lines["XYZ"]?["price"]) && [nil, .null].contains(lines["XYZ"]?["value"]), "unpriced: no price, no value")
                #expect(lines["SOL"] == nil, "a zero balance is not a holding")

                // In BTC (the user's setting): USDT through the inverse of BTCUSDT.
                let refused = try await client.send(.put, Self.base + "/settings", token: token, json: #"{"valuation_asset":"bitcoin"}"#)
                #expect(refused.status == .unprocessableContent)
                #expect(try await client.send(.put, Self.base + "/settings", token: token, json: #"{"valuation_asset":"BTC"}"#).status == .ok)
                #expect(json(try await client.send(.get, Self.base + "/settings", token: token))["valuation_asset"]?.string == "BTC")
                let btc = json(try await client.send(.get, Self.base + "/holdings", token: token))
                #expect(btc["total_value"]?.string == "2.51866667", "2 + 10 × 0.05 + 4 × 0.0005 + 1000 / 60000, rounded once")
                let tickers = try await exchange.requests().filter { ($0["path"] as? String) == "/api/v3/ticker/price" }
                #expect(tickers.count == 1, "prices are fetched once per five minutes, whatever the reads")

                // The tick queues the snapshot; it is taken once per slot.
                try await db.withApp { database in
                    try await runJob(CryptoSync.tick, of: CryptoModule(), tenantID: tenant.id, payload: .init(), database: database, environment: environment)
                }
                let queued = try await SyncTests().count(db, "SELECT count(*)::int FROM jobs WHERE kind = 'crypto.snapshot' AND state = 'pending'")
                #expect(queued == 1)
                for _ in 0..<2 {
                    try await db.withApp { database in
                        try await runJob(Snapshots.kind, of: CryptoModule(), tenantID: tenant.id, payload: .init(), database: database, environment: environment)
                    }
                }
                let snapshots = json(try await client.send(.get, Self.base + "/snapshots", token: token))["data"]?.array ?? []
                #expect(snapshots.count == 1)
                let snapshot = try #require(snapshots.first)
                #expect(snapshot["valuation_asset"]?.string == "BTC")
                #expect(snapshot["total_value"]?.string == "2.51866667")
                #expect(snapshot["unpriced_assets"]?.array?.compactMap(\.string) == ["XYZ"])
                let detail = json(try await client.send(.get, Self.base + "/snapshots/\(snapshot["id"]?.string ?? "")", token: token))
                #expect(detail["lines"]?.array?.compactMap { $0["asset"]?.string } == ["BTC", "ETH", "LINK", "USDT", "XYZ"])

                // Thinning: past seven days only each UTC day's last snapshot stays.
                try await db.withOwner { connection in
                    try await connection.query(
                        "SELECT set_config('app.tenant_id', \(tenant.id.uuidString), false), set_config('app.owner_scope', 'any', false)", logger: TestDatabase.logger)
                    try await connection.query(
                        """
                        INSERT INTO crypto_snapshots (tenant_id, owner_id, slot, taken_at, valuation_asset, total_value, connections)
                        SELECT tenant_id, owner_id, at, at, 'BTC', 1, 1 FROM crypto_connections,
                            unnest(ARRAY[date_trunc('day', now()) - interval '9 days' + interval '10 hours',
                                         date_trunc('day', now()) - interval '9 days' + interval '12 hours',
                                         date_trunc('day', now()) - interval '3 days' + interval '10 hours',
                                         date_trunc('day', now()) - interval '3 days' + interval '12 hours']) AS at
                        """, logger: TestDatabase.logger)
                }
                try await db.withApp { database in
                    try await runJob(Snapshots.kind, of: CryptoModule(), tenantID: tenant.id, payload: .init(), database: database, environment: environment)
                }
                let kept = try await SyncTests().count(
                    db, "SELECT count(*)::int FROM crypto_snapshots WHERE taken_at < now() - interval '1 day'")
                #expect(kept == 3, "the 9-day-old morning one went; its evening one and both of 3 days ago stay")

                // Disconnecting keeps the snapshots' values.
                #expect(try await client.send(.delete, Self.base + "/connections/\(id)", token: token).status == .noContent)
                #expect(try await SyncTests().count(db, "SELECT count(*)::int FROM crypto_snapshot_lines") == 5)
            }
        }
    }
}
