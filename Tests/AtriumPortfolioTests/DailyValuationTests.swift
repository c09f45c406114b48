@testable import AtriumPortfolio
import Foundation
import Testing

/// The daily valuation behind performance and the nightly snapshots values only what
/// changed each day; here it is held, day by day, to the plain way: every instrument
/// valued every day at its own price, else its close, else its last trade's price, at
/// that day's rate.
@Suite struct DailyValuationTests {
    typealias Series = PerformanceReport.Series

    /// Every day from the first entry through `end`, valued from scratch.
    static func reference(entries: [Ledger.Entry], splits: [Ledger.Split], base: String, closes: Series, manual: Series, rates: Series, end: Int)
        -> [Decimal]
    {
        func latest(_ series: [(day: Int, value: Decimal)]?, on day: Int) -> Decimal? { series?.last { $0.day <= day }?.value }
        func rate(_ currency: String, on day: Int) -> Decimal { currency == base ? 1 : latest(rates[currency], on: day) ?? 0 }
        guard let first = entries.compactMap({ DayNumber.of($0.date) }).min() else { return [] }
        var quantity: [String: Decimal] = [:]
        var lastTrade: [String: (price: Decimal, currency: String)] = [:]
        var cash: [String: Decimal] = [:]
        var values: [Decimal] = []
        for day in first...end {
            for split in splits where DayNumber.of(split.date) == day { quantity[split.symbol] = quantity[split.symbol].map { $0 * split.ratio } }
            for entry in entries where DayNumber.of(entry.date) == day {
                let symbol = entry.symbol ?? ""
                switch entry.kind {
                case .buy:
                    quantity[symbol, default: 0] += entry.quantity
                    lastTrade[symbol] = (entry.price, entry.currency)
                    let cost = entry.quantity * entry.price + entry.fee
                    cash[entry.currency] = max(cash[entry.currency, default: 0], cost) - cost
                case .sell:
                    quantity[symbol, default: 0] -= entry.quantity
                    lastTrade[symbol] = (entry.price, entry.currency)
                    cash[entry.currency, default: 0] += entry.quantity * entry.price - entry.fee
                case .deposit, .dividend:
                    cash[entry.currency, default: 0] += entry.amount - entry.fee
                case .fee:
                    cash[entry.currency] = max(cash[entry.currency, default: 0], entry.amount + entry.fee) - entry.amount - entry.fee
                case .withdrawal:
                    cash[entry.currency, default: 0] -= entry.amount + entry.fee
                }
            }
            var value: Decimal = 0
            for (symbol, held) in quantity where held != 0 {
                let price = latest(manual[symbol], on: day) ?? latest(closes[symbol], on: day) ?? lastTrade[symbol]?.price ?? 0
                value += held * price * rate(lastTrade[symbol]?.currency ?? base, on: day)
            }
            for (currency, amount) in cash { value += amount * rate(currency, on: day) }
            values.append(value)
        }
        return values
    }

