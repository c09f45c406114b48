import AtriumCore
import Foundation
import HTTPTypes
import PostgresNIO

/// The SQL of ledger entries, and the booking every change of a ledger must pass: the
/// whole ledger is booked again in the writing transaction, with the portfolio locked, so
/// a back-dated buy or a deleted one that would leave a later sell short is refused
/// before anything commits.
enum TransactionStore {
    static let columns = """
        id, portfolio_id, owner_id, kind, trade_date::text, symbol, quantity::text, price::text, amount::text, currency, fee::text, \
        fx_rate::text, lots, external_id, notes, created_at, updated_at
        """
    static let table = RecordTable<LedgerTransaction>(
        "portfolio_transactions", columns: columns, noun: "transaction", delegatedAs: PortfolioAccess.scope,
        order: .ascending("created_at", time: \.createdAt, id: \.id), decode: LedgerTransaction.init)

    /// A page of the portfolio's entries, of one `kind` when given.
    static func page(_ page: PageRequest, portfolio: UUID, kind: Ledger.Kind? = nil, on transaction: TenantTransaction) async throws
        -> Page<LedgerTransaction>
    {
        _ = try await PortfolioStore.table.find(portfolio, on: transaction)
        let filter: SQL = kind.map { "portfolio_id = \(portfolio) AND kind = \($0.rawValue)" } ?? "portfolio_id = \(portfolio)"
        return try await transaction.lastStatement { try await table.page(page, where: filter, on: transaction) }
    }

    static func find(_ id: UUID, portfolio: UUID, on transaction: TenantTransaction) async throws -> LedgerTransaction {
        try await transaction.lastStatement {
            try await table.one("SELECT \(unescaped: columns) FROM portfolio_transactions WHERE id = \(id) AND portfolio_id = \(portfolio)", on: transaction)
        }
    }

    /// Records `fields` in the locked `portfolio` at `fxRate`, then books the ledger. The
    /// same statement forgets the portfolio's valuations from the entry's date on (as
    /// `ValuationStore.invalidate` does): one round trip fewer per entry, and a refused
    /// booking rolls both back.
    static func insert(_ fields: TransactionFields, fxRate: DecimalString, into portfolio: Portfolio, on transaction: TenantTransaction) async throws
        -> LedgerTransaction
    {
        let sql: SQL = """
            WITH inserted AS (
                INSERT INTO portfolio_transactions (tenant_id, owner_id, portfolio_id, kind, trade_date, symbol, quantity, price, amount, currency,
                    fee, fx_rate, lots, external_id, notes)
                VALUES (\(transaction.tenantID), \(portfolio.ownerId), \(portfolio.id), \(fields.type.rawValue), \(fields.tradeDate)::date, \(fields.symbol),
                    \(fields.quantity?.text)::numeric, \(fields.price?.text)::numeric, \(fields.amount?.text)::numeric, \(fields.currency),
                    \(fields.fee?.text ?? "0")::numeric, \(fxRate.text)::numeric, \(fields.lots ?? []), \(fields.externalId), \(fields.notes ?? ""))
                RETURNING \(unescaped: columns)
            ), forgotten AS (
                DELETE FROM portfolio_valuations WHERE portfolio_id = \(portfolio.id) AND as_of >= \(fields.tradeDate)::date
            )
            SELECT * FROM inserted
            """
        let inserted = try await table.one(sql, on: transaction)
        try await rebook(portfolio, after: .init(symbol: inserted.symbol, currency: inserted.currency, date: inserted.tradeDate), on: transaction)
        return inserted
    }

    /// Deletes the entry `id` of the locked `portfolio` and the valuations from its date
    /// on, in one statement, then books what is left.
    static func delete(_ id: UUID, from portfolio: Portfolio, on transaction: TenantTransaction) async throws {
        let deleted = try await transaction.query(
            """
            WITH deleted AS (
                DELETE FROM portfolio_transactions WHERE id = \(id) AND portfolio_id = \(portfolio.id) RETURNING trade_date, symbol, currency
            ), forgotten AS (
                DELETE FROM portfolio_valuations WHERE portfolio_id = \(portfolio.id) AND as_of >= (SELECT trade_date FROM deleted)
            )
            SELECT trade_date::text, symbol, currency FROM deleted
            """)
        guard let row = deleted.first else { throw AtriumError.notFound("No such transaction.") }
        var columns = RowReader(row)
        let date: String = try columns.next()
        let symbol: String? = try columns.next()
        let currency: String = try columns.next()
        try await rebook(portfolio, after: .init(symbol: symbol, currency: currency, date: date), on: transaction)
    }

    /// The portfolio's whole ledger in booking order.
    static func ledger(of portfolio: UUID, on transaction: TenantTransaction) async throws -> [Ledger.Entry] {
        let rows = try await transaction.query(
            "SELECT \(unescaped: columns) FROM portfolio_transactions WHERE portfolio_id = \(portfolio) ORDER BY trade_date, entry_seq")
        return try rows.map { try LedgerTransaction($0).entry }
    }

