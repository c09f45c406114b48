import AtriumCore
import Foundation
import PostgresNIO

/// A FIFO ledger booked in SQL, set-based, in one statement that reads the ledger once:
///
/// - **Lots.** On each instrument the units of every buy are a range of the cumulative
///   quantity bought, and the sells up to the date take the range from zero (FIFO), so a
///   lot's part taken is the overlap of the two, from window sums; its cost taken is its
///   cumulative share, one rounding (`portfolio_share`, `0007_set_based_book.sql`).
///   Quantities are in units after the splits up to the date: each entry's quantity times
///   the ratios of the splits after it, found by joining the entry to the span between
///   two splits it falls in.
/// - **Cash.** A running sum S per currency, floored at zero where a buy or a fee takes
///   more than is held (the shortfall is an implicit deposit), is S − min(0, the lowest S
///   at a take so far): the cash is the last S less the last floor, the deposits are the
///   floor, and an entry booked one where its S fell below the floor before it.
///
/// PostgreSQL reads the ten thousand entries of a large ledger and returns a row per
/// position and per currency, where the Swift `Ledger` had every entry sent, decoded and
/// walked. It books what pure FIFO books: a portfolio by moving average, a ledger whose
/// sells name lots, or one holding an instrument whose split pays cash in lieu of
/// fractions, is booked by `Ledger`; so is one this booking finds refused (a
/// sell of more than was held, after a split was taken back), for `Ledger` to name the
/// entry. The tests hold both to the same figures on random ledgers.
enum SetBasedBook {
    /// What the statement found.
    struct Booking: Sendable {
        var summary: BookSummary
        /// A sell took more than was held, or a withdrawal more than the cash.
        var refused: Bool
        /// A sell names lots: not this booking's to book.
        var namesLots: Bool
        /// A split of an instrument held pays cash in lieu of fractions: also `Ledger`'s to
        /// book (the fraction sold depends on what is held on the split's date).
        var paysInLieu = false
        /// `InputsHash.ledgerDigest` of the same entries, when asked for.
        var ledgerDigest: String?
    }

    /// The ledger of `portfolio` booked as of `asOf`, or nil when `Ledger` must book it.
    static func summary(of portfolio: Portfolio, asOf: String, on transaction: TenantTransaction) async throws -> (BookSummary, ledgerDigest: String)? {
        guard portfolio.costMethod == .fifo else { return nil }
        let booking = try await book(portfolio.id, asOf: asOf, digest: true, on: transaction)
        guard !booking.refused, !booking.namesLots, !booking.paysInLieu, let digest = booking.ledgerDigest else { return nil }
        return (booking.summary, digest)
    }

    /// What a change of a ledger touched: the instrument it trades (nil for cash), the
    /// currency of its cash, and its date.
    struct Change: Sendable {
        var symbol: String?
        var currency: String
        var date: String
    }

    /// Whether the ledger of `portfolio` still books after `change`, checked set-based on
    /// what the change can refuse: the sells of its instrument (never more than was held,
    /// in ledger order, from any date), and, when a withdrawal in its currency is dated on
    /// or after it, the cash of that currency (more cash earlier refuses nothing, and with
    /// no withdrawal after the change none can be refused). False when `Ledger` must book
    /// it: to name what it refuses, or because it is not a FIFO ledger or names lots there.
    static func accepts(_ portfolio: Portfolio, after change: Change, on transaction: TenantTransaction) async throws -> Bool {
        guard portfolio.costMethod == .fifo else { return false }
        let booking = try await book(
            portfolio.id, asOf: "9999-12-31", only: change.symbol ?? "", cashAfter: (change.currency, change.date), digest: false, on: transaction)
        return !booking.refused && !booking.namesLots && !booking.paysInLieu
    }

    /// Why the whole ledger of `portfolio` does not stand, or null (one nullable `text`):
    /// the check of entries imported in bulk (`TransactionImports`), whatever the cost
    /// method (what was held and the cash do not depend on it); a ledger whose sells name
    /// lots is not imported into, as the lots an imported sell takes could be the ones
    /// named.
    static func refusal(of portfolio: UUID) -> PostgresQuery {
        let booked = statement(portfolio, asOf: "9999-12-31", only: nil, cashAfter: nil, digest: false)
        var binds = booked.binds
        binds.append(portfolio)
        return PostgresQuery(
            unsafeSQL: """
                SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM portfolio_portfolios WHERE id = $\(binds.count)) THEN 'the portfolio does not exist' ELSE (
                SELECT string_agg(CASE part
                    WHEN 'position' THEN 'the sells of ' || symbol || ' would take more than was held'
                    WHEN 'cash' THEN 'the withdrawals in ' || currency || ' would take more than the cash held'
                    ELSE 'sells of this portfolio name their lots, which entries imported in bulk could take; record them one by one' END,
                    '; ' ORDER BY part, symbol, currency)
                FROM (\(booked.text)) booked (part, symbol, currency, flag, quantity, b, c, d, e, n)
                WHERE flag OR (part = 'position' AND quantity::numeric < 0)) END
                """, binds: binds)
    }

