import AtriumCore
@testable import AtriumPortfolio
import AtriumTesting
import Foundation
import HTTPTypes
import PostgresNIO
import Testing

/// The FIFO booking in SQL (`SetBasedBook`, behind every FIFO holdings report) against
/// the Swift `Ledger`, the reference: the same random ledgers, the same positions, costs,
/// cash and implicit deposits.
@Suite(.serialized) struct SetBasedBookTests {
    /// `portfolio_share` is the Swift book's `share` (amount × part ÷ whole, half-even at
    /// 10 places) to the last digit, ties included.
    @Test func sharesRoundAsTheSwiftBookRounds() async throws {
        var generator = LedgerPropertyTests.Generator(state: 29)
        var triples: [(Decimal, Decimal, Decimal)] = [
            (Decimal(string: "0.0000000001")!, 1, 2), (Decimal(string: "0.0000000003")!, 1, 2), (Decimal(string: "0.0000000005")!, 1, 2),
            (Decimal(string: "100.25")!, 3, 3), (7, 0, 5), (10, 1, 3), (Decimal(string: "1234.5678")!, Decimal(string: "2.5")!, Decimal(string: "7.25")!),
        ]
        for _ in 0..<400 {
            let whole = LedgerPropertyTests.decimal(&generator, below: 1000, places: 3)
            let part = min(whole, LedgerPropertyTests.decimal(&generator, below: 1000, places: 3))
            triples.append((LedgerPropertyTests.decimal(&generator, below: 100_000, places: 4), part, whole))
        }
        let book = LotBook(method: .fifo)
        let db = try await TestDatabase.create(modules: [PortfolioModule()])
        let answers = try await db.withOwner { owner in
            try await owner.query(
                """
                SELECT portfolio_share(a::numeric, p::numeric, w::numeric)::text
                FROM unnest(\(triples.map { "\($0.0)" }), \(triples.map { "\($0.1)" }), \(triples.map { "\($0.2)" })) WITH ORDINALITY AS t (a, p, w, n)
                ORDER BY n
                """, logger: TestDatabase.logger
            ).collect().map { try $0.decode(String.self) }
        }
        #expect(answers.count == triples.count)
        for ((amount, part, whole), answer) in zip(triples, answers) {
            #expect(Decimal(string: answer) == book.share(amount, part, of: whole), "share(\(amount), \(part), of: \(whole))")
        }
        #expect(answers.prefix(3) == ["0", "0.0000000002", "0.0000000002"], "ties go to the even digit")
    }

