import AtriumCore
import AtriumPortfolio
import AtriumTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

/// Ledgers over HTTP against a real database, every figure computed by hand.
@Suite("Portfolio ledgers: lots, refusals, splits, currencies")
struct PortfolioLedgerTests {
    /// Buy 10 @ 100 (fee 1), buy 10 @ 120, sell 15 @ 130 (fee 1.50), close 140.
    ///
    /// FIFO: the sell takes lot 1 whole (cost 1001, proceeds 1300 − 1.00 = 1299) and 5 of
    /// lot 2 (cost 600, proceeds 650 − 0.50 = 649.50): realized 298 + 49.50 = 347.50; 5
    /// left cost 600, worth 700. Moving average: cost 2201 for 20, the sell's 15 cost
    /// 1650.75, realized 1948.50 − 1650.75 = 297.75; 5 left cost 550.25. Either way,
    /// value + proceeds − cost = realized + unrealized (700 + 1948.50 − 2201 = 447.50).
    @Test func fifoAndAverageBookTheSameTradesByHand() async throws {
        try await PortfolioTeam.withTeam { team in
            try await team.market("AAPL", closes: [("2024-03-14", "140")])
            let fifo = try await team.portfolio("FIFO")
            let average = try await team.portfolio("Average", method: "average")
            for portfolio in [fifo, average] {
                try await team.trade(portfolio, "buy", "AAPL", "10", at: "100", on: "2024-01-02", fee: "1")
                try await team.trade(portfolio, "buy", "AAPL", "10", at: "120", on: "2024-02-01")
                try await team.trade(portfolio, "sell", "AAPL", "15", at: "130", on: "2024-03-01", fee: "1.50")
            }
            let fifoRealized = try await team.call(.get, "/portfolios/\(fifo)/realized?as_of=2024-03-15", team.ann)
            #expect(fifoRealized["total"]?.string == "347.50")
            #expect(fifoRealized["currency"]?.string == "USD")
            #expect(fifoRealized["lines"]?.array?.map { $0["gain"]?.string } == ["298.00", "49.50"])
            #expect(fifoRealized["lines"]?.array?.map { $0["quantity"]?.string } == ["10", "5"])
            let averageRealized = try await team.call(.get, "/portfolios/\(average)/realized?as_of=2024-03-15", team.ann)
            #expect(averageRealized["total"]?.string == "297.75")

            let fifoHoldings = try await team.call(.get, "/portfolios/\(fifo)/holdings?as_of=2024-03-15", team.ann)
            let position = try #require(fifoHoldings["positions"]?.array?.first)
            #expect(position["symbol"]?.string == "AAPL")
            #expect(position["quantity"]?.string == "5")
            #expect(position["cost"]?.string == "600.00")
            #expect(position["value"]?.string == "700.00")
            #expect(position["unrealized_base"]?.string == "100.00")
            #expect(position["price_date"]?.string == "2024-03-14")
            #expect(position["stale"] == .bool(false))
            let averageHoldings = try await team.call(.get, "/portfolios/\(average)/holdings?as_of=2024-03-15", team.ann)
            #expect(averageHoldings["positions"]?.array?.first?["cost"]?.string == "550.25")
            #expect(averageHoldings["positions"]?.array?.first?["unrealized_base"]?.string == "149.75")

            // Cash: nothing was deposited, so the buys booked implicit deposits of 1001
            // and 1200; the sell brought 1948.50 back.
            #expect(fifoHoldings["implicit_deposits"]?.array?.map { $0["amount"]?.string } == ["2201.00"])
            #expect(fifoHoldings["implicit_deposits"]?.array?.first?["entries"] == .number(2))
            #expect(fifoHoldings["cash"]?.array?.first?["amount"]?.string == "1948.50")
            #expect(fifoHoldings["value_base"]?.string == "2648.50")

            // As of a date before the sell, nothing was realized and 20 were held.
            let earlier = try await team.call(.get, "/portfolios/\(fifo)/holdings?as_of=2024-02-15", team.ann)
            #expect(earlier["positions"]?.array?.first?["quantity"]?.string == "20")
            #expect(earlier["missing_prices"]?.array?.map(\.string) == ["AAPL"], "no close on or before 2024-02-15")
            #expect(try await team.call(.get, "/portfolios/\(fifo)/realized?as_of=2024-02-15", team.ann)["total"]?.string == "0.00")
            // Ten days later the close of 2024-03-14 is stale.
            let later = try await team.call(.get, "/portfolios/\(fifo)/holdings?as_of=2024-03-25", team.ann)
            #expect(later["positions"]?.array?.first?["stale"] == .bool(true))
            // The owner's own price wins over the close, in that portfolio alone, until removed.
            try await team.call(.put, "/portfolios/\(fifo)/prices/AAPL", team.ann, #"{"date":"2024-03-10","price":"130"}"#)
            let manual = try await team.call(.get, "/portfolios/\(fifo)/holdings?as_of=2024-03-15", team.ann)
            #expect(manual["positions"]?.array?.first?["price_source"]?.string == "manual")
            #expect(manual["positions"]?.array?.first?["value"]?.string == "650.00")
            #expect(try await team.call(.get, "/portfolios/\(average)/holdings?as_of=2024-03-15", team.ann)["positions"]?.array?.first?["value"]?.string == "700.00")
            try await team.call(.put, "/portfolios/\(fifo)/prices/AAPL", team.bob, #"{"date":"2024-03-10","price":"1"}"#, expect: .notFound)
            try await team.call(.delete, "/portfolios/\(fifo)/prices/AAPL?date=2024-03-10", team.ann, expect: .noContent)
            #expect(try await team.call(.get, "/portfolios/\(fifo)/holdings?as_of=2024-03-15", team.ann)["positions"]?.array?.first?["value"]?.string == "700.00")
        }
    }

    /// Same inputs, same bytes: a report carries the hash of what it was made from.
    @Test func aReportIsByteIdenticalForTheSameInputsAndNamesThem() async throws {
        try await PortfolioTeam.withTeam { team in
            try await team.market("AAPL", closes: [("2024-03-14", "140")])
            let portfolio = try await team.portfolio("Hashed")
            try await team.trade(portfolio, "buy", "AAPL", "10", at: "100", on: "2024-01-02")
            let path = "\(PortfolioTeam.base)/portfolios/\(portfolio)/holdings?as_of=2024-03-15"
            let first = try await team.client.send(.get, path, token: team.ann)
            let second = try await team.client.send(.get, path, token: team.ann)
            #expect(first.body == second.body)
            let hash = try #require(json(first)["inputs_hash"]?.string)
            #expect(hash.count == 64)
            // An entry after the date changes nothing; a new close before it changes the hash.
            try await team.trade(portfolio, "buy", "AAPL", "1", at: "100", on: "2024-04-01")
            #expect(json(try await team.client.send(.get, path, token: team.ann))["inputs_hash"]?.string == hash)
            try await team.call(.post, "/market/instruments/AAPL/prices", team.manager, #"{"closes":[{"date":"2024-03-15","close":"141"}]}"#)
            #expect(json(try await team.client.send(.get, path, token: team.ann))["inputs_hash"]?.string != hash)
            let realized = try await team.call(.get, "/portfolios/\(portfolio)/realized?as_of=2024-03-15", team.ann)
            #expect(realized["inputs_hash"]?.string?.count == 64)
        }
    }

    @Test func aSellCanNameItsLots() async throws {
        try await PortfolioTeam.withTeam { team in
            let portfolio = try await team.portfolio("Named")
            let first = try await team.trade(portfolio, "buy", "MSFT", "10", at: "100", on: "2024-01-02")
            let second = try await team.trade(portfolio, "buy", "MSFT", "10", at: "150", on: "2024-01-03")
            let secondID = try #require(second["id"]?.string)
            let firstID = try #require(first["id"]?.string)
            // The second lot (cost 150 each) first, though FIFO would take the first.
            try await team.trade(portfolio, "sell", "MSFT", "5", at: "160", on: "2024-02-01", extra: #","lots":["\#(secondID)"]"#)
            let realized = try await team.call(.get, "/portfolios/\(portfolio)/realized?as_of=2024-12-31", team.ann)
            #expect(realized["total"]?.string == "50.00")
            #expect(realized["lines"]?.array?.first?["lot"]?.string == secondID)
            // Naming more than a lot holds, or a lot that is not open, changes nothing.
            let tooMany = try await team.trade(
                portfolio, "sell", "MSFT", "6", at: "160", on: "2024-02-02", extra: #","lots":["\#(secondID)"]"#, expect: .unprocessableContent)
            #expect(tooMany["code"]?.string == "insufficient_quantity")
            try await team.trade(portfolio, "sell", "MSFT", "10", at: "160", on: "2024-02-03", extra: #","lots":["\#(firstID)"]"#)
            let closed = try await team.trade(
                portfolio, "sell", "MSFT", "1", at: "160", on: "2024-02-04", extra: #","lots":["\#(firstID)"]"#, expect: .unprocessableContent)
            #expect(closed["code"]?.string == "lot_closed")
            let ledger = try await team.call(.get, "/portfolios/\(portfolio)/transactions", team.ann)
            #expect(ledger["data"]?.array?.count == 4)
        }
    }

    @Test func whatTheLedgerRefusesChangesNothing() async throws {
        try await PortfolioTeam.withTeam { team in
            let portfolio = try await team.portfolio("Refusals")
            let buy = try await team.trade(portfolio, "buy", "AAPL", "10", at: "100", on: "2024-01-10")
            try await team.trade(portfolio, "sell", "AAPL", "10", at: "110", on: "2024-02-01")
            // More than was held; a back-dated sell before the buy; deleting the buy the sell needs.
            let short = try await team.trade(portfolio, "sell", "AAPL", "1", at: "110", on: "2024-03-01", expect: .unprocessableContent)
            #expect(short["code"]?.string == "insufficient_quantity")
            #expect(short["errors"]?.array?.first?["field"]?.string == "quantity")
            let early = try await team.trade(portfolio, "sell", "AAPL", "5", at: "90", on: "2024-01-05", expect: .unprocessableContent)
            #expect(early["code"]?.string == "insufficient_quantity")
            let buyID = try #require(buy["id"]?.string)
            let deletion = try await team.call(.delete, "/portfolios/\(portfolio)/transactions/\(buyID)", team.ann, expect: .unprocessableContent)
            #expect(deletion["code"]?.string == "insufficient_quantity")
            // A back-dated buy that makes room is taken, and the sell then matches it first.
            try await team.trade(portfolio, "buy", "AAPL", "5", at: "80", on: "2024-01-01")
            let realized = try await team.call(.get, "/portfolios/\(portfolio)/realized?as_of=2024-12-31", team.ann)
            #expect(realized["total"]?.string == "200.00", "5 × (110 − 80) + 5 × (110 − 100)")
            // A withdrawal of more cash than the ledger holds (1100 from the sell, less
            // nothing) is refused; one within it is taken.
            let overdrawn = try await team.call(
                .post, "/portfolios/\(portfolio)/transactions", team.ann,
                #"{"type":"withdrawal","amount":"1100.01","currency":"USD","trade_date":"2024-02-02"}"#, expect: .unprocessableContent)
            #expect(overdrawn["code"]?.string == "insufficient_cash")
            try await team.call(
                .post, "/portfolios/\(portfolio)/transactions", team.ann, #"{"type":"withdrawal","amount":"1100.00","currency":"USD","trade_date":"2024-02-02"}"#,
                expect: .created)
            // Decimals are strings: a JSON number is refused by name, as is a bad date.
            let number = try await team.call(
                .post, "/portfolios/\(portfolio)/transactions", team.ann,
                #"{"type":"buy","symbol":"AAPL","quantity":10,"price":"1","currency":"USD","trade_date":"2024-02-30"}"#, expect: .unprocessableContent)
            #expect(number["errors"]?.array?.first?["field"]?.string == "quantity")
            #expect(number["errors"]?.array?.first?["message"]?.string?.contains("string") == true)
            let date = try await team.call(
                .post, "/portfolios/\(portfolio)/transactions", team.ann,
                #"{"type":"buy","symbol":"AAPL","quantity":"10","price":"1","currency":"XXX","trade_date":"2024-02-30"}"#, expect: .unprocessableContent)
            #expect(Set(date["errors"]?.array?.compactMap { $0["field"]?.string } ?? []) == ["trade_date", "currency"])
            let ledger = try await team.call(.get, "/portfolios/\(portfolio)/transactions", team.ann)
            #expect(ledger["data"]?.array?.count == 4, "two trades, the back-dated buy and the withdrawal")
        }
    }

    /// Buy 10 @ 100, a 2-for-1 split, sell 20 @ 60: realized 1200 − 1000 = 200. Entries
    /// stay as recorded; deleting the split undoes it (and the ledger then no longer books).
    @Test func splitsApplyWhenTheLedgerIsRead() async throws {
        try await PortfolioTeam.withTeam { team in
            try await team.market("NVDA", closes: [("2024-02-01", "55")])
            let portfolio = try await team.portfolio("Split")
            try await team.trade(portfolio, "buy", "NVDA", "10", at: "100", on: "2024-01-02")
            // Before the split is known, selling 20 is selling more than was held.
            try await team.trade(portfolio, "sell", "NVDA", "20", at: "60", on: "2024-03-01", expect: .unprocessableContent)
            let split = try await team.call(
                .post, "/market/corporate-actions", team.manager, #"{"symbol":"NVDA","type":"split","effective_date":"2024-02-01","ratio":"2"}"#,
                expect: .created)
            // Before the split date the position is as bought; after it, doubled at the same cost.
            let before = try await team.call(.get, "/portfolios/\(portfolio)/holdings?as_of=2024-01-31", team.ann)
            #expect(before["positions"]?.array?.first?["quantity"]?.string == "10")
            let after = try await team.call(.get, "/portfolios/\(portfolio)/holdings?as_of=2024-02-01", team.ann)
            #expect(after["positions"]?.array?.first?["quantity"]?.string == "20")
            #expect(after["positions"]?.array?.first?["cost"]?.string == "1000.00")
            #expect(after["positions"]?.array?.first?["value"]?.string == "1100.00")
            try await team.trade(portfolio, "sell", "NVDA", "20", at: "60", on: "2024-03-01")
            #expect(try await team.call(.get, "/portfolios/\(portfolio)/realized?as_of=2024-12-31", team.ann)["total"]?.string == "200.00")
            let transactions = try await team.call(.get, "/portfolios/\(portfolio)/transactions", team.ann)
            #expect(transactions["data"]?.array?.first?["quantity"]?.string == "10", "the buy stays as recorded")
            // An investor cannot record a split.
            try await team.call(
                .post, "/market/corporate-actions", team.ann, #"{"symbol":"NVDA","type":"split","effective_date":"2024-05-01","ratio":"2"}"#,
                expect: .forbidden)
            let splitID = try #require(split["id"]?.string)
            try await team.call(.delete, "/market/corporate-actions/\(splitID)", team.manager, expect: .noContent)
            let undone = try await team.call(.get, "/portfolios/\(portfolio)/realized?as_of=2024-12-31", team.ann, expect: .unprocessableContent)
            #expect(undone["code"]?.string == "insufficient_quantity")
        }
    }

    /// Buy 10 @ 30 and 5 @ 40 (lots of 300 and 200), then a 1-for-4 reverse split whose
    /// issuer pays 128 per new unit for fractions: 3.75 units become 3, and 0.75 is sold
    /// for 96. FIFO takes it from the first lot (2.5 units after the split, cost 300):
    /// cost 90, gain 6; by moving average from 3.75 units costing 500: cost 100, gain −4.
    /// The day's value moves from the position to cash (3 × 95 + 96), and undoing the
    /// split undoes the sale.
    @Test func splitsPayCashInLieuOfFractions() async throws {
        try await PortfolioTeam.withTeam { team in
            try await team.market("XYZ", closes: [("2024-01-02", "30"), ("2024-06-03", "95")])
            let fifo = try await team.portfolio("FIFO")
            let average = try await team.portfolio("Average", method: "average")
            for portfolio in [fifo, average] {
                try await team.trade(portfolio, "buy", "XYZ", "10", at: "30", on: "2024-01-02")
                try await team.trade(portfolio, "buy", "XYZ", "5", at: "40", on: "2024-02-01")
            }
            let refused = try await team.call(
                .post, "/market/corporate-actions", team.manager,
                #"{"symbol":"XYZ","type":"split","effective_date":"2024-06-03","ratio":"0.25","cash_in_lieu_price":"0"}"#, expect: .unprocessableContent)
            #expect(refused["errors"]?.array?.compactMap { $0["field"]?.string } == ["cash_in_lieu_price"])
            let split = try await team.call(
                .post, "/market/corporate-actions", team.manager,
                #"{"symbol":"XYZ","type":"split","effective_date":"2024-06-03","ratio":"0.25","cash_in_lieu_price":"128"}"#, expect: .created)
            #expect(split["cash_in_lieu_price"]?.string == "128")
            let splitID = try #require(split["id"]?.string)

            for (portfolio, cost, gain) in [(fifo, "410.00", "6.00"), (average, "400.00", "-4.00")] {
                let holdings = try await team.call(.get, "/portfolios/\(portfolio)/holdings?as_of=2024-06-03", team.ann)
                let position = holdings["positions"]?.array?.first
                #expect(position?["quantity"]?.string == "3")
                #expect(position?["cost"]?.string == cost)
                #expect(position?["value"]?.string == "285.00")
                #expect(holdings["cash"]?.array?.first?["amount"]?.string == "96.00", "\(holdings["cash"] ?? .null)")
                let realized = try await team.call(.get, "/portfolios/\(portfolio)/realized?as_of=2024-12-31", team.ann)
                #expect(realized["total"]?.string == gain)
                let line = realized["lines"]?.array?.first
                #expect(line?["cash_in_lieu"] == .bool(true))
                #expect(line?["sell_id"]?.string == splitID)
                #expect(line?["quantity"]?.string == "0.75")
                #expect(line?["proceeds"]?.string == "96.00")
                let performance = try await team.call(.get, "/portfolios/\(portfolio)/performance?from=2024-01-02&to=2024-06-03", team.ann)
                #expect(performance["end_value"]?.string == "381.00")
                // The fraction is gone: selling it again is selling more than is held.
                try await team.trade(portfolio, "sell", "XYZ", "3.75", at: "100", on: "2024-07-01", expect: .unprocessableContent)
            }

            try await team.call(.delete, "/market/corporate-actions/\(splitID)", team.manager, expect: .noContent)
            let undone = try await team.call(.get, "/portfolios/\(fifo)/holdings?as_of=2024-06-03", team.ann)
            #expect(undone["positions"]?.array?.first?["quantity"]?.string == "15")
            #expect(try await team.call(.get, "/portfolios/\(fifo)/realized?as_of=2024-12-31", team.ann)["lines"]?.array?.isEmpty == true)
        }
    }

    /// Base USD; buy 10 SAP in EUR @ 100 when 1 EUR = 1.10 USD (cost 1100 USD); sell them
    /// @ 120 when a USD is 0.80 EUR (1.25 USD per EUR): proceeds 1200 EUR = 1500 USD, gain
    /// 400 USD, of which the price made 20 × 10 × 1.25 = 250 and the currency 150.
    @Test func costTakesTradeDateFXAndGainsSplitPriceFromCurrency() async throws {
        try await PortfolioTeam.withTeam { team in
            try await team.market("SAP", currency: "EUR", closes: [("2024-02-15", "110")])
            try await team.call(.post, "/market/fx", team.manager, #"{"base":"EUR","quote":"USD","date":"2024-01-01","rate":"1.10"}"#)
            try await team.call(.post, "/market/fx", team.manager, #"{"base":"USD","quote":"EUR","date":"2024-02-20","rate":"0.80"}"#)
            let portfolio = try await team.portfolio("Two currencies")
            let buy = try await team.trade(portfolio, "buy", "SAP", "10", at: "100", on: "2024-01-02", currency: "EUR")
            #expect(buy["fx_rate"]?.string == "1.10", "the rate on or before the trade date is stored on the entry")
            // Holdings on 2024-02-15 value at that day's FX (still 1.10): 10 × 110 × 1.10.
            let holdings = try await team.call(.get, "/portfolios/\(portfolio)/holdings?as_of=2024-02-15", team.ann)
            let position = try #require(holdings["positions"]?.array?.first)
            #expect(position["cost_base"]?.string == "1100.00")
            #expect(position["value_base"]?.string == "1210.00")
            #expect(position["price_effect_base"]?.string == "110.00")
            #expect(position["currency_effect_base"]?.string == "0.00")
            try await team.trade(portfolio, "sell", "SAP", "10", at: "120", on: "2024-03-01", currency: "EUR")
            let realized = try await team.call(.get, "/portfolios/\(portfolio)/realized?as_of=2024-12-31", team.ann)
            #expect(realized["total"]?.string == "400.00")
            let line = try #require(realized["lines"]?.array?.first)
            #expect(line["gain"]?.string == "200.00")
            #expect(line["price_effect_base"]?.string == "250.00")
            #expect(line["currency_effect_base"]?.string == "150.00")
            // A currency with no rate at all is refused with the rate it needs.
            try await team.market("TM", currency: "JPY")
            let missing = try await team.trade(portfolio, "buy", "TM", "1", at: "3000", on: "2024-01-02", currency: "JPY", expect: .unprocessableContent)
            #expect(missing["code"]?.string == "fx_rate_missing")
        }
    }

    @Test func anotherInvestorsPortfolioIsAnsweredLikeAMissingOne() async throws {
        try await PortfolioTeam.withTeam { team in
            let portfolio = try await team.portfolio("Ann's")
            let buy = try await team.trade(portfolio, "buy", "AAPL", "1", at: "100", on: "2024-01-02")
            let tx = try #require(buy["id"]?.string)
            for path in ["", "/transactions", "/transactions/\(tx)", "/holdings", "/realized"] {
                let answer = try await team.call(.get, "/portfolios/\(portfolio)\(path)", team.bob, expect: .notFound)
                #expect(answer["code"]?.string == "not_found")
            }
            try await team.trade(portfolio, "buy", "AAPL", "1", at: "100", on: "2024-01-02", token: team.bob, expect: .notFound)
            try await team.call(.delete, "/portfolios/\(portfolio)/transactions/\(tx)", team.bob, expect: .notFound)
            try await team.call(.patch, "/portfolios/\(portfolio)", team.bob, #"{"name":"Mine"}"#, expect: .notFound)
            #expect(try await team.call(.get, "/portfolios", team.bob)["data"]?.array?.isEmpty == true)
            // The manager sees it and records in it; the entry is Ann's.
            let managed = try await team.trade(portfolio, "buy", "AAPL", "1", at: "100", on: "2024-01-03", token: team.manager)
            #expect(managed["owner_id"]?.string == team.annID.uuidString.lowercased())
            #expect(try await team.call(.get, "/portfolios/\(portfolio)/holdings?as_of=2024-02-01", team.ann)["positions"]?.array?.first?["quantity"]?.string == "2")
        }
    }

    @Test func aRetriedEntryIsRecordedOnce() async throws {
        try await PortfolioTeam.withTeam { team in
            let portfolio = try await team.portfolio("Retry")
            let key: HTTPFields = [.init("Idempotency-Key")!: "buy-aapl-1"]
            let body = #"{"type":"buy","symbol":"AAPL","quantity":"1","price":"100","currency":"USD","trade_date":"2024-01-02"}"#
            let first = try await team.call(.post, "/portfolios/\(portfolio)/transactions", team.ann, body, expect: .created, headers: key)
            let second = try await team.call(.post, "/portfolios/\(portfolio)/transactions", team.ann, body, expect: .created, headers: key)
            #expect(first["id"] == second["id"])
            #expect(try await team.call(.get, "/portfolios/\(portfolio)/transactions", team.ann)["data"]?.array?.count == 1)
            // The base currency is fixed once entries are priced against it.
            let change = try await team.call(.patch, "/portfolios/\(portfolio)", team.ann, #"{"base_currency":"EUR"}"#, expect: .unprocessableContent)
            #expect(change["errors"]?.array?.first?["field"]?.string == "base_currency")
        }
    }
}
