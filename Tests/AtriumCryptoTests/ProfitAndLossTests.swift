import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Testing

@testable import AtriumCrypto

/// P&L at average cost against trades computed by hand: a fee in the base asset, one in
/// the quote asset, one in a third asset (BNB), a trade quoted in BTC converted at BTC's
/// daily close, and deposits left out as unexplained quantity.
@Suite struct ProfitAndLossTests {
    static let base = SyncTests.base

    @Test func averageCostPAndLMatchesTheHandComputedFigures() async throws {
        try await ExchangeSimulator.with { exchange in
            try await exchange.account(key: SyncTests.key, secret: SyncTests.secret, balances: ["USDT": "100000", "BNB": "1"])
            let trades: [[String: Any]] = [
                // Buy 2 BTC at 30,000, fee 0.002 BTC: 1.998 BTC for 60,000.
                ["symbol": "BTCUSDT", "price": "30000", "qty": "2", "is_buyer": true, "commission": "0.002", "commission_asset": "BTC", "days_ago": 3],
                // Sell 1 BTC at 35,000, fee 35 USDT: proceeds 34,965, basis 60,000 / 1.998.
                ["symbol": "BTCUSDT", "price": "35000", "qty": "1", "is_buyer": false, "commission": "35", "commission_asset": "USDT", "days_ago": 2],
                // Buy 10 ETH for 0.5 BTC (BTC's close that day: 40,000), fee 0.01 BNB (500).
                ["symbol": "ETHBTC", "price": "0.05", "qty": "10", "is_buyer": true, "commission": "0.01", "commission_asset": "BNB", "days_ago": 1],
            ]
            let body = try JSONSerialization.data(withJSONObject: ["trades": trades])
            #expect(try await exchange.call("POST", "/_sim/accounts/\(SyncTests.key)/trades", body: body).status == 201)
            // BTC closed at 40,000 the day of the ETH buy and trades at 42,000 now.
            let prices = #"{"BTCUSDT": "42000", "ETHUSDT": "2100", "BNBUSDT": "500", "ETHBTC": "0.05"}"#
            #expect(try await exchange.call("PUT", "/_sim/prices", body: Data(prices.utf8)).status == 200)
            let closes = #"{"BTCUSDT": {"1": "40000"}}"#
            #expect(try await exchange.call("PUT", "/_sim/closes", body: Data(closes.utf8)).status == 200)
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
                let answer = try await client.send(.get, Self.base + "/pnl", token: token)
                try #require(answer.status == .ok, "\(String(buffer: answer.body))")
                let pnl = json(answer)
                let lines = Dictionary(uniqueKeysWithValues: (pnl["assets"]?.array ?? []).compactMap { line in line["asset"]?.string.map { ($0, line) } })
                // BTC: realized (34,965 − 30,030.03003…) + (20,000 − 15,015.01501…) = 9,919.95495495…;
                // 0.498 left at cost 14,954.95495495…, worth 0.498 × 42,000 = 20,916.
                #expect(lines["BTC"]?["realized"]?.string == "9919.95495495")
                #expect(lines["BTC"]?["quantity"]?.string == "0.498")
                #expect(lines["BTC"]?["cost"]?.string == "14954.95495495")
                #expect(lines["BTC"]?["unrealized"]?.string == "5961.04504505")
                // ETH: 0.5 BTC × 40,000 + the BNB fee (0.01 × 500) = 20,005 for 10, worth 21,000.
                #expect(lines["ETH"]?["cost"]?.string == "20005.00000000")
                #expect(lines["ETH"]?["unrealized"]?.string == "995.00000000")
                #expect(lines["ETH"]?["fees"]?.string == "5.00000000")
                // The deposits: 100,000 USDT less the 60,000 spent beyond what trades brought
                // (34,965 came from the sale), and the BNB.
                #expect(lines["USDT"]?["quantity"]?.string == "34965")
                #expect(lines["USDT"]?["unexplained_quantity"]?.string == "40000")
                #expect(lines["BNB"]?["unexplained_quantity"]?.string == "0.99")
                #expect(pnl["realized"]?.string == "9919.95495495")
                #expect(pnl["unrealized"]?.string == "6956.04504505", "5,961.04504504… + 995, rounded once")
                #expect(pnl["unpriced_assets"]?.array == [])

                let bad = try await client.send(.get, Self.base + "/pnl?valuation_asset=b%20t%20c", token: token)
                #expect(bad.status == .unprocessableContent)
            }
        }
    }
}
