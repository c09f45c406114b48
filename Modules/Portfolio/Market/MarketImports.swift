import AtriumCore
import Foundation
import PostgresNIO

/// The tenant's market data from files, through the kernel's bulk import: one entity per
/// file kind, each landing with one set-based upsert by its natural key, rows rejected by
/// line (a bad value, an unknown instrument, a key repeated in the file). `stocks` is the
/// stock consultant's `stocks.csv` (seed 001): instruments and one close each.
enum MarketImports {
    static let instrumentReference = ImportReference(field: "symbol", table: "portfolio_instruments", column: "symbol", noun: "instrument")

    static let instruments = ImportEntity(
        "instruments", fields: ["symbol", "name", "sector", "asset_type", "currency", "market_cap"], keys: ["symbol"], table: "portfolio_instruments",
        owned: false,
        check: { values in
            if let problem = symbol(&values[0]) { return problem }
            if let problem = text(values[1], "name", maximum: 300) ?? text(values[2], "sector", maximum: 100) { return problem }
            values[3] = values[3] ?? "stock"
            guard let type = values[3], Instrument.AssetType(rawValue: type) != nil else {
                return "asset_type must be one of \(Instrument.AssetType.allCases.map(\.rawValue).joined(separator: ", "))"
            }
            if let problem = currency(values[4]) { return problem }
            return decimal(values[5], "market_cap", required: false)
        },
        land: { landing in
            """
            WITH written AS (
                INSERT INTO portfolio_instruments AS i (tenant_id, symbol, name, sector, asset_type, currency, market_cap)
                SELECT \(landing.tenantID), s.symbol, coalesce(s.name, ''), coalesce(s.sector, ''), s.asset_type, s.currency, s.market_cap::numeric
                FROM atrium_import_stage s
                ON CONFLICT (tenant_id, symbol) DO UPDATE SET name = excluded.name, sector = excluded.sector, asset_type = excluded.asset_type,
                    currency = excluded.currency, market_cap = excluded.market_cap, updated_at = now()
                WHERE \(landing.upsert) AND (i.name, i.sector, i.asset_type, i.currency, i.market_cap)
                    IS DISTINCT FROM (excluded.name, excluded.sector, excluded.asset_type, excluded.currency, excluded.market_cap)
                RETURNING 1
            ) SELECT count(*)::int8 FROM written
            """
        })

    static let prices = ImportEntity(
        "prices", fields: ["symbol", "date", "close"], keys: ["symbol", "date"], keyColumns: ["symbol", "on_date"], table: "portfolio_prices", owned: false,
        references: [instrumentReference],
        check: { values in
            if let problem = symbol(&values[0]) ?? date(values[1], "date") { return problem }
            return decimal(values[2], "close", required: true)
        },
        // A migration function (0008_price_landing.sql): MERGE, and the upsert when a tick
        // for one of the file's days lands meanwhile.
        land: { landing in "SELECT portfolio_land_prices(\(landing.tenantID), \(landing.upsert))" })

    static let fx = ImportEntity(
        "fx", fields: ["base", "quote", "date", "rate"], keys: ["base", "quote", "date"], keyColumns: ["base", "quote", "on_date"], table: "portfolio_fx_rates", owned: false,
        check: { values in
            if let problem = currency(values[0]) ?? currency(values[1]) ?? date(values[2], "date") { return problem }
            if values[0] == values[1] { return "quote must differ from base" }
            guard let rate = values[3].flatMap(DecimalString.init), rate.value > 0 else { return "rate must be a decimal greater than 0, such as 1.0825" }
            return nil
        },
        land: { landing in
            """
            WITH forgotten AS (
                -- Valuations from the first date on are computed again by the next run.
                DELETE FROM portfolio_valuations WHERE as_of >= (SELECT min(s.date::date) FROM atrium_import_stage s)
            ), written AS (
                INSERT INTO portfolio_fx_rates AS f (tenant_id, base, quote, on_date, rate)
                SELECT \(landing.tenantID), s.base, s.quote, s.date::date, s.rate::numeric FROM atrium_import_stage s
                ON CONFLICT (tenant_id, base, quote, on_date) DO UPDATE SET rate = excluded.rate
                WHERE \(landing.upsert) AND f.rate IS DISTINCT FROM excluded.rate
                RETURNING 1
            ) SELECT count(*)::int8 FROM written
            """
        })

    static let splits = ImportEntity(
        "splits", fields: ["symbol", "effective_date", "ratio", "cash_in_lieu_price"], keys: ["symbol", "effective_date"], table: "portfolio_corporate_actions", owned: false,
        references: [instrumentReference],
        check: { values in
            if let problem = symbol(&values[0]) ?? date(values[1], "effective_date") { return problem }
            guard let ratio = values[2].flatMap(DecimalString.init), ratio.value > 0, ratio.value != 1 else {
                return "ratio must be new units per old one, greater than 0 and not 1 (2 for 2-for-1, 0.1 for 1-for-10)"
            }
            if let price = values[3], (DecimalString(price)?.value ?? 0) <= 0 {
                return "cash_in_lieu_price must be a decimal greater than 0 (the price per new unit paid for fractions), or empty"
            }
            return nil
        },
        land: { landing in
            """
            WITH forgotten AS (
                -- Valuations from the first date on are computed again by the next run.
                DELETE FROM portfolio_valuations WHERE as_of >= (SELECT min(s.effective_date::date) FROM atrium_import_stage s)
            ), written AS (
                INSERT INTO portfolio_corporate_actions AS a (tenant_id, symbol, kind, effective_date, ratio, cash_in_lieu_price)
                SELECT \(landing.tenantID), s.symbol, 'split', s.effective_date::date, s.ratio::numeric, s.cash_in_lieu_price::numeric
                FROM atrium_import_stage s
                ON CONFLICT (tenant_id, symbol, kind, effective_date) DO UPDATE SET ratio = excluded.ratio, cash_in_lieu_price = excluded.cash_in_lieu_price
                WHERE \(landing.upsert) AND (a.ratio, a.cash_in_lieu_price) IS DISTINCT FROM (excluded.ratio, excluded.cash_in_lieu_price)
                RETURNING 1
            ) SELECT count(*)::int8 FROM written
            """
        })

