import AtriumTesting
import Foundation
import Testing

/// The simulator read through pinned ccxt's `binance` (its own signing, its own parsing
/// of Binance's answers): what ccxt accepts is the shape Binance documents, as far as
/// Atrium reads it. Without this, the simulator and the adapter could agree on a wrong
/// shape and every test would pass.
@Suite struct SimulatorConformanceTests {
    @Test func ccxtReadsTheSimulatorAsItReadsBinance() async throws {
        try await ExchangeSimulator.with { exchange in
            let (key, secret) = (String(repeating: "C", count: 64), String(repeating: "c", count: 64))
            try await exchange.account(key: key, secret: secret, balances: ["BTC": "2", "USDT": "1000"])
            let trades: [[String: Any]] = [
                ["symbol": "BTCUSDT", "price": "30000", "qty": "0.5", "is_buyer": true, "commission": "0.0005", "commission_asset": "BTC", "days_ago": 2],
                ["symbol": "BTCUSDT", "price": "31000", "qty": "0.25", "is_buyer": false, "commission": "7.75", "commission_asset": "USDT", "days_ago": 1],
            ]
            let seeded = try JSONSerialization.data(withJSONObject: ["trades": trades])
            #expect(try await exchange.call("POST", "/_sim/accounts/\(key)/trades", body: seeded).status == 201)

            let python = try #require(ProcessInfo.processInfo.environment["ATRIUM_TEST_PYTHON"])
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appending(path: "ExchangeSimulator/ccxt_conformance.py").path()
            let run = try RunningProcess(executable: python, arguments: [script, exchange.url, key, secret], environment: ProcessInfo.processInfo.environment)
            let result = try await run.wait(timeout: .seconds(120))
            try #require(result.status == 0, "\(result.stderr)")
            let out = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])

            #expect((out["markets"] as? [String])?.contains("BTC/USDT") == true && (out["markets"] as? [String])?.contains("LINK/BTC") == true)
            let read = out["trades"] as? [[String: Any]] ?? []
            #expect(read.map { $0["side"] as? String } == ["buy", "sell"])
            #expect(read.map { $0["id"] as? String } == ["1000", "1001"])
            #expect(read.first?["cost"] as? Double == 15000 && read.first?["fee_currency"] as? String == "BTC")
            #expect(read.last?["fee"] as? Double == 7.75 && read.last?["fee_currency"] as? String == "USDT")
            // 2 + 0.5 − 0.0005 − 0.25 BTC; 1000 − 15,000 + 7,750 − 7.75 USDT.
            #expect((out["balance"] as? [String: String])?["BTC"] == "2.2495")
            #expect(out["ticker"] as? Double == 0.05)
            // Daily candles as ccxt reads them: opened at UTC midnight, closing at the price.
            let candles = out["candles"] as? [[Double]] ?? []
            #expect(candles.count == 3 && candles.allSatisfy { $0 == [0, 0.05] }, "\(candles)")
            #expect(out["restrictions"] as? Bool == false)
            #expect(out["wrong_secret"] as? String == "AuthenticationError")
            #expect((out["long_window"] as? String)?.contains("-1127") == true, "\(out["long_window"] ?? "")")
            #expect((out["time"] as? Int).map { abs($0 - Int(Date().timeIntervalSince1970 * 1000)) < 60_000 } == true)
        }
    }
}
