import AtriumCore
import Foundation
import PostgresNIO

/// The SQL of the tenant's market data. Writes are upserts by natural key (symbol,
/// symbol and date, currency pair and date), one statement however many rows.
enum MarketStore {
    static let instruments = RecordTable<Instrument>(
        "portfolio_instruments", columns: "id, symbol, name, sector, asset_type, currency, market_cap::text, created_at, updated_at",
        noun: "instrument", ownedBy: nil, order: .ascending("updated_at", time: \.updatedAt, id: \.id), decode: Instrument.init)

    static let actions = RecordTable<CorporateAction>(
        "portfolio_corporate_actions", columns: "id, symbol, kind, effective_date::text, ratio::text, cash_in_lieu_price::text, created_at", noun: "corporate action",
        ownedBy: nil, order: .ascending("created_at", time: \.createdAt, id: \.id), decode: CorporateAction.init)

    static func instrument(_ symbol: String, on transaction: TenantTransaction) async throws -> Instrument {
        try await instruments.one("SELECT \(unescaped: instruments.columns) FROM portfolio_instruments WHERE symbol = \(symbol)", on: transaction)
    }

    /// The instruments among `symbols`, by symbol (unknown ones are left out).
    static func describe(_ symbols: [String], on transaction: TenantTransaction) async throws -> [String: Instrument] {
        guard !symbols.isEmpty else { return [:] }
        let found = try await instruments.all(
            "SELECT \(unescaped: instruments.columns) FROM portfolio_instruments WHERE symbol = ANY(\(symbols))", on: transaction)
        return Dictionary(found.map { ($0.symbol, $0) }, uniquingKeysWith: { first, _ in first })
    }

    static func upsert(_ symbol: String, _ fields: InstrumentFields, on transaction: TenantTransaction) async throws -> Instrument {
        let sql: SQL = """
            INSERT INTO portfolio_instruments AS i (tenant_id, symbol, name, sector, asset_type, currency, market_cap)
            VALUES (\(transaction.tenantID), \(symbol), \(fields.name ?? ""), \(fields.sector ?? ""), \((fields.assetType ?? .stock).rawValue),
                \(fields.currency), \(fields.marketCap?.text)::numeric)
            ON CONFLICT (tenant_id, symbol) DO UPDATE SET name = excluded.name, sector = excluded.sector, asset_type = excluded.asset_type,
                currency = excluded.currency, market_cap = excluded.market_cap, updated_at = now()
            RETURNING \(unescaped: instruments.columns)
            """
        return try await transaction.lastStatement { try await instruments.one(sql, on: transaction) }
    }

    /// Writes `series` for `symbol` (404 for an unknown instrument): one statement.
    static func writePrices(_ symbol: String, _ series: PriceSeries, on transaction: TenantTransaction) async throws -> Int {
        _ = try await instrument(symbol, on: transaction)
        let rows = try await transaction.query(
                """
                WITH written AS (
                    INSERT INTO portfolio_prices AS p (tenant_id, symbol, on_date, close)
                    SELECT \(transaction.tenantID), \(symbol), d::date, c::numeric FROM unnest(\(series.closes.map(\.date)), \(series.closes.map(\.close.text))) AS s (d, c)
                    ON CONFLICT (tenant_id, symbol, on_date) DO UPDATE SET close = excluded.close, source = excluded.source
                    RETURNING 1
                ) SELECT count(*)::int8 FROM written
                """)
        var columns = try RowReader(rows.first.unwrapped())
        let count: Int64 = try columns.next()
        if let first = series.closes.map(\.date).min() { try await ValuationStore.invalidateAll(from: first, on: transaction) }
        return Int(count)
    }

    static func prices(_ symbol: String, from: String, to: String, on transaction: TenantTransaction) async throws -> PriceSeries {
        _ = try await instrument(symbol, on: transaction)
        let rows = try await transaction.lastStatement {
            try await transaction.query(
                """
                SELECT on_date::text, close::text FROM portfolio_prices WHERE symbol = \(symbol) AND on_date BETWEEN \(from)::date AND \(to)::date
                ORDER BY on_date LIMIT 5000
                """)
        }
        return PriceSeries(closes: try rows.map { row in
            var columns = RowReader(row)
            let date: String = try columns.next()
            let close = try LedgerTransaction.decimal(columns.next()) ?? DecimalString(0)
            return PriceSeries.Close(date: date, close: close)
        })
    }

    static func writeRate(_ rate: FXRate, on transaction: TenantTransaction) async throws {
        try await ValuationStore.invalidateAll(from: rate.date, on: transaction)
        try await transaction.lastStatement {
            _ = try await transaction.query(
                """
                INSERT INTO portfolio_fx_rates (tenant_id, base, quote, on_date, rate)
                VALUES (\(transaction.tenantID), \(rate.base), \(rate.quote), \(rate.date)::date, \(rate.rate.text)::numeric)
                ON CONFLICT (tenant_id, base, quote, on_date) DO UPDATE SET rate = excluded.rate
                """)
        }
    }

    static func insertAction(_ fields: CorporateActionFields, on transaction: TenantTransaction) async throws -> CorporateAction {
        let sql: SQL = """
            INSERT INTO portfolio_corporate_actions (tenant_id, symbol, kind, effective_date, ratio, cash_in_lieu_price)
            VALUES (\(transaction.tenantID), \(fields.symbol), \(fields.type.rawValue), \(fields.effectiveDate)::date, \(fields.ratio.text)::numeric,
                \(fields.cashInLieuPrice?.text)::numeric)
            RETURNING \(unescaped: actions.columns)
            """
        try await ValuationStore.invalidateAll(from: fields.effectiveDate, on: transaction)
        return try await transaction.lastStatement { try await actions.one(sql, on: transaction) }
    }
}

extension Optional {
    /// The value, or an error naming what was missing (a statement that always returns a row).
    func unwrapped(_ what: String = "a row") throws -> Wrapped {
        guard let self else { throw PortfolioDataError("expected \(what)") }
        return self
    }
}