    /// Seed 001's `stocks.csv`: symbol, name, sector, price and market cap in crore
    /// (10,000,000) of `currency` (default INR), as of `date` (default: the day of the
    /// import). Its 1- and 7-day changes and volatility are not stored: they follow from
    /// the closes. The instrument and its close land in one statement.
    static let stocks = ImportEntity(
        "stocks", fields: ["symbol", "name", "sector", "price", "market_cap_cr", "currency", "date"], keys: ["symbol"], table: "portfolio_instruments",
        owned: false,
        check: { values in
            if let problem = symbol(&values[0]) ?? text(values[1], "name", maximum: 300) ?? text(values[2], "sector", maximum: 100) { return problem }
            if let problem = decimal(values[3], "price", required: true) ?? decimal(values[4], "market_cap_cr", required: false) { return problem }
            values[5] = values[5] ?? "INR"
            if let problem = currency(values[5]) { return problem }
            values[6] = values[6] ?? TradeDate.today(Date())
            return date(values[6], "date")
        },
        land: { landing in
            """
            WITH forgotten AS (
                -- Valuations from the first date on are computed again by the next run.
                DELETE FROM portfolio_valuations WHERE as_of >= (SELECT min(s.date::date) FROM atrium_import_stage s)
            ), instruments AS (
                INSERT INTO portfolio_instruments AS i (tenant_id, symbol, name, sector, asset_type, currency, market_cap)
                SELECT \(landing.tenantID), s.symbol, coalesce(s.name, ''), coalesce(s.sector, ''), 'stock', s.currency, s.market_cap_cr::numeric * 10000000
                FROM atrium_import_stage s
                ON CONFLICT (tenant_id, symbol) DO UPDATE SET name = excluded.name, sector = excluded.sector, currency = excluded.currency,
                    market_cap = excluded.market_cap, updated_at = now()
                WHERE \(landing.upsert) AND (i.name, i.sector, i.currency, i.market_cap) IS DISTINCT FROM (excluded.name, excluded.sector, excluded.currency, excluded.market_cap)
                RETURNING i.symbol
            ), closes AS (
                INSERT INTO portfolio_prices AS p (tenant_id, symbol, on_date, close, source)
                SELECT \(landing.tenantID), s.symbol, s.date::date, s.price::numeric, 'import' FROM atrium_import_stage s
                ON CONFLICT (tenant_id, symbol, on_date) DO UPDATE SET close = excluded.close, source = excluded.source
                WHERE \(landing.upsert) AND p.close IS DISTINCT FROM excluded.close
                RETURNING p.symbol
            ) SELECT count(*)::int8 FROM (SELECT symbol FROM instruments UNION SELECT symbol FROM closes) changed
            """
        })

    static let all = [instruments, prices, fx, splits, stocks]

    // The checks' pieces: each answers why a value is refused, or nil.

    static func symbol(_ value: inout String?) -> String? {
        value = value.map(normalizedSymbol)
        guard let symbol = value else { return "symbol is required" }
        return PortfolioValidation.symbolProblem(symbol).map { "symbol \($0)" }
    }

    /// Trimmed and upper-cased. A symbol that already is (nearly every one in a file) skips
    /// Foundation's Unicode passes, which cost more than all the rest of a price row's checks.
    static func normalizedSymbol(_ raw: String) -> String {
        let utf8 = raw.utf8
        let isSpace = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        let normal =
            !(utf8.first.map(isSpace) ?? false) && !(utf8.last.map(isSpace) ?? false)
            && !utf8.contains { byte in (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || byte >= 0x80 }
        return normal ? raw : raw.trimmingCharacters(in: .whitespaces).uppercased()
    }

    static func text(_ value: String?, _ field: String, maximum: Int) -> String? {
        value.flatMap { InputDomain.textProblem($0, maximum: maximum) }.map { "\(field) \($0)" }
    }

    static func currency(_ value: String?) -> String? {
        guard let value else { return "currency is required" }
        return PortfolioValidation.currencyProblem(value).map { "\(value): currency \($0)" }
    }

    static func date(_ value: String?, _ field: String) -> String? {
        guard let value else { return "\(field) is required" }
        return TradeDate.problem(value).map { "\(field) \($0)" }
    }

    static func decimal(_ value: String?, _ field: String, required: Bool) -> String? {
        guard let value else { return required ? "\(field) is required" : nil }
        guard let parsed = DecimalString(value), parsed.value >= 0 else { return "\(field) must be a decimal of at least 0, such as 1234.50 (no exponent)" }
        return nil
    }
}
