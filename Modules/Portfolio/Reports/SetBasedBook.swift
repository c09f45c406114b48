import AtriumCore
import Foundation
import PostgresNIO

/// A FIFO ledger booked in SQL, set-based: each instrument's buys are ranges of the
/// cumulative quantity bought and its sells take the range from zero, so every lot's
/// remaining units and cost come from window sums in one statement, and cash with its
/// implicit deposits from a running sum and its running minimum in another (see
/// `0007_set_based_book.sql`). PostgreSQL reads the ten thousand entries of a large
/// ledger and returns a row per position and per currency, where the Swift booking had
/// every entry decoded and walked.
///
/// It books what pure FIFO books: a portfolio by moving average, or a ledger whose sells
/// name lots, is booked by `Ledger`; so is a ledger this booking finds refused (a sell of
/// more than was held, after a split was taken back), for `Ledger` to name the entry.
enum SetBasedBook {
    /// The ledger of `portfolio` booked as of `asOf`, or nil when `Ledger` must book it.
    static func summary(of portfolio: Portfolio, asOf: String, on transaction: TenantTransaction) async throws -> BookSummary? {
        guard try await books(portfolio, asOf: asOf, on: transaction),
            let positions = try await positions(of: portfolio.id, asOf: asOf, on: transaction)
        else { return nil }
        var summary = BookSummary(positions: [], currencies: [:], cash: [:], implicitDeposits: [:], dividends: 0, fees: 0)
        for position in positions {
            summary.currencies[position.position.symbol] = position.currency
            if position.position.quantity != 0 { summary.positions.append(position.position) }
        }
        summary.positions.sort { $0.symbol < $1.symbol }
        _ = try await addCash(of: portfolio.id, asOf: asOf, to: &summary, on: transaction)
        return summary
    }

    /// Whether the whole ledger of `portfolio` books, checked set-based: true when it is
    /// a FIFO ledger whose sells never take more than was held and whose withdrawals never
    /// more than the cash; false when `Ledger` must book it (to name what it refuses, or
    /// because it is not such a ledger).
    static func accepts(_ portfolio: Portfolio, on transaction: TenantTransaction) async throws -> Bool {
        let end = "9999-12-31"
        guard try await books(portfolio, asOf: end, on: transaction), try await positions(of: portfolio.id, asOf: end, on: transaction) != nil else {
            return false
        }
        var summary = BookSummary(positions: [], currencies: [:], cash: [:], implicitDeposits: [:], dividends: 0, fees: 0)
        return try await !addCash(of: portfolio.id, asOf: end, to: &summary, on: transaction)
    }

    /// Whether this booking books the ledger: FIFO, and no sell up to `asOf` names lots.
    static func books(_ portfolio: Portfolio, asOf: String, on transaction: TenantTransaction) async throws -> Bool {
        guard portfolio.costMethod == .fifo else { return false }
        let named = try await transaction.query(
            "SELECT EXISTS (SELECT 1 FROM portfolio_transactions WHERE portfolio_id = \(portfolio.id) AND lots <> '{}' AND trade_date <= \(asOf)::date)")
        guard let row = named.first else { return false }
        var columns = RowReader(row)
        let namesLots: Bool = try columns.next()
        return !namesLots
    }

