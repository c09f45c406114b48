import AtriumCore
import Foundation
import PostgresNIO

/// A portfolio's returns over a period, from its ledger and the market's closes: every
/// day valued (positions at the last close on or before it, or at their last trade price
/// before any close exists; cash; both at that day's FX), deposits (implicit ones too)
/// and withdrawals in the base at trade-date FX.
struct Performance: Codable, Sendable {
    var from: String
    var to: String
    var currency: String
    /// `snapshots` when the nightly valuations cover the period, else `ledger`.
    var source: String
    var startValue: DecimalString
    var endValue: DecimalString
    var inflows: DecimalString
    var outflows: DecimalString
    /// Time-weighted, linked daily, for the period (not annualised).
    var twr: DecimalString
    /// Money-weighted, a yearly rate; nil when no rate solves the flows (`xirrUnavailable` says why).
    var xirr: DecimalString?
    var xirrUnavailable: String?
    var days: Int
}

enum PerformanceReport {
    /// The period's returns from the nightly valuations when they cover it (a read of
    /// a few rows), else nil: the ledger is to be replayed (`replay`).
    static func fromSnapshots(of id: UUID, from requestedFrom: String?, to: String, on transaction: TenantTransaction) async throws -> Performance? {
        let portfolio = try await PortfolioStore.table.find(id, on: transaction)
        let (start, end, firstEntry) = try await period(of: id, from: requestedFrom, to: to, on: transaction)
        guard let firstEntry, let snapshots = try await ValuationStore.days(of: id, firstDay: firstEntry, from: start, to: end, on: transaction) else {
            return nil
        }
        return summarize(snapshots, from: start, to: end, base: portfolio.baseCurrency, source: "snapshots")
    }

    /// The period's returns from the ledger replayed day by day: five years of 500
    /// instruments' closes read, so the route runs it behind the request path
    /// (`readBehindRequests`) and values the days on the compute pool.
    static func replay(of id: UUID, from requestedFrom: String?, to: String, on transaction: TenantTransaction) async throws -> Performance {
        let portfolio = try await PortfolioStore.table.find(id, on: transaction)
        let (start, end, _) = try await period(of: id, from: requestedFrom, to: to, on: transaction)
        let inputs = try await inputs(of: portfolio, through: to, on: transaction)
        let base = portfolio.baseCurrency
        let all = try await ComputePool.shared.run {
            try daily(
                entries: inputs.entries, splits: inputs.splits, method: portfolio.costMethod, base: base, closes: try closeTexts(ofArrays: inputs.closes),
                manual: try series(inputs.manual), rates: try series(inputs.rates), through: end)
        }
        return summarize(all, from: start, to: end, base: base, source: "ledger")
    }

    /// The period's first and last day numbers (from: the ledger's first entry unless
    /// given) and the ledger's first entry's date.
    static func period(of id: UUID, from requestedFrom: String?, to: String, on transaction: TenantTransaction) async throws
        -> (start: Int, end: Int, firstEntry: String?)
    {
        guard let end = DayNumber.of(to) else { throw AtriumError.validation(field: "to", "must be a date written YYYY-MM-DD") }
        let firstEntry = try await transaction.query("SELECT min(trade_date)::text FROM portfolio_transactions WHERE portfolio_id = \(id)").first
            .flatMap { row -> String? in
                var columns = RowReader(row)
                return try columns.next()
            }
        let start = requestedFrom.flatMap(DayNumber.of) ?? firstEntry.flatMap(DayNumber.of) ?? end
        guard start <= end else { throw AtriumError.validation(field: "from", "must be on or before to") }
        return (start, end, firstEntry)
    }

    typealias Series = [String: [(day: Int, value: Decimal)]]

