import AtriumCore
import Foundation
import PostgresNIO

/// What a report reads of the tenant's market data: the close (or a portfolio's own
/// price) on or before a date, and the FX rate on or before a date, either way round.
enum MarketReader {
    struct Rate: Sendable {
        /// Units of the target per unit of the source (as stored, when stored this way round).
        var rate: DecimalString
        var date: String
    }

    struct Quote: Sendable {
        var price: Decimal
        var date: String
        /// `market` (the tenant's closes) or `manual` (the portfolio's own price).
        var source: String
    }

    /// The rate turning `source` into `target` on the latest date on or before `date`
    /// that has one, stored either way round; nil when none is stored.
    static func fxRate(from source: String, to target: String, on date: String, on transaction: TenantTransaction) async throws -> Rate? {
        if source == target { return Rate(rate: DecimalString(1), date: date) }
        let rows = try await transaction.query(
            """
            SELECT base, rate::text, on_date::text FROM portfolio_fx_rates
            WHERE ((base = \(source) AND quote = \(target)) OR (base = \(target) AND quote = \(source))) AND on_date <= \(date)::date
            ORDER BY on_date DESC, base = \(source) DESC LIMIT 1
            """)
        guard let row = rows.first else { return nil }
        var columns = RowReader(row)
        let base: String = try columns.next()
        guard let stored = try LedgerTransaction.decimal(columns.next()), stored.value > 0 else { return nil }
        let on: String = try columns.next()
        return Rate(rate: base == source ? stored : DecimalString(1 / stored.value, scale: 20), date: on)
    }

    static func fxMissing(from source: String, to target: String, on date: String, field: String) -> AtriumError {
        LedgerProblems.problem(
            "fx_rate_missing", field: field,
            "no \(source)/\(target) exchange rate on or before \(date): add one (POST market/fx) or send fx_rate")
    }

    /// The price of each of `symbols` on or before `date`: the portfolio's own price when
    /// it has one (none when `portfolio` is nil), else the tenant's last close. One index
    /// probe per symbol and source (the latest row on or before the date), never a scan
    /// of the symbols' whole history.
    static func quotes(for symbols: [String], portfolio: UUID?, on date: String, on transaction: TenantTransaction) async throws -> [String: Quote] {
        guard !symbols.isEmpty else { return [:] }
        let rows = try await transaction.query(
            """
            SELECT wanted.symbol, quote.on_date::text, quote.price, quote.source
            FROM unnest(\(symbols)::text[]) AS wanted (symbol)
            CROSS JOIN LATERAL (
                SELECT * FROM (
                    (SELECT on_date, price::text AS price, 'manual' AS source FROM portfolio_manual_prices
                     WHERE portfolio_id = \(portfolio) AND symbol = wanted.symbol AND on_date <= \(date)::date
                     ORDER BY on_date DESC LIMIT 1)
                    UNION ALL
                    (SELECT on_date, close::text, 'market' FROM portfolio_prices
                     WHERE symbol = wanted.symbol AND on_date <= \(date)::date
                     ORDER BY on_date DESC LIMIT 1)
                ) candidates
                ORDER BY source = 'manual' DESC LIMIT 1
            ) quote
            """)
        var quotes: [String: Quote] = [:]
        for row in rows {
            var columns = RowReader(row)
            let symbol: String = try columns.next()
            let on: String = try columns.next()
            let price = try LedgerTransaction.decimal(columns.next())
            let source: String = try columns.next()
            if let price { quotes[symbol] = Quote(price: price.value, date: on, source: source) }
        }
        return quotes
    }
}