    @Test func valuingOnlyWhatChangedAgreesWithValuingEverythingEveryDay() throws {
        var generator = LedgerPropertyTests.Generator(state: 606)
        let start = DayNumber.of("2024-01-01") ?? 0
        let end = start + 120
        for round in 0..<25 {
            let symbols = ["AAA", "BBB", "CCC", "DDD"]
            var closes: Series = [:]
            var manual: Series = [:]
            for symbol in symbols where symbol != "DDD" {
                // Closes with gaps, some before the ledger starts.
                var day = start - 5
                while day <= end {
                    // Every fifth round a close with twelve places, which fixed point cannot hold.
                    let places = round % 5 == 4 && Int.random(in: 0..<3, using: &generator) == 0 ? 12 : 2
                    closes[symbol, default: []].append((day, LedgerPropertyTests.decimal(&generator, below: 200, places: places)))
                    day += Int.random(in: 1...4, using: &generator)
                }
            }
            manual["BBB"] = [(start + Int.random(in: 10...60, using: &generator), LedgerPropertyTests.decimal(&generator, below: 200, places: 2))]
            let rates: Series = ["EUR": (0..<10).map { (start + $0 * 12, LedgerPropertyTests.decimal(&generator, below: 2, places: 4)) }]
            let splits = [Ledger.Split(symbol: "AAA", date: DayNumber.text(start + Int.random(in: 5...100, using: &generator)), ratio: 2)]
            var entries: [Ledger.Entry] = []
            var held: [String: Decimal] = [:]
            for _ in 0..<30 {
                let day = start + Int.random(in: 0...110, using: &generator)
                let symbol = symbols[Int.random(in: 0..<symbols.count, using: &generator)]
                var entry = Ledger.Entry(
                    id: UUID(), kind: .buy, date: DayNumber.text(day), symbol: symbol, currency: symbol == "CCC" ? "EUR" : "USD",
                    fxRate: symbol == "CCC" ? Decimal(string: "1.1") ?? 1 : 1)
                switch Int.random(in: 0..<6, using: &generator) {
                case 0..<3:
                    entry.quantity = LedgerPropertyTests.decimal(&generator, below: 20, places: 1)
                    entry.price = LedgerPropertyTests.decimal(&generator, below: 200, places: 2)
                case 3 where (held[symbol] ?? 0) > 1:
                    entry.kind = .sell
                    entry.quantity = 1
                    entry.price = LedgerPropertyTests.decimal(&generator, below: 200, places: 2)
                case 4:
                    entry.kind = .deposit
                    entry.symbol = nil
                    entry.amount = LedgerPropertyTests.decimal(&generator, below: 1000, places: 2)
                default:
                    entry.kind = .dividend
                    entry.amount = LedgerPropertyTests.decimal(&generator, below: 20, places: 2)
                }
                guard (try? Ledger.book(entries + [entry], splits: splits, method: .fifo)) != nil else { continue }
                if entry.kind == .buy { held[symbol, default: 0] += entry.quantity }
                if entry.kind == .sell { held[symbol, default: 0] -= entry.quantity }
                entries.append(entry)
            }
            let ordered = entries.enumerated().sorted { ($0.element.date, $0.offset) < ($1.element.date, $1.offset) }.map(\.element)
            // As the database gives them: each close as written.
            let written = closes.mapValues { points in points.map { (day: $0.day, text: $0.value.description) } }
            let days = try PerformanceReport.daily(
                entries: ordered, splits: splits, method: .fifo, base: "USD", closes: written, manual: manual, rates: rates, through: end)
            let expected = Self.reference(entries: ordered, splits: splits, base: "USD", closes: closes, manual: manual, rates: rates, end: end)
            #expect(days.map(\.value) == expected, "round \(round)")
            #expect(days.count == expected.count && !days.isEmpty, "round \(round)")
            // Fixed point (where the figures allow it) and Decimal give the same days.
            let exact = try PerformanceReport.daily(
                ExactWorth(), entries: ordered, splits: splits, method: .fifo, base: "USD", closes: closes, manual: manual, rates: rates, through: end)
            #expect(exact.map(\.value) == expected, "round \(round)")
            let fixed = try? PerformanceReport.daily(
                FixedWorth(), entries: ordered, splits: splits, method: .fifo, base: "USD",
                closes: closes.mapValues { points in points.compactMap { point in FixedWorth.parse(point.value.description).map { (point.day, $0) } } },
                manual: manual, rates: rates, through: end)
            if round % 5 != 4 { #expect(fixed?.map(\.value) == expected, "round \(round)") }
        }
    }

    @Test func fixedPointTakesTenPlacesAndRefusesWhatItCannotHold() {
        #expect(FixedWorth.parse("12.5") == 125_000_000_000)
        #expect(FixedWorth.parse("-0.0000000001") == -1)
        #expect(FixedWorth.parse("0") == 0)
        #expect(FixedWorth.parse("999999999999999999.9999999999") == Int128("9999999999999999999999999999"))
        #expect(FixedWorth.parse("0.00000000001") == nil)
        #expect(FixedWorth.parse("1000000000000000000") == nil)
        #expect(FixedWorth.parse("1e5") == nil)
        #expect(FixedWorth.parse("") == nil)
        #expect(FixedWorth.parse("-") == nil)
        #expect(FixedWorth.parse("1.2.3") == nil)
        let model = FixedWorth()
        #expect((try? model.decimal(model.worth(model.held(Decimal(string: "2.5") ?? 0), at: model.price(Decimal(string: "0.1") ?? 0)))) == Decimal(string: "0.25"))
        #expect(throws: FixedWorth.Inexact.self) { try model.worth(Int128.max / 2, at: 3) }
        #expect(throws: FixedWorth.Inexact.self) { try model.adding(Int128.max, to: 1) }
    }
}