    /// Random FIFO ledgers (buys and sells of three instruments, one traded in a second
    /// currency, splits either side of trades, deposits, withdrawals, fees, dividends),
    /// recorded through the API: each holdings report, as of several dates, is what the
    /// Swift book makes of the same entries.
    @Test func randomLedgersBookAsTheSwiftLedgerBooks() async throws {
        try await PortfolioTeam.withTeam { team in
            try await team.market("AAA")
            try await team.market("BBB")
            try await team.market("CCC", currency: "EUR")
            try await team.call(.post, "/market/fx", team.manager, #"{"base":"EUR","quote":"USD","date":"2020-01-01","rate":"1.1"}"#)
            let splits = [
                Ledger.Split(symbol: "AAA", date: "2024-03-01", ratio: 2), Ledger.Split(symbol: "BBB", date: "2024-06-03", ratio: Decimal(string: "0.5")!),
                Ledger.Split(symbol: "CCC", date: "2024-04-15", ratio: 3),
            ]
            for split in splits {
                try await team.call(
                    .post, "/market/corporate-actions", team.manager,
                    #"{"symbol":"\#(split.symbol)","type":"split","effective_date":"\#(split.date)","ratio":"\#(split.ratio)"}"#, expect: .created)
            }
            var generator = LedgerPropertyTests.Generator(state: 7)
            for round in 0..<6 {
                let portfolio = try await team.portfolio("Random \(round)")
                var entries: [Ledger.Entry] = []
                if round.isMultiple(of: 2) {
                    // Funded first: the cash never falls short of these buys, the others' does.
                    var deposit = Ledger.Entry(id: UUID(), kind: .deposit, date: "2024-01-01", symbol: nil, amount: 50_000, currency: "USD")
                    let created = try await team.call(.post, "/portfolios/\(portfolio)/transactions", team.ann, Self.body(deposit), expect: .created)
                    deposit.id = try #require(created["id"]?.string.flatMap(UUID.init(uuidString:)))
                    entries.append(deposit)
                }
                let first = DayNumber.of("2024-01-02") ?? 0
                var last = first
                for _ in 0..<40 {
                    // Entries in any order (back-dated ones rebook what follows them), some
                    // on a split's own date (booked after the split).
                    let date =
                        Int.random(in: 0..<5, using: &generator) == 0
                        ? splits[Int.random(in: 0..<splits.count, using: &generator)].date : DayNumber.text(first + Int.random(in: 0..<200, using: &generator))
                    last = max(last, DayNumber.of(date) ?? first)
                    let symbol = ["AAA", "BBB", "CCC"][Int.random(in: 0...2, using: &generator)]
                    let currency = symbol == "CCC" ? "EUR" : "USD"
                    let fx: Decimal = currency == "EUR" ? Decimal(string: "1.1")! : 1
                    var entry = Ledger.Entry(id: UUID(), kind: .buy, date: date, symbol: symbol, currency: currency, fxRate: fx)
                    switch Int.random(in: 0..<10, using: &generator) {
                    case 0..<4:
                        entry.quantity = LedgerPropertyTests.decimal(&generator, below: 30, places: 2)
                        entry.price = LedgerPropertyTests.decimal(&generator, below: 300, places: 2)
                        entry.fee = Bool.random(using: &generator) ? LedgerPropertyTests.decimal(&generator, below: 5, places: 2) : 0
                    case 4..<7:
                        entry.kind = .sell
                        entry.quantity = LedgerPropertyTests.decimal(&generator, below: 12, places: 1)
                        entry.price = LedgerPropertyTests.decimal(&generator, below: 300, places: 2)
                        entry.fee = Bool.random(using: &generator) ? LedgerPropertyTests.decimal(&generator, below: 3, places: 2) : 0
                    case 7:
                        entry.kind = [.deposit, .withdrawal][Int.random(in: 0...1, using: &generator)]
                        entry.symbol = nil
                        entry.amount = LedgerPropertyTests.decimal(&generator, below: 2000, places: 2)
                    case 8:
                        entry.kind = .fee
                        entry.symbol = nil
                        entry.amount = LedgerPropertyTests.decimal(&generator, below: 20, places: 2)
                    default:
                        entry.kind = .dividend
                        entry.amount = LedgerPropertyTests.decimal(&generator, below: 50, places: 2)
                    }
                    // Only what the ledger accepts is recorded (the server refuses the rest).
                    guard (try? Ledger.book(entries + [entry], splits: splits, method: .fifo)) != nil else { continue }
                    let created = try await team.call(.post, "/portfolios/\(portfolio)/transactions", team.ann, Self.body(entry), expect: .created)
                    entry.id = try #require(created["id"]?.string.flatMap(UUID.init(uuidString:)))
                    entries.append(entry)
                }
                #expect(entries.count > 25 && entries.contains { $0.kind == .sell }, "round \(round): a ledger worth booking")
                for asOf in ["2024-02-15", "2024-04-15", "2024-06-03", DayNumber.text(last)] {
                    let ledger = try Ledger.book(entries, splits: splits, method: .fifo, asOf: asOf, allowOverdraw: true)
                    let report = try await team.call(.get, "/portfolios/\(portfolio)/holdings?as_of=\(asOf)", team.ann)
                    Self.expect(report, matches: ledger.summary, context: "round \(round) as of \(asOf)")
                }
            }
        }
    }

    static func body(_ entry: Ledger.Entry) -> String {
        var fields = [#""type":"\#(entry.kind.rawValue)""#, #""trade_date":"\#(entry.date)""#, #""currency":"\#(entry.currency)""#, #""fx_rate":"\#(entry.fxRate)""#]
        if let symbol = entry.symbol { fields.append(#""symbol":"\#(symbol)""#) }
        if entry.kind == .buy || entry.kind == .sell {
            fields += [#""quantity":"\#(entry.quantity)""#, #""price":"\#(entry.price)""#, #""fee":"\#(entry.fee)""#]
        } else {
            fields.append(#""amount":"\#(entry.amount)""#)
        }
        return "{" + fields.joined(separator: ",") + "}"
    }

    static func expect(_ report: JSONValue, matches book: BookSummary, context: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let positions = report["positions"]?.array ?? []
        #expect(positions.map { $0["symbol"]?.string } == book.positions.map(\.symbol), "\(context): symbols", sourceLocation: sourceLocation)
        for (line, position) in zip(positions, book.positions) {
            #expect(line["quantity"]?.string.flatMap { Decimal(string: $0) } == position.quantity, "\(context): \(position.symbol) quantity", sourceLocation: sourceLocation)
            #expect(line["cost"]?.string == DecimalString(position.cost, scale: 2).text, "\(context): \(position.symbol) cost", sourceLocation: sourceLocation)
            #expect(line["cost_base"]?.string == DecimalString(position.costBase, scale: 2).text, "\(context): \(position.symbol) cost in base", sourceLocation: sourceLocation)
        }
        let cash = Dictionary(uniqueKeysWithValues: (report["cash"]?.array ?? []).compactMap { line in line["currency"]?.string.map { ($0, line["amount"]?.string) } })
        let expectedCash = Dictionary(uniqueKeysWithValues: book.cash.filter { $0.value != 0 }.map { ($0.key, Optional(DecimalString($0.value, scale: 2).text)) })
        #expect(cash == expectedCash, "\(context): cash", sourceLocation: sourceLocation)
        let deposits = (report["implicit_deposits"]?.array ?? []).map { "\($0["currency"]?.string ?? "") \($0["amount"]?.string ?? "") \($0["entries"] ?? .null)" }
        let expectedDeposits = book.implicitDeposits.sorted { $0.key < $1.key }.map {
            "\($0.key) \(DecimalString($0.value.amount, scale: 2).text) \(JSONValue.number(Double($0.value.entries)))"
        }
        #expect(deposits == expectedDeposits, "\(context): implicit deposits", sourceLocation: sourceLocation)
        #expect(report["dividends_base"]?.string == DecimalString(book.dividends, scale: 2).text, "\(context): dividends", sourceLocation: sourceLocation)
        #expect(report["fees_base"]?.string == DecimalString(book.fees, scale: 2).text, "\(context): fees", sourceLocation: sourceLocation)
    }
}