    /// The splits of every instrument the portfolio's ledger names.
    /// The splits of the instruments `portfolio` trades, each paying cash in lieu with the
    /// rate turning the instrument's currency into the portfolio's base on its date (on or
    /// before it, stored either way round).
    static func splits(of portfolio: UUID, on transaction: TenantTransaction) async throws -> [Ledger.Split] {
        let rows = try await transaction.query(
            """
            SELECT a.id, a.symbol, a.effective_date::text, a.ratio::text, a.cash_in_lieu_price::text,
                   CASE WHEN a.cash_in_lieu_price IS NULL THEN NULL WHEN i.currency = p.base_currency THEN '1' ELSE (
                       SELECT CASE WHEN f.base = i.currency THEN f.rate ELSE 1 / f.rate END::text FROM portfolio_fx_rates f
                       WHERE ((f.base = i.currency AND f.quote = p.base_currency) OR (f.base = p.base_currency AND f.quote = i.currency))
                         AND f.on_date <= a.effective_date
                       ORDER BY f.on_date DESC, f.base = i.currency DESC LIMIT 1) END
            FROM portfolio_corporate_actions a
            JOIN portfolio_portfolios p ON p.id = \(portfolio)
            JOIN portfolio_instruments i ON i.symbol = a.symbol
            WHERE a.kind = 'split' AND a.symbol IN (SELECT symbol FROM portfolio_transactions WHERE portfolio_id = \(portfolio) AND symbol IS NOT NULL)
            ORDER BY a.effective_date
            """)
        return try rows.map { row in
            var columns = RowReader(row)
            let id: UUID = try columns.next()
            let symbol: String = try columns.next()
            let date: String = try columns.next()
            let ratio = try LedgerTransaction.decimal(columns.next())
            let price = try LedgerTransaction.decimal(columns.next())
            let rate = try LedgerTransaction.decimal(columns.next())
            return Ledger.Split(id: id, symbol: symbol, date: date, ratio: ratio?.value ?? 1, cashInLieu: price?.value, cashInLieuFX: rate?.value)
        }
    }

    /// The portfolio's ledger read and booked as of `asOf`, for a report: withdrawals
    /// beyond the cash are booked as recorded; any other refusal is the report's 422.
    static func booked(_ portfolio: Portfolio, asOf: String, on transaction: TenantTransaction) async throws
        -> (entries: [Ledger.Entry], splits: [Ledger.Split], ledger: Ledger)
    {
        let entries = try await ledger(of: portfolio.id, on: transaction)
        let splits = try await splits(of: portfolio.id, on: transaction)
        do {
            return (entries, splits, try Ledger.book(entries, splits: splits, method: portfolio.costMethod.lotMethod, asOf: asOf, allowOverdraw: true))
        } catch {
            throw LedgerProblems.problem(for: error, entries: entries)
        }
    }

    /// Books the ledger as it stands after `change`; a refusal rolls the change back. A
    /// FIFO ledger is checked set-based in SQL on what the change can refuse
    /// (`SetBasedBook.accepts`: its instrument, and its currency's cash when a withdrawal
    /// follows), so a change reads its instrument's entries, not the whole ledger; when
    /// that check fails, or cannot book the ledger, the whole ledger is read and booked
    /// here, which names what is refused.
    static func rebook(_ portfolio: Portfolio, after change: SetBasedBook.Change, on transaction: TenantTransaction) async throws {
        if try await SetBasedBook.accepts(portfolio, after: change, on: transaction) { return }
        let entries = try await ledger(of: portfolio.id, on: transaction)
        let splits = try await splits(of: portfolio.id, on: transaction)
        do {
            _ = try Ledger.book(entries, splits: splits, method: portfolio.costMethod.lotMethod)
        } catch {
            throw LedgerProblems.problem(for: error, entries: entries)
        }
    }
}

/// How a refused booking is told to the client.
enum LedgerProblems {
    static func problem(for refusal: Ledger.Refusal, entries: [Ledger.Entry]) -> AtriumError {
        func described(_ id: UUID) -> String {
            guard let entry = entries.first(where: { $0.id == id }) else { return "an entry" }
            return "the \(entry.kind.rawValue) of \(entry.date)" + (entry.symbol.map { " (\($0))" } ?? "")
        }
        switch refusal {
        case .insufficientQuantity(let entry, let symbol, let held, let wanted):
            return problem(
                "insufficient_quantity", field: "quantity",
                "\(described(entry)) sells \(wanted) \(symbol) but \(held) were held then (lots are matched in date order)")
        case .lotClosed(let entry, let lot):
            return problem("lot_closed", field: "lots", "\(described(entry)) names lot \(lot.uuidString.lowercased()), which is not open then")
        case .insufficientCash(let entry, let currency, let held, let wanted):
            return problem(
                "insufficient_cash", field: "amount", "\(described(entry)) takes \(wanted) \(currency) but the portfolio held \(held) \(currency) then")
        case .lotsNotKept:
            return problem("lots_not_kept", field: "lots", "this portfolio books by moving average, which keeps no lots to name")
        }
    }

    static func problem(_ code: String, field: String, _ message: String) -> AtriumError {
        AtriumError(
            status: .unprocessableContent, code: code, title: "The ledger refuses this change", detail: message,
            fieldErrors: [.init(field: field, message: message)])
    }
}