    /// Books the ledger as of `asOf`: every instrument and currency, or (`only`) one
    /// instrument's lots and, when a withdrawal in `cashAfter`'s currency is dated on or
    /// after its date, that currency's cash.
    static func book(
        _ portfolio: UUID, asOf: String, only symbol: String? = nil, cashAfter: (currency: String, date: String)? = nil, digest: Bool,
        on transaction: TenantTransaction
    ) async throws -> Booking {
        let rows = try await transaction.query(statement(portfolio, asOf: asOf, only: symbol, cashAfter: cashAfter, digest: digest))
        return try booking(of: rows)
    }

    /// The statement: rows of (part, symbol, currency, flag, four figures as text, the
    /// digest, a count), a part being `position`, `cash` or the one `ledger` row.
    static func statement(_ portfolio: UUID, asOf: String, only symbol: String?, cashAfter: (currency: String, date: String)?, digest: Bool) -> SQL {
        let everything = symbol == nil
        let cashCurrency = cashAfter?.currency ?? ""
        let read = "id, kind, trade_date, entry_seq, symbol, quantity, price, amount, currency, fee, fx_rate, lots"
        // The whole ledger, or one instrument's entries and (second branch) its currency's
        // cash entries when a withdrawal follows the change: two index reads, each left out
        // of the plan (a constant `true OR`, `false AND`) when it has nothing to add.
        return
            """
            WITH ledger AS MATERIALIZED (
                SELECT \(unescaped: read) FROM portfolio_transactions
                WHERE portfolio_id = \(portfolio) AND trade_date <= \(asOf)::date AND (\(unescaped: everything ? "true OR " : "")symbol = \(symbol ?? ""))
                UNION ALL
                SELECT \(unescaped: read) FROM portfolio_transactions
                WHERE \(unescaped: everything ? "false AND " : "")portfolio_id = \(portfolio) AND trade_date <= \(asOf)::date
                  AND symbol IS DISTINCT FROM \(symbol ?? "") AND currency = \(cashCurrency) AND EXISTS (
                      SELECT 1 FROM portfolio_transactions w WHERE w.portfolio_id = \(portfolio) AND w.kind = 'withdrawal'
                        AND w.currency = \(cashCurrency) AND w.trade_date >= \(cashAfter?.date ?? "9999-12-31")::date)
            ), spans AS (
                -- Entries dated before a split and on or after the one before it take the
                -- product of the ratios from that split on.
                SELECT symbol, lag(effective_date) OVER (PARTITION BY symbol ORDER BY effective_date) AS starts, effective_date AS ends,
                       portfolio_product(ratio) OVER (PARTITION BY symbol ORDER BY effective_date DESC ROWS UNBOUNDED PRECEDING) AS factor
                FROM portfolio_corporate_actions
                WHERE kind = 'split' AND effective_date <= \(asOf)::date AND symbol IN (SELECT symbol FROM ledger)
            ), trades AS (
                SELECT t.symbol, t.kind, t.trade_date, t.entry_seq, t.currency, t.quantity * coalesce(s.factor, 1) AS units,
                       t.quantity * t.price + t.fee AS cost, (t.quantity * t.price + t.fee) * t.fx_rate AS cost_base
                FROM ledger t
                LEFT JOIN spans s ON s.symbol = t.symbol AND t.trade_date < s.ends AND (s.starts IS NULL OR t.trade_date >= s.starts)
                WHERE t.kind IN ('buy', 'sell') AND (\(everything) OR t.symbol = \(symbol))
            ), running AS (
                -- One pass over each instrument in ledger order: what was bought and sold
                -- through each entry, and (whole frame) all it sold and its last currency.
                SELECT *, coalesce(sum(units) FILTER (WHERE kind = 'buy') OVER ledger_order, 0) AS bought,
                       coalesce(sum(units) FILTER (WHERE kind = 'sell') OVER ledger_order, 0) AS sold_through,
                       coalesce(sum(units) FILTER (WHERE kind = 'sell') OVER whole, 0) AS sold,
                       last_value(currency) OVER whole AS last_currency
                FROM trades WINDOW ledger_order AS (PARTITION BY symbol ORDER BY trade_date, entry_seq ROWS UNBOUNDED PRECEDING),
                    whole AS (PARTITION BY symbol ORDER BY trade_date, entry_seq ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
            ), lots AS (
                -- What the sells took of each lot: none of it, all of it, or (one lot per
                -- instrument at most) part, whose cost left is its cost less the cumulative share taken.
                SELECT *, least(greatest(sold - (bought - units), 0), units) AS taken FROM running
            ), positions AS (
                SELECT symbol, min(last_currency) AS currency, bool_or(kind = 'sell' AND sold_through > bought) AS refused,
                       coalesce(sum(units) FILTER (WHERE kind = 'buy'), 0) - min(sold) AS quantity,
                       coalesce(sum(CASE WHEN taken = 0 THEN cost WHEN taken = units THEN 0
                                         ELSE cost - portfolio_share(cost, taken, units) END) FILTER (WHERE kind = 'buy'), 0) AS cost,
                       coalesce(sum(CASE WHEN taken = 0 THEN cost_base WHEN taken = units THEN 0
                                         ELSE cost_base - portfolio_share(cost_base, taken, units) END) FILTER (WHERE kind = 'buy'), 0) AS cost_base
                FROM lots GROUP BY symbol
            ), flows AS (
                SELECT currency, trade_date, entry_seq, kind IN ('buy', 'fee') AS takes, kind = 'withdrawal' AS withdraws,
                       CASE kind WHEN 'buy' THEN -(quantity * price + fee) WHEN 'sell' THEN quantity * price - fee
                                 WHEN 'fee' THEN -(amount + fee) WHEN 'withdrawal' THEN -(amount + fee) ELSE amount - fee END AS delta,
                       CASE kind WHEN 'dividend' THEN (amount - fee) * fx_rate ELSE 0 END AS dividend,
                       CASE kind WHEN 'fee' THEN (amount + fee) * fx_rate ELSE 0 END AS fee_paid
                FROM ledger WHERE \(everything) OR currency = \(cashCurrency)
            ), running_cash AS (
                SELECT *, sum(delta) OVER (cash_order ROWS UNBOUNDED PRECEDING) AS total
                FROM flows WINDOW cash_order AS (PARTITION BY currency ORDER BY trade_date, entry_seq)
            ), floored AS (
                SELECT *, least(0, min(total) FILTER (WHERE takes) OVER (cash_order ROWS UNBOUNDED PRECEDING)) AS floor,
                       least(0, min(total) FILTER (WHERE takes) OVER (cash_order ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)) AS floor_before
                FROM running_cash WINDOW cash_order AS (PARTITION BY currency ORDER BY trade_date, entry_seq)
            ), cash AS (
                SELECT currency, sum(delta) - min(floor) AS held, -min(floor) AS deposited,
                       count(*) FILTER (WHERE takes AND total < floor_before) AS deposits, sum(dividend) AS dividends, sum(fee_paid) AS fees,
                       bool_or(withdraws AND total < floor) AS overdrawn
                FROM floored GROUP BY currency
            )
            SELECT 'position', symbol, currency, refused, quantity::text, cost::text, cost_base::text, NULL, NULL, 0::int8 FROM positions
            UNION ALL
            SELECT 'cash', NULL, currency, overdrawn, held::text, deposited::text, dividends::text, fees::text, NULL, deposits FROM cash
            UNION ALL
            SELECT 'ledger', NULL, NULL, coalesce(bool_or(lots <> '{}'), false),
                   CASE WHEN EXISTS (
                       SELECT 1 FROM portfolio_corporate_actions WHERE kind = 'split' AND cash_in_lieu_price IS NOT NULL
                         AND effective_date <= \(asOf)::date AND symbol IN (SELECT symbol FROM ledger)) THEN '1' END, NULL, NULL, NULL,
                   CASE WHEN \(digest) THEN encode(sha256(convert_to(coalesce(
                       string_agg(\(unescaped: InputsHash.ledgerLine), E'\\n' ORDER BY trade_date, entry_seq) FILTER (WHERE \(digest)), ''), 'UTF8')), 'hex') END,
                   0::int8
            FROM ledger
            """
    }

