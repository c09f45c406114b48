import AtriumCore
import AtriumPortfolio
import AtriumTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Testing

/// Market data from files, through the kernel's bulk import: rejections by line, one
/// upsert per file, a second import of the same file changing nothing.
@Suite struct PortfolioMarketImportTests {
    /// Uploads `csv` as `entity`, runs the import job, and answers its status.
    func imported(_ team: PortfolioTeam, _ entity: String, _ csv: String) async throws -> JSONValue {
        let upload = try await team.client.execute(
            uri: "\(PortfolioTeam.base)/market/imports?entity=\(entity)", method: .post,
            headers: [.authorization: "Bearer \(team.manager)", .contentType: "text/csv"], body: ByteBuffer(string: csv))
        #expect(upload.status == .accepted, "\(String(buffer: upload.body))")
        let id = try #require(json(upload)["id"]?.string)
        #expect(try await team.runJobs() == 1)
        return try await team.call(.get, "/market/imports/\(id)", team.manager)
    }

    func errors(_ team: PortfolioTeam, _ status: JSONValue) async throws -> String {
        let path = try #require(status["errors_url"]?.string)
        #expect(path.hasPrefix("/v1/tenants/fund/portfolio/market/imports/"))
        return String(buffer: try await team.client.send(.get, path, token: team.manager).body)
    }

    @Test func instrumentsPricesAndTheConsultantsStocksFileLandByLine() async throws {
        try await PortfolioTeam.withTeam { team in
            let instruments = try await imported(team, "instruments", """
                symbol,name,sector,asset_type,currency,market_cap
                AAPL,Apple Inc.,Technology,stock,USD,3400000000000
                XOM,Exxon Mobil,Energy,,USD,
                BAD,Bad Currency,Energy,stock,USX,1
                """)
            #expect(instruments["state"]?.string == "succeeded")
            #expect(instruments["rows_written"] == 2)
            #expect(try await errors(team, instruments) == "line,reason\r\n4,\"USX: currency must be an active ISO 4217 currency code, such as USD or INR\"\r\n")

            let csv = """
                symbol,date,close
                AAPL,2024-03-01,150
                AAPL,2024-03-04,151.50
                NOPE,2024-03-01,1
                aapl,2024-03-01,149
                XOM,2024-02-30,100
                """
            let prices = try await imported(team, "prices", csv)
            #expect(prices["rows_written"] == 2)
            #expect(prices["rows_rejected"] == 3)
            let reasons = try await errors(team, prices)
            #expect(reasons.contains("2,\"symbol, date repeats on line 5\""))
            #expect(reasons.contains("4,symbol names no instrument of this tenant: NOPE"))
            #expect(reasons.contains("6,date must be a date written YYYY-MM-DD"))
            let closes = try await team.call(.get, "/market/instruments/AAPL/prices", team.ann)
            #expect(closes["closes"]?.array?.compactMap { $0["close"]?.string } == ["149", "151.50"], "the last of a repeated key wins")
            let again = try await imported(team, "prices", csv)
            #expect(again["rows_written"] == 0)
            #expect(again["rows_unchanged"] == 2)
            let corrected = try await imported(team, "prices", "symbol,date,close\nAAPL,2024-03-01,148\nAAPL,2024-03-04,151.5\n")
            #expect(corrected["rows_written"] == 1, "a close changes; 151.5 is 151.50")
            #expect(corrected["rows_unchanged"] == 1)
            let correctedCloses = try await team.call(.get, "/market/instruments/AAPL/prices", team.ann)
            #expect(correctedCloses["closes"]?.array?.compactMap { $0["close"]?.string } == ["148", "151.50"])

            // stocks.csv as the consultant kept it: no date (today), no currency (INR),
            // market cap in crore, and columns Atrium derives from the closes instead.
            let stocks = try await imported(team, "stocks", """
                symbol,name,sector,price,change_1d_pct,change_7d_pct,volatility,market_cap_cr
                RELIANCE,Reliance Industries,Energy,2456.75,0.8,-1.2,0.21,1662000
                TCS,Tata Consultancy,IT,3890.10,-0.4,2.1,0.18,1410000.5
                """)
            #expect(stocks["rows_written"] == 2)
            let reliance = try await team.call(.get, "/market/instruments/RELIANCE", team.ann)
            #expect(reliance["currency"]?.string == "INR")
            #expect(reliance["market_cap"]?.string == "16620000000000")
            let today = try #require(reliance["updated_at"]?.string?.prefix(10))
            let close = try await team.call(.get, "/market/instruments/TCS/prices?from=\(today)&to=\(today)", team.ann)
            #expect(close["closes"]?.array?.first?["close"]?.string == "3890.10")

            // Importing market data takes the market permission.
            let refused = try await team.client.execute(
                uri: "\(PortfolioTeam.base)/market/imports?entity=prices", method: .post,
                headers: [.authorization: "Bearer \(team.ann)", .contentType: "text/csv"], body: ByteBuffer(string: csv))
            #expect(refused.status == .forbidden)
        }
    }
    /// Prices land with MERGE, which fails on a key another transaction inserted while it
    /// ran (a tick for one of the file's days); the import then lands the file with the
    /// upsert, which waits for that tick, instead of failing. The file's close wins.
    @Test func aCloseLandingDuringAPriceImportDoesNotFailIt() async throws {
        try await PortfolioTeam.withTeam { team in
            try await team.market("AAPL", closes: [("2024-03-01", "140")])
            let upload = try await team.client.execute(
                uri: "\(PortfolioTeam.base)/market/imports?entity=prices", method: .post,
                headers: [.authorization: "Bearer \(team.manager)", .contentType: "text/csv"],
                body: ByteBuffer(string: "symbol,date,close\nAAPL,2024-03-01,150\nAAPL,2024-03-04,151.50\n"))
            let id = try #require(json(upload)["id"]?.string)
            let tenantID = team.tenant.id
            try await team.db.withOwner { tick in
                try await tick.query("BEGIN", logger: TestDatabase.logger)
                try await tick.query("SELECT set_config('app.tenant_id', \(tenantID.uuidString), true)", logger: TestDatabase.logger)
                try await tick.query(
                    "INSERT INTO portfolio_prices (tenant_id, symbol, on_date, close, source) VALUES (\(tenantID), 'AAPL', '2024-03-04', 1, 'tick')",
                    logger: TestDatabase.logger)
                async let ran = team.runJobs()
                // Until the import waits for the tick's row.
                var waited = false
                try await team.db.withOwner { watch in
                    for _ in 0..<400 where !waited {
                        waited = try await watch.query(
                            """
                            SELECT count(*) > 0 FROM pg_locks
                            WHERE NOT granted AND pid IN (SELECT pid FROM pg_stat_activity WHERE datname = current_database())
                            """, logger: TestDatabase.logger
                        ).collect().first?.decode(Bool.self) ?? false
                        if !waited { try await Task.sleep(for: .milliseconds(25)) }
                    }
                }
                #expect(waited, "the import never waited for the tick's row")
                try await tick.query("COMMIT", logger: TestDatabase.logger)
                #expect(try await ran == 1)
            }
            let status = try await team.call(.get, "/market/imports/\(id)", team.manager)
            #expect(status["state"]?.string == "succeeded", "\(status)")
            #expect(status["rows_written"] == 2)
            let closes = try await team.call(.get, "/market/instruments/AAPL/prices", team.ann)
            #expect(closes["closes"]?.array?.compactMap { $0["close"]?.string } == ["150", "151.50"])
        }
    }
}