    /// Each traded instrument's open quantity (in units after the splits up to `asOf`),
    /// FIFO cost as traded and in the base, and last trade currency; nil when a sell took
    /// more than was held then.
    static func positions(of portfolio: UUID, asOf: String, on transaction: TenantTransaction) async throws
        -> [(position: Ledger.Position, currency: String)]?
    {
        let rows = try await transaction.query(
            """
            WITH splits AS MATERIALIZED (
                SELECT symbol, effective_date, ratio FROM portfolio_corporate_actions WHERE kind = 'split' AND effective_date <= \(asOf)::date
            ), trades AS (
                SELECT t.symbol, t.kind, t.trade_date, t.entry_seq, t.currency, t.quantity * coalesce(
                           (SELECT portfolio_product(s.ratio) FROM splits s WHERE s.symbol = t.symbol AND s.effective_date > t.trade_date), 1) AS units,
                       t.quantity * t.price + t.fee AS cost, (t.quantity * t.price + t.fee) * t.fx_rate AS cost_base
                FROM portfolio_transactions t
                WHERE t.portfolio_id = \(portfolio) AND t.kind IN ('buy', 'sell') AND t.trade_date <= \(asOf)::date
            ), running AS (
                SELECT *, coalesce(sum(units) FILTER (WHERE kind = 'buy') OVER ledger, 0) AS bought,
                       coalesce(sum(units) FILTER (WHERE kind = 'sell') OVER ledger, 0) AS sold_through,
                       row_number() OVER (PARTITION BY symbol ORDER BY trade_date DESC, entry_seq DESC) AS latest
                FROM trades WINDOW ledger AS (PARTITION BY symbol ORDER BY trade_date, entry_seq ROWS UNBOUNDED PRECEDING)
            ), sold AS (
                SELECT symbol, coalesce(sum(units) FILTER (WHERE kind = 'sell'), 0) AS units,
                       bool_or(kind = 'sell' AND sold_through > bought) AS refused, min(currency) FILTER (WHERE latest = 1) AS currency
                FROM running GROUP BY symbol
            )
            SELECT s.symbol, s.currency, s.refused, (coalesce(sum(r.units), 0) - s.units)::text,
                   coalesce(sum(r.cost - portfolio_share(r.cost, least(greatest(s.units - (r.bought - r.units), 0), r.units), r.units)), 0)::text,
                   coalesce(sum(r.cost_base - portfolio_share(r.cost_base, least(greatest(s.units - (r.bought - r.units), 0), r.units), r.units)), 0)::text
            FROM sold s LEFT JOIN running r ON r.symbol = s.symbol AND r.kind = 'buy'
            GROUP BY s.symbol, s.currency, s.refused, s.units
            """)
        var positions: [(position: Ledger.Position, currency: String)] = []
        for row in rows {
            var columns = RowReader(row)
            let symbol: String = try columns.next()
            let currency: String = try columns.next()
            let refused: Bool = try columns.next()
            if refused { return nil }
            let quantity = try decimal(columns.next())
            let cost = try decimal(columns.next())
            let costBase = try decimal(columns.next())
            guard quantity >= 0 else { return nil }
            positions.append((Ledger.Position(symbol: symbol, quantity: quantity, cost: cost, costBase: costBase), currency))
        }
        return positions
    }

    /// Cash per currency: the running sum of the flows, floored at zero where a buy or a
    /// fee takes more than is held (the shortfall is an implicit deposit). A running sum
    /// S floored at each take is S − min(0, the lowest S at a take so far), so the cash
    /// is the last S less the last floor, the deposits the floor, and an entry booked one
    /// when its S went below the floor before it. Answers whether a withdrawal took more
    /// than was held (a withdrawal is never floored).
    static func addCash(of portfolio: UUID, asOf: String, to summary: inout BookSummary, on transaction: TenantTransaction) async throws -> Bool {
        let rows = try await transaction.query(
            """
            WITH flows AS (
                SELECT currency, trade_date, entry_seq, kind IN ('buy', 'fee') AS takes, kind = 'withdrawal' AS withdraws,
                       CASE kind WHEN 'buy' THEN -(quantity * price + fee) WHEN 'sell' THEN quantity * price - fee
                                 WHEN 'fee' THEN -(amount + fee) WHEN 'withdrawal' THEN -(amount + fee) ELSE amount - fee END AS delta,
                       CASE kind WHEN 'dividend' THEN (amount - fee) * fx_rate ELSE 0 END AS dividend,
                       CASE kind WHEN 'fee' THEN (amount + fee) * fx_rate ELSE 0 END AS fee_paid
                FROM portfolio_transactions WHERE portfolio_id = \(portfolio) AND trade_date <= \(asOf)::date
            ), running AS (
                SELECT *, sum(delta) OVER (ledger ROWS UNBOUNDED PRECEDING) AS total
                FROM flows WINDOW ledger AS (PARTITION BY currency ORDER BY trade_date, entry_seq)
            ), floored AS (
                SELECT *, least(0, min(total) FILTER (WHERE takes) OVER (ledger ROWS UNBOUNDED PRECEDING)) AS floor,
                       least(0, min(total) FILTER (WHERE takes) OVER (ledger ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)) AS floor_before
                FROM running WINDOW ledger AS (PARTITION BY currency ORDER BY trade_date, entry_seq)
            )
            SELECT currency, (sum(delta) - min(floor))::text, (-min(floor))::text, count(*) FILTER (WHERE takes AND total < floor_before)::int8,
                   sum(dividend)::text, sum(fee_paid)::text, bool_or(withdraws AND total < floor)
            FROM floored GROUP BY currency
            """)
        var overdrawn = false
        for row in rows {
            var columns = RowReader(row)
            let currency: String = try columns.next()
            summary.cash[currency] = try decimal(columns.next())
            let deposited = try decimal(columns.next())
            let entries: Int64 = try columns.next()
            if deposited != 0 { summary.implicitDeposits[currency] = .init(amount: deposited, entries: Int(entries)) }
            summary.dividends += try decimal(columns.next())
            summary.fees += try decimal(columns.next())
            let overdraws: Bool = try columns.next()
            overdrawn = overdrawn || overdraws
        }
        return overdrawn
    }

    static func decimal(_ text: String?) throws -> Decimal {
        try LedgerTransaction.decimal(text)?.value ?? 0
    }
}