    /// The ledger, splits, prices and FX a daily valuation through `to` reads; the
    /// prices and rates as rows, which `series` turns into figures on the compute pool
    /// (five years of 500 instruments' closes are 650,000 of them).
    static func inputs(of portfolio: Portfolio, through to: String, on transaction: TenantTransaction) async throws
        -> (entries: [Ledger.Entry], splits: [Ledger.Split], closes: [PostgresRow], manual: [PostgresRow], rates: [PostgresRow])
    {
        let entries = try await TransactionStore.ledger(of: portfolio.id, on: transaction)
        let splits = try await TransactionStore.splits(of: portfolio.id, on: transaction)
        let symbols = Array(Set(entries.compactMap(\.symbol))).sorted()
        let base = portfolio.baseCurrency
        let currencies = Array(Set(entries.map(\.currency)).subtracting([base])).sorted()
        // A row per instrument, its closes as two arrays: 500 rows to receive and decode,
        // not 650,000 (row by row, that took longer than the valuation itself). Each
        // instrument's closes are one range of the key's index, read in day order and
        // gathered as they come (an `ORDER BY` inside `array_agg`, or one scan of every
        // instrument, had PostgreSQL sort all 650,000 first).
        let closes = try await transaction.query(
            """
            SELECT held.symbol, closes.days, closes.values FROM unnest(\(symbols)::text[]) AS held (symbol)
            CROSS JOIN LATERAL (
                SELECT array_agg(day) AS days, array_agg(close) AS values FROM (
                    SELECT (on_date - DATE '1970-01-01')::int4 AS day, close::text AS close FROM portfolio_prices
                    WHERE symbol = held.symbol AND on_date <= \(to)::date ORDER BY on_date) in_order
            ) closes
            WHERE closes.days IS NOT NULL
            """)
        // The portfolio's own prices win from their date on, as in holdings.
        let manual = try await transaction.query(
            """
            SELECT symbol, (on_date - DATE '1970-01-01')::int4, price::text FROM portfolio_manual_prices WHERE portfolio_id = \(portfolio.id) AND on_date <= \(to)::date
            ORDER BY symbol, on_date
            """)
        // Rates to the base either way round, as `MarketReader.fxRate` reads them.
        let rates = try await transaction.query(
            """
            SELECT CASE WHEN base = \(base) THEN quote ELSE base END, (on_date - DATE '1970-01-01')::int4,
                   CASE WHEN base = \(base) THEN (1 / rate)::text ELSE rate::text END
            FROM portfolio_fx_rates
            WHERE ((base = \(base) AND quote = ANY(\(currencies))) OR (quote = \(base) AND base = ANY(\(currencies)))) AND on_date <= \(to)::date
            ORDER BY 1, 2, (base = \(base)) DESC
            """)
        return (entries, splits, closes, manual, rates)
    }

    /// Each instrument's closes as PostgreSQL writes them, in day order.
    typealias CloseTexts = [String: [(day: Int, text: String)]]

    /// Rows of (key, day numbers as `int4[]`, decimals as `text[]`, in day order) as each
    /// key's closes, as written: `daily` reads them as fixed point or `Decimal`.
    static func closeTexts(ofArrays rows: [PostgresRow]) throws -> CloseTexts {
        var result: CloseTexts = [:]
        for row in rows {
            var columns = RowReader(row)
            let key: String = try columns.next()
            let days: [Int32] = try columns.next()
            let values: [String] = try columns.next()
            guard days.count == values.count else { throw PortfolioDataError("\(key): \(days.count) days for \(values.count) closes") }
            var points: [(day: Int, text: String)] = []
            points.reserveCapacity(days.count)
            for (day, text) in zip(days, values) {
                guard points.last.map({ $0.day < Int(day) }) ?? true else { throw PortfolioDataError("\(key): closes out of day order") }
                points.append((Int(day), text))
            }
            result[key] = points
        }
        return result
    }

    /// Rows of (key, day number as `int4`, decimal as text) as a forward-fillable series
    /// per key: a day travels as four bytes, not ten characters to parse again.
    static func series(_ rows: [PostgresRow]) throws -> [String: [(day: Int, value: Decimal)]] {
        // Rows come grouped by key: each key's points are gathered in one array, which
        // goes into the dictionary when the next key starts.
        var result: [String: [(day: Int, value: Decimal)]] = [:]
        var current: String?
        var points: [(day: Int, value: Decimal)] = []
        for row in rows {
            var columns = RowReader(row)
            let key: String = try columns.next()
            let day = Int(try columns.next() as Int32)
            guard let value = try LedgerTransaction.decimal(columns.next())?.value else { continue }
            if key != current {
                if let current { result[current] = points }
                current = key
                points = result[key] ?? []
            }
            if points.last?.day == day { points.removeLast() }
            points.append((day, value))
        }
        if let current { result[current] = points }
        return result
    }

    /// Every day's value and flows from the ledger's first day through `end`: no
    /// database here, so it runs on the compute pool. Positions are valued in fixed
    /// point (`FixedWorth`) when every close and the figures they meet allow it, else in
    /// `Decimal`.
    static func daily(
        entries: [Ledger.Entry], splits: [Ledger.Split], method: CostMethod, base: String, closes: CloseTexts, manual: Series, rates: Series,
        through end: Int
    ) throws -> [Returns.Day] {
        // Every close read by `parse`, or nil as soon as one does not read (fixed point
        // that cannot hold it).
        func read<Value>(_ parse: (String) throws -> Value?) throws -> [String: [(day: Int, value: Value)]]? {
            var result: [String: [(day: Int, value: Value)]] = [:]
            for (symbol, points) in closes {
                var values: [(day: Int, value: Value)] = []
                values.reserveCapacity(points.count)
                for point in points {
                    guard let value = try parse(point.text) else { return nil }
                    values.append((point.day, value))
                }
                result[symbol] = values
            }
            return result
        }
        if let fixed = try read(FixedWorth.parse) {
            do {
                return try daily(
                    FixedWorth(), entries: entries, splits: splits, method: method, base: base, closes: fixed, manual: manual, rates: rates, through: end)
            } catch is FixedWorth.Inexact {}
        }
        let exact = try read { try LedgerTransaction.decimal($0)?.value } ?? [:]
        return try daily(ExactWorth(), entries: entries, splits: splits, method: method, base: base, closes: exact, manual: manual, rates: rates, through: end)
    }

