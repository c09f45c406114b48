import AtriumCore
import AtriumPortfolio
import AtriumTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

/// A broker's file of one portfolio's entries: its columns mapped, rows refused as the
/// API refuses them, landed once by the broker's trade id, and the ledger checked whole.
@Suite struct PortfolioTransactionImportTests {
    /// A broker's export, its own column names (mapped), dates in any order.
    static let broker = """
        Trade ID,Trade Date,Action,Ticker,Shares,Price,CCY,Commission,Note
        T-1,2024-01-02,BUY,aapl,10,100,USD,1.00,first
        T-2,2024-02-01,buy,AAPL,5,120,USD,,
        T-3,2024-03-01,SELL,AAPL,12,130,USD,1.20,
        T-4,2024-03-05,short,AAPL,1,1,USD,,
        T-5,2024-03-06,sell,AAPL,1e2,130,USD,,
        """
    static let mapping = #"{"external_id":"Trade ID","date":"Trade Date","type":"Action","symbol":"Ticker","quantity":"Shares","currency":"CCY","fee":"Commission","notes":"Note"}"#

    /// Uploads `csv` into `portfolio` as `token`, runs the job, answers the status.
    func imported(_ team: PortfolioTeam, _ portfolio: String, _ csv: String, token: String, policy: String = "skip_invalid") async throws -> JSONValue {
        let query = "mapping=\(Self.mapping.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")&error_policy=\(policy)"
        let upload = try await team.client.execute(
            uri: "\(PortfolioTeam.base)/portfolios/\(portfolio)/transactions/imports?entity=transactions&\(query)", method: .post,
            headers: [.authorization: "Bearer \(token)", .contentType: "text/csv"], body: ByteBuffer(string: csv))
        #expect(upload.status == .accepted, "\(String(buffer: upload.body))")
        let id = try #require(json(upload)["id"]?.string)
        #expect(try await team.runJobs() == 1)
        return try await team.call(.get, "/portfolios/\(portfolio)/transactions/imports/\(id)", token)
    }

    @Test func aBrokersFileLandsOnceByTradeIdAndBooksAsTheAPIWould() async throws {
        try await PortfolioTeam.withTeam { team in
            try await team.market("AAPL")
            let portfolio = try await team.portfolio("Broker")
            let first = try await imported(team, portfolio, Self.broker, token: team.ann)
            #expect(first["state"]?.string == "succeeded", "\(first)")
            #expect(first["rows_written"] == 3)
            #expect(first["rows_rejected"] == 2)
            let reasons = String(buffer: try await team.client.send(.get, try #require(first["errors_url"]?.string), token: team.ann).body)
            #expect(reasons.contains(#"5,"type must be one of buy, sell, dividend, fee, deposit, withdrawal""#), "\(reasons)")
            #expect(reasons.contains(#"6,"quantity must be a decimal"#), "\(reasons)")
            #expect(first["errors_url"]?.string?.hasPrefix("/v1/tenants/fund/portfolio/portfolios/\(portfolio)/transactions/imports/") == true)

            // As recorded one by one: FIFO leaves 3 of the second lot, costing 3/5 of 600.
            let lots = try await team.call(.get, "/portfolios/\(portfolio)/lots?as_of=2024-03-31", team.ann)
            #expect(lots["lots"]?.array?.map { $0["quantity"]?.string } == ["3"])
            #expect(lots["lots"]?.array?.first?["cost"]?.string == "360.00")
            let ledger = try await team.call(.get, "/portfolios/\(portfolio)/transactions", team.ann)
            let entries = ledger["data"]?.array ?? []
            #expect(entries.compactMap { $0["external_id"]?.string }.sorted() == ["T-1", "T-2", "T-3"])
            let bought = try #require(entries.first { $0["external_id"]?.string == "T-1" })
            #expect(bought["symbol"]?.string == "AAPL")
            #expect(bought["type"]?.string == "buy")
            #expect(bought["notes"]?.string == "first")
            #expect(bought["fee"]?.string == "1.00")

            // The same file again changes nothing; a corrected price updates its entry.
            let again = try await imported(team, portfolio, Self.broker, token: team.ann)
            #expect(again["rows_written"] == 0)
            #expect(again["rows_unchanged"] == 3)
            let corrected = try await imported(team, portfolio, "Trade ID,Trade Date,Action,Ticker,Shares,Price,CCY\nT-2,2024-02-01,buy,AAPL,5,110,USD\n", token: team.ann)
            #expect(corrected["rows_written"] == 1)
            #expect(try await team.call(.get, "/portfolios/\(portfolio)/lots?as_of=2024-03-31", team.ann)["lots"]?.array?.first?["cost"]?.string == "330.00")

            // Imports are listed under their portfolio, not with the market's.
            #expect(try await team.call(.get, "/portfolios/\(portfolio)/transactions/imports", team.ann)["data"]?.array?.count == 3)
            #expect(try await team.call(.get, "/market/imports", team.manager)["data"]?.array?.count == 0)
        }
    }

    /// A file that would leave the ledger selling more than it held fails whole, naming
    /// the instrument; nothing of it is kept.
    @Test func aFileTheLedgerRefusesLandsNothing() async throws {
        try await PortfolioTeam.withTeam { team in
            try await team.market("AAPL")
            let portfolio = try await team.portfolio("Short")
            try await team.trade(portfolio, "buy", "AAPL", "2", at: "100", on: "2024-01-02")
            let refused = try await imported(
                team, portfolio, "Trade ID,Trade Date,Action,Ticker,Shares,Price,CCY\nS-1,2024-01-03,sell,AAPL,1,110,USD\nS-2,2024-01-04,sell,AAPL,5,110,USD\n",
                token: team.ann)
            #expect(refused["state"]?.string == "failed")
            #expect(refused["failure"]?.string?.contains("the sells of AAPL would take more than was held") == true, "\(refused)")
            #expect(try await team.call(.get, "/portfolios/\(portfolio)/transactions", team.ann)["data"]?.array?.count == 1)
        }
    }

    /// Only the portfolio's owner (or a manager) imports into it: another investor and a
    /// read-only advisor are answered as for a missing portfolio.
    @Test func onlyWhoMayChangeThePortfolioImportsIntoIt() async throws {
        try await PortfolioTeam.withTeam { team in
            let portfolio = try await team.portfolio("Mine")
            try await team.call(.put, "/clients/\(team.advisorID.uuidString.lowercased())/\(team.annID.uuidString.lowercased())", team.manager)
            for token in [team.bob, team.advisor] {
                let upload = try await team.client.execute(
                    uri: "\(PortfolioTeam.base)/portfolios/\(portfolio)/transactions/imports?entity=transactions", method: .post,
                    headers: [.authorization: "Bearer \(token)", .contentType: "text/csv"],
                    body: ByteBuffer(string: "external_id,date,type,amount,currency\nD-1,2024-01-02,deposit,100,USD\n"))
                #expect(upload.status == .notFound, "\(String(buffer: upload.body))")
            }
            try await team.call(.get, "/portfolios/\(portfolio)/transactions/imports", team.bob)
            #expect(try await team.call(.get, "/portfolios/\(portfolio)/transactions", team.ann)["data"]?.array?.count == 0)
        }
    }
}
