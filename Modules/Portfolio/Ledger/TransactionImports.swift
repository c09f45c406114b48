import AtriumCore
import Foundation
import PostgresNIO

/// A broker's file of one portfolio's entries, through the kernel's bulk import mounted
/// under the portfolio (`POST portfolios/{id}/transactions/imports?mapping=…`): a broker's
/// own column names map onto the fields, every row is checked as the API checks an entry,
/// the rows land with one set-based upsert by `external_id` (the broker's trade id), in
/// file order within a date, and the ledger is then checked set-based as a whole (a sell
/// of more than was held, a withdrawal of more than the cash): a ledger that would not
/// stand fails the import, and nothing of it is kept.
enum TransactionImports {
    static let fields = ["external_id", "date", "type", "symbol", "quantity", "price", "amount", "currency", "fee", "fx_rate", "notes"]

    static let entity = ImportEntity(
        "transactions", fields: fields, keys: ["external_id"], table: "portfolio_transactions", owned: true,
        check: { values in
            values[2] = values[2]?.trimmingCharacters(in: .whitespaces).lowercased()
            values[3] = values[3]?.trimmingCharacters(in: .whitespaces).uppercased()
            values[7] = values[7]?.trimmingCharacters(in: .whitespaces).uppercased()
            return problem(values)
        },
        land: { landing in
            """
            WITH target AS (
                SELECT id, owner_id, base_currency FROM portfolio_portfolios WHERE id = \(landing.parentID)
            ), entries AS (
                SELECT s.line, s.external_id, s.type AS kind, s.date::date AS trade_date, s.symbol, s.quantity::numeric AS quantity,
                       s.price::numeric AS price, s.amount::numeric AS amount, s.currency, coalesce(s.fee::numeric, 0) AS fee,
                       CASE WHEN s.currency = t.base_currency THEN 1 ELSE coalesce(s.fx_rate::numeric, (
                           -- The tenant's rate on or before the date, either way round, as the API takes it.
                           SELECT CASE WHEN r.base = s.currency THEN r.rate ELSE round(1.00000000000000000000 / r.rate, 20) END
                           FROM portfolio_fx_rates r
                           WHERE ((r.base = s.currency AND r.quote = t.base_currency) OR (r.base = t.base_currency AND r.quote = s.currency))
                             AND r.on_date <= s.date::date
                           ORDER BY r.on_date DESC, r.base = s.currency DESC LIMIT 1)) END AS fx_rate,
                       coalesce(s.notes, '') AS notes
                FROM atrium_import_stage s CROSS JOIN target t
            ), replaced AS (
                -- Entries the file changes: their old dates count for what must be booked again.
                SELECT min(trade_date) AS since FROM portfolio_transactions
                WHERE portfolio_id = \(landing.parentID) AND external_id IN (SELECT external_id FROM entries)
            ), written AS (
                INSERT INTO portfolio_transactions AS x (tenant_id, owner_id, portfolio_id, kind, trade_date, symbol, quantity, price, amount, currency,
                    fee, fx_rate, external_id, notes)
                SELECT \(landing.tenantID), t.owner_id, t.id, e.kind, e.trade_date, e.symbol, e.quantity, e.price, e.amount, e.currency, e.fee,
                       e.fx_rate, e.external_id, e.notes
                FROM entries e CROSS JOIN target t ORDER BY e.line
                ON CONFLICT (tenant_id, portfolio_id, external_id) DO UPDATE SET kind = excluded.kind, trade_date = excluded.trade_date,
                    symbol = excluded.symbol, quantity = excluded.quantity, price = excluded.price, amount = excluded.amount,
                    currency = excluded.currency, fee = excluded.fee, fx_rate = excluded.fx_rate, notes = excluded.notes, updated_at = now()
                WHERE \(landing.upsert) AND (x.kind, x.trade_date, x.symbol, x.quantity, x.price, x.amount, x.currency, x.fee, x.fx_rate, x.notes)
                    IS DISTINCT FROM (excluded.kind, excluded.trade_date, excluded.symbol, excluded.quantity, excluded.price, excluded.amount,
                                      excluded.currency, excluded.fee, excluded.fx_rate, excluded.notes)
                RETURNING x.trade_date
            ), forgotten AS (
                -- The nightly valuations from the earliest date touched are computed again.
                DELETE FROM portfolio_valuations
                WHERE portfolio_id = \(landing.parentID) AND as_of >= least((SELECT min(trade_date) FROM written), (SELECT since FROM replaced))
            )
            SELECT count(*)::int8 FROM written
            """
        }
    ).verified { landing in
        // The import always has its portfolio (`ImportParent`); without one there is nothing to land in.
        guard let portfolio = landing.parentID else { return "SELECT 'the import names no portfolio'::text" }
        return SetBasedBook.refusal(of: portfolio)
    }

    /// The portfolio's broker files, mounted at `portfolios/{id}/transactions/imports`; a
    /// file lands only in a portfolio the importer may change.
    static let imports = BulkImport(
        module: "portfolio", entities: [entity], meter: nil, path: "portfolios/{id}/transactions/imports",
        parent: ImportParent(parameter: "id", column: "portfolio_id") { id, transaction in _ = try await PortfolioStore.lock(id, on: transaction) },
        kind: "portfolio.transactions.import")

    /// Why a row is refused, as the API would refuse the same entry; nil to stage it.
    static func problem(_ values: [String?]) -> String? {
        guard values[0] != nil else { return "external_id is required (the broker's trade id; map its column with mapping {\"external_id\": …})" }
        guard let type = values[2].flatMap(Ledger.Kind.init(rawValue:)) else {
            return "type must be one of \(Ledger.Kind.allCases.map(\.rawValue).joined(separator: ", "))"
        }
        // quantity, price, amount, fee, fx_rate
        var parsed: [DecimalString?] = []
        for index in [4, 5, 6, 8, 9] {
            guard let text = values[index] else {
                parsed.append(nil)
                continue
            }
            guard let value = DecimalString(text) else { return "\(fields[index]) must be a decimal such as 1234.50 (no exponent, no separators)" }
            parsed.append(value)
        }
        guard let date = values[1], let currency = values[7] else { return values[1] == nil ? "date is required" : "currency is required" }
        let entry = TransactionFields(
            type: type, tradeDate: date, symbol: values[3], quantity: parsed[0], price: parsed[1], amount: parsed[2], currency: currency,
            fee: parsed[3], fxRate: parsed[4], externalId: values[0], notes: values[10])
        do {
            _ = try entry.validated()
            return nil
        } catch let error as AtriumError {
            return error.fieldErrors.map { "\($0.field) \($0.message)" }.joined(separator: "; ")
        } catch {
            return "\(error)"
        }
    }
}