    /// Every day's value and flows, positions valued by `model`.
    static func daily<Model: PositionWorth>(
        _ model: Model, entries: [Ledger.Entry], splits: [Ledger.Split], method: CostMethod, base: String,
        closes: [String: [(day: Int, value: Model.Price)]], manual: Series, rates: Series, through end: Int
    ) throws -> [Returns.Day] {
        // Refused bookings (a sell of more than was held) are the ledger's to report.
        do {
            _ = try Ledger.book(entries, splits: splits, method: method.lotMethod, asOf: DayNumber.text(end), allowOverdraw: true)
        } catch {
            throw LedgerProblems.problem(for: error, entries: entries)
        }
        guard let firstDay = entries.compactMap({ DayNumber.of($0.date) }).min(), firstDay <= end else { return [] }
        var byDay: [Int: [Ledger.Entry]] = [:]
        for entry in entries { if let day = DayNumber.of(entry.date), day <= end { byDay[day, default: []].append(entry) } }
        var splitsByDay: [Int: [Ledger.Split]] = [:]
        for split in splits { if let day = DayNumber.of(split.date), day <= end { splitsByDay[day, default: []].append(split) } }

        // Positions are valued incrementally: an instrument's value (held × price, in its
        // currency) changes only on a day its price, quantity or currency does, so each
        // day touches those instruments and multiplies each currency's subtotal by that
        // day's rate, instead of every instrument every day.
        let symbols = Array(Set(entries.compactMap(\.symbol))).sorted()
        let index = Dictionary(uniqueKeysWithValues: symbols.enumerated().map { ($1, $0) })
        let closeSeries = symbols.map { closes[$0] ?? [] }
        let manualSeries = try symbols.map { symbol in try (manual[symbol] ?? []).map { ($0.day, try model.price($0.value)) } }
        var closeCursor = [Int](repeating: -1, count: symbols.count)
        var manualCursor = [Int](repeating: -1, count: symbols.count)
        var priceChanges: [Int: [Int]] = [:]
        for position in symbols.indices {
            for point in closeSeries[position] + manualSeries[position] where point.day <= end {
                priceChanges[max(point.day, firstDay), default: []].append(position)
            }
        }
        var held = [Decimal](repeating: 0, count: symbols.count)
        var heldWorth = [Model.Held](repeating: try model.held(0), count: symbols.count)
        var lastTrade = [(price: Model.Price, currency: String)?](repeating: nil, count: symbols.count)
        var worth = [Model.Amount](repeating: model.zero, count: symbols.count)
        // Subtotals per currency, by the currency's place in `currencies`.
        var currencies: [String] = []
        var worthCurrency = [Int?](repeating: nil, count: symbols.count)
        var subtotal: [Model.Amount] = []
        var touchedOn = [Int](repeating: Int.min, count: symbols.count)
        var cash: [String: Decimal] = [:]
        var rateCursors: [String: Int] = [:]
        func rate(_ currency: String, on day: Int) -> Decimal {
            guard currency != base, let series = rates[currency] else { return currency == base ? 1 : 0 }
            var cursor = rateCursors[currency] ?? -1
            while cursor + 1 < series.count, series[cursor + 1].day <= day { cursor += 1 }
            rateCursors[currency] = cursor
            return cursor >= 0 ? series[cursor].value : 0
        }
        func advance<Value>(_ cursor: inout Int, in series: [(day: Int, value: Value)], to day: Int) -> Value? {
            while cursor + 1 < series.count, series[cursor + 1].day <= day { cursor += 1 }
            return cursor >= 0 ? series[cursor].value : nil
        }
        var days: [Returns.Day] = []
        days.reserveCapacity(end - firstDay + 1)
        for day in firstDay...end {
            var inflow: Decimal = 0
            var outflow: Decimal = 0
            var touched = priceChanges[day] ?? []
            for split in splitsByDay[day] ?? [] {
                guard let position = index[split.symbol] else { continue }
                held[position] *= split.ratio
                touched.append(position)
                // Cash in lieu of the fraction: value moves from the position to its
                // currency's cash, no flow in or out of the portfolio.
                if let price = split.cashInLieu, held[position] > 0, case let fraction = held[position] - held[position].wholePart, fraction > 0 {
                    held[position] -= fraction
                    cash[lastTrade[position]?.currency ?? base, default: 0] += fraction * price
                }
                heldWorth[position] = try model.held(held[position])
            }
            for entry in byDay[day] ?? [] {
                func take(_ amount: Decimal) {
                    let holding = cash[entry.currency, default: 0]
                    if holding < amount { inflow += (amount - holding) * entry.fxRate }
                    cash[entry.currency] = max(holding, amount) - amount
                }
                switch entry.kind {
                case .buy, .sell:
                    guard let position = entry.symbol.flatMap({ index[$0] }) else { continue }
                    held[position] += entry.kind == .buy ? entry.quantity : -entry.quantity
                    heldWorth[position] = try model.held(held[position])
                    lastTrade[position] = (try model.price(entry.price), entry.currency)
                    touched.append(position)
                    if entry.kind == .buy {
                        take(entry.quantity * entry.price + entry.fee)
                    } else {
                        cash[entry.currency, default: 0] += entry.quantity * entry.price - entry.fee
                    }
                case .dividend:
                    cash[entry.currency, default: 0] += entry.amount - entry.fee
                case .fee:
                    take(entry.amount + entry.fee)
                case .deposit:
                    cash[entry.currency, default: 0] += entry.amount - entry.fee
                    inflow += (entry.amount - entry.fee) * entry.fxRate
                case .withdrawal:
                    cash[entry.currency, default: 0] -= entry.amount + entry.fee
                    outflow += (entry.amount + entry.fee) * entry.fxRate
                }
            }
            for position in touched where touchedOn[position] != day {
                touchedOn[position] = day
                // The portfolio's own price wins, then the close, then the last trade's price.
                let ownPrice = advance(&manualCursor[position], in: manualSeries[position], to: day)
                let close = advance(&closeCursor[position], in: closeSeries[position], to: day)
                let currency = lastTrade[position]?.currency ?? base
                if let previous = worthCurrency[position] { subtotal[previous] = try model.subtracting(worth[position], from: subtotal[previous]) }
                if let price = ownPrice ?? close ?? lastTrade[position]?.price {
                    worth[position] = try model.worth(heldWorth[position], at: price)
                } else {
                    worth[position] = model.zero
                }
                let place = currencies.firstIndex(of: currency) ?? {
                    currencies.append(currency)
                    subtotal.append(model.zero)
                    return currencies.count - 1
                }()
                worthCurrency[position] = place
                subtotal[place] = try model.adding(worth[position], to: subtotal[place])
            }
            var value: Decimal = 0
            for (place, amount) in subtotal.enumerated() where !model.isZero(amount) {
                value += try model.decimal(amount) * rate(currencies[place], on: day)
            }
            for (currency, amount) in cash { value += amount * rate(currency, on: day) }
            days.append(Returns.Day(day: day, value: value, inflow: inflow, outflow: outflow))
        }
        return days
    }