    static func booking(of rows: [PostgresRow]) throws -> Booking {
        var booking = Booking(
            summary: BookSummary(positions: [], currencies: [:], cash: [:], implicitDeposits: [:], dividends: 0, fees: 0), refused: false,
            namesLots: false)
        for row in rows {
            var columns = RowReader(row)
            let part: String = try columns.next()
            let symbol: String? = try columns.next()
            let currency: String? = try columns.next()
            let flag: Bool = try columns.next()
            let figures: [String?] = try (0..<4).map { _ in try columns.next() }
            let text: String? = try columns.next()
            let count: Int64 = try columns.next()
            let values = try figures.map { try LedgerTransaction.decimal($0)?.value ?? 0 }
            switch part {
            case "position":
                guard let symbol, let currency else { throw PortfolioDataError("a position without its symbol or currency") }
                booking.refused = booking.refused || flag || values[0] < 0
                booking.summary.currencies[symbol] = currency
                if values[0] != 0 { booking.summary.positions.append(Ledger.Position(symbol: symbol, quantity: values[0], cost: values[1], costBase: values[2])) }
            case "cash":
                guard let currency else { throw PortfolioDataError("cash without its currency") }
                booking.refused = booking.refused || flag
                booking.summary.cash[currency] = values[0]
                if values[1] != 0 { booking.summary.implicitDeposits[currency] = .init(amount: values[1], entries: Int(count)) }
                booking.summary.dividends += values[2]
                booking.summary.fees += values[3]
            default:
                booking.namesLots = flag
                booking.paysInLieu = values[0] == 1
                booking.ledgerDigest = text
            }
        }
        booking.summary.positions.sort { $0.symbol < $1.symbol }
        return booking
    }
}
