import AtriumCore
import Foundation

/// Booked ledgers kept for the next holdings read (`portfolio_book_cache`,
/// `0011_book_cache.sql`): a book is taken again only with the portfolio's ledger version
/// it was made at (moved by a trigger on every write of its entries) and the same inputs
/// besides the ledger (method, date, the splits up to it). A dashboard asking for the
/// same holdings between two changes reads one row instead of booking 10,000 entries.
enum BookCache {
    struct Key: Sendable {
        var portfolio: UUID
        var asOf: String
        /// `InputsHash` of what the book depends on besides the ledger.
        var inputs: String

        init(portfolio: Portfolio, asOf: String, splits: [Ledger.Split]) {
            self.portfolio = portfolio.id
            self.asOf = asOf
            inputs = InputsHash.of(report: "book/1", method: portfolio.costMethod, asOf: asOf, ledger: "", splits: splits)
        }
    }

    /// The book as stored: every figure as exact decimal text.
    struct Stored: Codable, Sendable {
        struct Position: Codable, Sendable {
            var symbol: String
            var quantity: DecimalString
            var cost: DecimalString
            var costBase: DecimalString
        }

        struct Deposits: Codable, Sendable {
            var amount: DecimalString
            var entries: Int
        }

        var positions: [Position]
        var currencies: [String: String]
        var cash: [String: DecimalString]
        var implicitDeposits: [String: Deposits]
        var dividends: DecimalString
        var fees: DecimalString

        init(_ book: BookSummary) {
            positions = book.positions.map {
                Position(symbol: $0.symbol, quantity: DecimalString($0.quantity), cost: DecimalString($0.cost), costBase: DecimalString($0.costBase))
            }
            currencies = book.currencies
            cash = book.cash.mapValues { DecimalString($0) }
            implicitDeposits = book.implicitDeposits.mapValues { Deposits(amount: DecimalString($0.amount), entries: $0.entries) }
            dividends = DecimalString(book.dividends)
            fees = DecimalString(book.fees)
        }

        var book: BookSummary {
            BookSummary(
                positions: positions.map { Ledger.Position(symbol: $0.symbol, quantity: $0.quantity.value, cost: $0.cost.value, costBase: $0.costBase.value) },
                currencies: currencies, cash: cash.mapValues(\.value),
                implicitDeposits: implicitDeposits.mapValues { BookSummary.Deposits(amount: $0.amount.value, entries: $0.entries) },
                dividends: dividends.value, fees: fees.value)
        }
    }

    /// The book cached under `key` at the ledger's current version, if any, and that
    /// version (read before any booking, so a book stored under it was made from this
    /// ledger or a later one, never an earlier one).
    static func read(_ key: Key, on transaction: TenantTransaction) async throws -> (cached: (BookSummary, ledgerDigest: String)?, version: Int64) {
        let rows = try await transaction.query(
            """
            SELECT v.version, c.book::text, c.ledger_digest
            FROM (SELECT coalesce((SELECT version FROM portfolio_ledger_versions WHERE portfolio_id = \(key.portfolio)), 0)::int8 AS version) v
            LEFT JOIN portfolio_book_cache c
              ON c.portfolio_id = \(key.portfolio) AND c.as_of = \(key.asOf)::date AND c.ledger_version = v.version AND c.inputs = \(key.inputs)
            """)
        guard let row = rows.first else { return (nil, 0) }
        var columns = RowReader(row)
        let version: Int64 = try columns.next()
        let text: String? = try columns.next()
        let digest: String? = try columns.next()
        guard let text, let digest else { return (nil, version) }
        let stored = try JSONDecoder().decode(Stored.self, from: Data(text.utf8))
        return ((stored.book, digest), version)
    }

    /// Keeps `book` under `key` and `version`, replacing the portfolio's book of that date
    /// unless it was made at a later version.
    static func store(_ book: BookSummary, ledgerDigest: String, key: Key, version: Int64, on transaction: TenantTransaction) async throws {
        let json = String(decoding: try JSONEncoder().encode(Stored(book)), as: UTF8.self)
        try await transaction.query(
            """
            INSERT INTO portfolio_book_cache (tenant_id, portfolio_id, as_of, ledger_version, inputs, book, ledger_digest)
            VALUES (\(transaction.tenantID), \(key.portfolio), \(key.asOf)::date, \(version), \(key.inputs), \(json)::jsonb, \(ledgerDigest))
            ON CONFLICT (tenant_id, portfolio_id, as_of) DO UPDATE SET
                ledger_version = excluded.ledger_version, inputs = excluded.inputs, book = excluded.book,
                ledger_digest = excluded.ledger_digest, cached_at = now()
            WHERE portfolio_book_cache.ledger_version <= excluded.ledger_version
            """)
    }
}