    /// The returns of the days from `start` through `end` of `all` (consecutive days; the
    /// value of the day before `start` is where the period starts).
    static func summarize(_ all: [Returns.Day], from start: Int, to end: Int, base: String, source: String) -> Performance {
        let scale = CurrencyCodes.minorUnitExponent(of: base) ?? 2
        let startValue = all.last(where: { $0.day < start })?.value ?? 0
        let days = all.filter { $0.day >= start && $0.day <= end }
        let endValue = days.last?.value ?? startValue
        var investorFlows: [(day: Int, amount: Decimal)] = startValue != 0 ? [(start - 1, -startValue)] : []
        for day in days {
            if day.inflow != 0 { investorFlows.append((day.day, -day.inflow)) }
            if day.outflow != 0 { investorFlows.append((day.day, day.outflow)) }
        }
        investorFlows.append((end, endValue))
        var performance = Performance(
            from: DayNumber.text(start), to: DayNumber.text(end), currency: base, source: source, startValue: DecimalString(startValue, scale: scale),
            endValue: DecimalString(endValue, scale: scale), inflows: DecimalString(days.reduce(0) { $0 + $1.inflow }, scale: scale),
            outflows: DecimalString(days.reduce(0) { $0 + $1.outflow }, scale: scale),
            twr: DecimalString(Returns.timeWeighted(days, startValue: startValue), scale: 6), days: days.count)
        switch Returns.xirr(investorFlows) {
        case .success(let rate):
            performance.xirr = DecimalString(Decimal(string: String(format: "%.6f", rate)) ?? 0, scale: 6)
        case .failure(.oneSigned):
            performance.xirrUnavailable = "every flow has the same sign (nothing paid in, or nothing left and taken out), so no rate solves it"
        case .failure(.noRoot):
            performance.xirrUnavailable = "no yearly rate between -100 % and 10^8 % makes the flows worth zero"
        }
        return performance
    }
}
