import AtriumCore
import Crypto
import Foundation

/// SHA-256 of everything a report was computed from, in a fixed text form: the report
/// and its version, the method, the date, the digest of every ledger entry as stored, every split on
/// or before the date, and the prices and rates it used. Two reports with the same hash were made from the same
/// inputs, and are byte for byte the same.
enum InputsHash {
    static func of(
        report: String, method: CostMethod, asOf: String, ledger: String, splits: [Ledger.Split], quotes: [String: MarketReader.Quote] = [:],
        rates: [String: Decimal] = [:]
    ) -> String {
        var text = "\(report)\nmethod \(method.rawValue)\nas_of \(asOf)\nledger \(ledger)\n"
        for split in splits where split.date <= asOf {
            text += "split \(split.symbol) \(split.date) \(split.ratio)"
            if let price = split.cashInLieu { text += " in_lieu \(price) \(split.cashInLieuFX.map { "\($0)" } ?? "-")" }
            text += "\n"
        }
        for (symbol, quote) in quotes.sorted(by: { $0.key < $1.key }) { text += "quote \(symbol) \(quote.date) \(quote.price) \(quote.source)\n" }
        for (currency, rate) in rates.sorted(by: { $0.key < $1.key }) { text += "rate \(currency) \(rate)\n" }
        return SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// One entry's line in the digest, as SQL over a row of `portfolio_transactions`.
    static let ledgerLine = """
        concat_ws(' ', id::text, kind, trade_date::text, coalesce(symbol, '-'), coalesce(quantity::text, '-'), coalesce(price::text, '-'), \
        coalesce(amount::text, '-'), currency, fee::text, fx_rate::text, array_to_string(lots, ','))
        """

    /// SHA-256 of the portfolio's entries up to `asOf` as stored (every column a report
    /// reads, numerics as PostgreSQL writes them), computed where they are: a large
    /// ledger's entries never travel to be hashed.
    static func ledgerDigest(of portfolio: UUID, asOf: String, on transaction: TenantTransaction) async throws -> String {
        let rows = try await transaction.query(
            """
            SELECT encode(sha256(convert_to(coalesce(string_agg(\(unescaped: ledgerLine), E'\\n' ORDER BY trade_date, entry_seq), ''), 'UTF8')), 'hex')
            FROM portfolio_transactions WHERE portfolio_id = \(portfolio) AND trade_date <= \(asOf)::date
            """)
        guard let row = rows.first else { return "" }
        var columns = RowReader(row)
        return try columns.next()
    }
}
