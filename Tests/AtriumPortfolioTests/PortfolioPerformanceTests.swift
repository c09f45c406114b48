import AtriumCore
import AtriumPortfolio
import AtriumTesting
import Foundation
import HTTPTypes
import Testing

/// Returns with answers known in advance.
@Suite struct PortfolioPerformanceTests {
    func deposit(_ team: PortfolioTeam, _ portfolio: String, _ amount: String, on date: String) async throws {
        try await team.call(
            .post, "/portfolios/\(portfolio)/transactions", team.ann,
            #"{"type":"deposit","amount":"\#(amount)","currency":"USD","trade_date":"\#(date)"}"#, expect: .created)
    }

    /// 1000 paid in on 2024-01-01 and invested at 100; worth 1100 on 2024-12-31, 365 days
    /// later: both returns are exactly 10 %.
    @Test func oneDepositGrowingTenPercentInAYear() async throws {
        try await PortfolioTeam.withTeam { team in
            try await team.market("X", closes: [("2024-12-31", "110")])
            let portfolio = try await team.portfolio("Year")
            try await deposit(team, portfolio, "1000", on: "2024-01-01")
            try await team.trade(portfolio, "buy", "X", "10", at: "100", on: "2024-01-01")
            let performance = try await team.call(.get, "/portfolios/\(portfolio)/performance?to=2024-12-31", team.ann)
            #expect(performance["from"]?.string == "2024-01-01")
            #expect(performance["twr"]?.string == "0.100000")
            #expect(performance["xirr"]?.string == "0.100000")
            #expect(performance["end_value"]?.string == "1100.00")
            #expect(performance["inflows"]?.string == "1000.00")
            #expect(performance["days"] == 366)
        }
    }

    /// 10 bought at 100 (1000 paid in), worth 120 by 2024-06-28; on 2024-07-01 another
    /// 1200 buys 10 more at 120; 108 on 2024-12-31. TWR links +20 % and −10 %:
    /// 1.2 × 0.9 − 1 = 8 %, whatever was paid in when. XIRR solves
    /// −1000 − 1200 / (1 + r)^(182/365) + 2160 / (1 + r) = 0: r = −2.4915 %, since most
    /// of the money came in before the fall. Implicit deposits count as money paid in.
    @Test func timeWeightedIgnoresWhenMoneyCameInAndMoneyWeightedDoesNot() async throws {
        try await PortfolioTeam.withTeam { team in
            try await team.market("X", closes: [("2024-06-28", "120"), ("2024-07-01", "120"), ("2024-12-31", "108")])
            let portfolio = try await team.portfolio("Two deposits")
            try await team.trade(portfolio, "buy", "X", "10", at: "100", on: "2024-01-01")
            try await team.trade(portfolio, "buy", "X", "10", at: "120", on: "2024-07-01")
            let performance = try await team.call(.get, "/portfolios/\(portfolio)/performance?to=2024-12-31", team.ann)
            #expect(performance["twr"]?.string == "0.080000")
            #expect(performance["xirr"]?.string == "-0.024915")
            #expect(performance["inflows"]?.string == "2200.00")
            #expect(performance["end_value"]?.string == "2160.00")
            // From July on: it starts at 1200 (held the day before) and loses 10 %.
            let second = try await team.call(.get, "/portfolios/\(portfolio)/performance?from=2024-07-01&to=2024-12-31", team.ann)
            #expect(second["start_value"]?.string == "1200.00")
            #expect(second["twr"]?.string == "-0.100000")
            // A portfolio with nothing paid in has no money-weighted return, and says why.
            let empty = try await team.portfolio("Empty")
            let none = try await team.call(.get, "/portfolios/\(empty)/performance?to=2024-12-31", team.ann)
            #expect(none["xirr"] == nil)
            #expect(none["xirr_unavailable"]?.string?.contains("same sign") == true)
            try await team.call(.get, "/portfolios/\(portfolio)/performance?from=2025-01-01&to=2024-12-31", team.ann, expect: .unprocessableContent)
            try await team.call(.get, "/portfolios/\(portfolio)/performance", team.bob, expect: .notFound)
        }
    }
}

/// The nightly valuations: performance read from them equals performance from the
/// ledger, and a back-dated entry sends the report back to the ledger until the next run.
@Suite struct PortfolioValuationTests {
    /// 10 E bought at 100 EUR when a euro was 1.10 USD (1,100 USD paid in); the euro at
    /// 1.25 from July (stored the other way round, 0.8 EUR a dollar) and the portfolio's
    /// own price of 110 EUR from October: worth 10 × 110 × 1.25 = 1,375 USD at the end,
    /// a 25 % return.
    @Test func ownPricesAndTheDaysRateValueAForeignPosition() async throws {
        try await PortfolioTeam.withTeam { team in
            try await team.market("E", currency: "EUR", closes: [("2024-01-01", "100"), ("2024-12-31", "100")])
            try await team.call(.post, "/market/fx", team.manager, #"{"base":"EUR","quote":"USD","date":"2024-01-01","rate":"1.10"}"#)
            try await team.call(.post, "/market/fx", team.manager, #"{"base":"USD","quote":"EUR","date":"2024-07-01","rate":"0.8"}"#)
            let portfolio = try await team.portfolio("Abroad")
            try await team.trade(portfolio, "buy", "E", "10", at: "100", on: "2024-01-01", currency: "EUR")
            try await team.call(.put, "/portfolios/\(portfolio)/prices/E", team.ann, #"{"date":"2024-10-01","price":"110"}"#)
            let performance = try await team.call(.get, "/portfolios/\(portfolio)/performance?to=2024-12-31", team.ann)
            #expect(performance["inflows"]?.string == "1100.00")
            #expect(performance["end_value"]?.string == "1375.00")
            #expect(performance["twr"]?.string == "0.250000")
            let june = try await team.call(.get, "/portfolios/\(portfolio)/performance?to=2024-06-30", team.ann)
            #expect(june["end_value"]?.string == "1100.00")
        }
    }

    @Test func snapshotsAnswerAsTheLedgerDoesAndABackDatedEntryIsRecomputed() async throws {
        try await PortfolioTeam.withTeam { team in
            try await team.market("X", closes: [("2024-06-28", "120"), ("2024-07-01", "120"), ("2024-12-31", "108")])
            let portfolio = try await team.portfolio("Nightly")
            try await team.trade(portfolio, "buy", "X", "10", at: "100", on: "2024-01-01")
            try await team.trade(portfolio, "buy", "X", "10", at: "120", on: "2024-07-01")
            let path = "/portfolios/\(portfolio)/performance?to=2024-12-31"
            let ledger = try await team.call(.get, path, team.ann)
            #expect(ledger["source"]?.string == "ledger")
            func snapshot() async throws {
                try await team.db.withApp { database in
                    try await runJob(
                        "portfolio.valuations.snapshot", of: PortfolioModule(), tenantID: team.tenant.id, payload: ["through": "2024-12-31"], database: database)
                }
            }
            try await snapshot()
            let stored = try await team.call(.get, path, team.ann)
            #expect(stored["source"]?.string == "snapshots")
            for figure in ["twr", "xirr", "end_value", "inflows", "start_value", "days"] { #expect(stored[figure] == ledger[figure], "\(figure)") }
            let july = try await team.call(.get, "/portfolios/\(portfolio)/performance?from=2024-07-01&to=2024-12-31", team.ann)
            #expect(july["source"]?.string == "snapshots")
            #expect(july["twr"]?.string == "-0.100000")

            // A buy dated in March: the days from then are forgotten, the ledger answers, and
            // the next run brings the snapshots back, agreeing with it again.
            let march = try await team.trade(portfolio, "buy", "X", "1", at: "110", on: "2024-03-01")
            let replayed = try await team.call(.get, path, team.ann)
            #expect(replayed["source"]?.string == "ledger")
            #expect(replayed["end_value"]?.string == "2268.00")
            try await snapshot()
            let again = try await team.call(.get, path, team.ann)
            #expect(again["source"]?.string == "snapshots")
            for figure in ["twr", "xirr", "end_value", "inflows"] { #expect(again[figure] == replayed[figure], "\(figure)") }

            // Deleting it forgets them again: the ledger answers, without the March buy.
            let marchID = try #require(march["id"]?.string)
            try await team.call(.delete, "/portfolios/\(portfolio)/transactions/\(marchID)", team.ann, expect: .noContent)
            let undone = try await team.call(.get, path, team.ann)
            #expect(undone["source"]?.string == "ledger")
            #expect(undone["end_value"]?.string == "2160.00")
        }
    }
}
