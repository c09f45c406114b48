import AtriumCore
import AtriumPortfolio
import AtriumTesting
import Foundation
import HTTPTypes
import Testing

/// The open lots as of a date, withdrawals as their own list, and the stored daily
/// valuations as a series.
@Suite struct PortfolioLotsAndWithdrawalsTests {
    /// 10 @ 100 and 5 @ 120, then a FIFO sell of 12: before it two lots, after it what is
    /// left of the second (3, costing 3/5 of 600); a sell may name that lot.
    @Test func openLotsAsOfADate() async throws {
        try await PortfolioTeam.withTeam { team in
            try await team.market("AAPL")
            let portfolio = try await team.portfolio("Lots")
            let first = try #require(try await team.trade(portfolio, "buy", "AAPL", "10", at: "100", on: "2024-01-02")["id"]?.string)
            let second = try #require(try await team.trade(portfolio, "buy", "AAPL", "5", at: "120", on: "2024-02-01")["id"]?.string)
            try await team.trade(portfolio, "sell", "AAPL", "12", at: "130", on: "2024-03-01")

            let before = try await team.call(.get, "/portfolios/\(portfolio)/lots?as_of=2024-02-15", team.ann)
            #expect(before["lots"]?.array?.map { $0["id"]?.string } == [first, second])
            #expect(before["lots"]?.array?.map { $0["cost"]?.string } == ["1000.00", "600.00"])
            let after = try await team.call(.get, "/portfolios/\(portfolio)/lots?as_of=2024-03-15", team.ann)
            let lot = try #require(after["lots"]?.array?.first)
            #expect(after["lots"]?.array?.count == 1)
            #expect(lot["id"]?.string == second)
            #expect(lot["quantity"]?.string == "3")
            #expect(lot["cost"]?.string == "360.00")
            #expect(lot["opened_on"]?.string == "2024-02-01")
            #expect(try await team.call(.get, "/portfolios/\(portfolio)/lots?as_of=2024-03-15&symbol=MSFT", team.ann)["lots"]?.array?.count == 0)

            try await team.trade(portfolio, "sell", "AAPL", "2", at: "140", on: "2024-03-20", extra: #","lots":["\#(second)"]"#)
            let last = try await team.call(.get, "/portfolios/\(portfolio)/lots?as_of=2024-03-20", team.ann)
            #expect(last["lots"]?.array?.first?["quantity"]?.string == "1")

            let bad = try await team.call(.get, "/portfolios/\(portfolio)/lots?symbol=not%20a%20symbol", team.ann, expect: .unprocessableContent)
            #expect(bad["errors"]?.array?.first?["field"]?.string == "symbol")
            try await team.call(.get, "/portfolios/\(portfolio)/lots", team.bob, expect: .notFound)
        }
    }

    /// A withdrawal through its own route is a ledger entry like any other: listed alone,
    /// refused beyond the cash, recorded once for a retried key.
    @Test func withdrawalsAreEntriesOfTheirOwn() async throws {
        try await PortfolioTeam.withTeam { team in
            let portfolio = try await team.portfolio("Cash")
            try await team.call(
                .post, "/portfolios/\(portfolio)/transactions", team.ann, #"{"type":"deposit","amount":"1000.00","currency":"USD","trade_date":"2024-01-02"}"#,
                expect: .created)
            let key: HTTPFields = [HTTPField.Name("Idempotency-Key")!: "rent-2024-02"]
            let body = #"{"amount":"300.00","currency":"USD","trade_date":"2024-02-01","notes":"rent"}"#
            let taken = try await team.call(.post, "/portfolios/\(portfolio)/withdrawals", team.ann, body, expect: .created, headers: key)
            #expect(taken["type"]?.string == "withdrawal")
            #expect(taken["notes"]?.string == "rent")
            let again = try await team.call(.post, "/portfolios/\(portfolio)/withdrawals", team.ann, body, expect: .created, headers: key)
            #expect(again["id"] == taken["id"])

            let listed = try await team.call(.get, "/portfolios/\(portfolio)/withdrawals", team.ann)
            #expect(listed["data"]?.array?.map { $0["id"] } == [taken["id"]])
            #expect(try await team.call(.get, "/portfolios/\(portfolio)/transactions", team.ann)["data"]?.array?.count == 2)

            let short = try await team.call(
                .post, "/portfolios/\(portfolio)/withdrawals", team.ann, #"{"amount":"800.00","currency":"USD","trade_date":"2024-02-02"}"#,
                expect: .unprocessableContent)
            #expect(short["code"]?.string == "insufficient_cash")
            let number = try await team.call(
                .post, "/portfolios/\(portfolio)/withdrawals", team.ann, #"{"amount":8,"currency":"USD","trade_date":"2024-02-02"}"#,
                expect: .unprocessableContent)
            #expect(number["errors"]?.array?.first?["field"]?.string == "amount")
            try await team.call(.get, "/portfolios/\(portfolio)/withdrawals", team.bob, expect: .notFound)
            try await team.call(.post, "/portfolios/\(portfolio)/withdrawals", team.bob, body, expect: .notFound)
            #expect(try await team.call(.get, "/portfolios/\(portfolio)/holdings?as_of=2024-03-01", team.ann)["cash"]?.array?.first?["amount"]?.string == "700.00")
            // A buy dated before the withdrawal spends the cash it took: refused, as the
            // withdrawal would then take more than was there.
            try await team.market("AAPL")
            let spent = try await team.trade(portfolio, "buy", "AAPL", "5", at: "160", on: "2024-01-15", expect: .unprocessableContent)
            #expect(spent["code"]?.string == "insufficient_cash")
            try await team.trade(portfolio, "buy", "AAPL", "5", at: "100", on: "2024-01-15")
        }
    }

    /// What the nightly job stored, as a series over the period asked for.
    @Test func storedValuationsAsASeries() async throws {
        try await PortfolioTeam.withTeam { team in
            try await team.market("X", closes: [("2024-01-01", "100"), ("2024-01-03", "110")])
            let portfolio = try await team.portfolio("Series")
            try await team.trade(portfolio, "buy", "X", "10", at: "100", on: "2024-01-01")
            try await team.db.withApp { database in
                try await runJob(
                    "portfolio.valuations.snapshot", of: PortfolioModule(), tenantID: team.tenant.id, payload: ["through": "2024-01-04"], database: database)
            }
            let series = try await team.call(.get, "/portfolios/\(portfolio)/valuations?from=2024-01-02&to=2024-01-10", team.ann)
            #expect(series["days"]?.array?.map { $0["as_of"]?.string } == ["2024-01-02", "2024-01-03", "2024-01-04"])
            #expect(series["days"]?.array?.map { $0["value"]?.string } == ["1000.00", "1100.00", "1100.00"])
            #expect(series["currency"]?.string == "USD")
            let reversed = try await team.call(.get, "/portfolios/\(portfolio)/valuations?from=2024-02-01&to=2024-01-01", team.ann, expect: .unprocessableContent)
            #expect(reversed["errors"]?.array?.first?["field"]?.string == "from")
            try await team.call(.get, "/portfolios/\(portfolio)/valuations?from=2000-01-01&to=2024-01-01", team.ann, expect: .unprocessableContent)
            try await team.call(.get, "/portfolios/\(portfolio)/valuations", team.bob, expect: .notFound)
        }
    }
}
