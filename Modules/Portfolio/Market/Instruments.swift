import AtriumCore
import Foundation
import PostgresNIO

/// An instrument of the tenant's market: what a symbol is, the currency it trades in,
/// and what analyses group it by (sector, asset type).
struct Instrument: Codable, Sendable {
    var id: UUID
    var symbol: String
    var name: String
    var sector: String
    var assetType: AssetType
    var currency: String
    var marketCap: DecimalString?
    var createdAt, updatedAt: Date

    enum AssetType: String, Codable, Sendable, CaseIterable, JSONSchemaDescribable {
        case stock, etf, fund, bond, crypto, cash, other
    }

    init(_ row: PostgresRow) throws {
        var columns = RowReader(row)
        id = try columns.next()
        symbol = try columns.next()
        name = try columns.next()
        sector = try columns.next()
        let type: String = try columns.next()
        assetType = AssetType(rawValue: type) ?? .other
        currency = try columns.next()
        marketCap = try LedgerTransaction.decimal(columns.next())
        createdAt = try columns.next()
        updatedAt = try columns.next()
    }
}

/// An instrument's fields as `PUT market/instruments/{symbol}` sends them.
struct InstrumentFields: Codable, Sendable {
    var name: String?
    var sector: String?
    var assetType: Instrument.AssetType?
    var currency: String
    var marketCap: DecimalString?

    func validated() throws -> InstrumentFields {
        var checks = FieldChecks()
        checks.record("name", name.flatMap { InputDomain.textProblem($0, maximum: 300) })
        checks.record("sector", sector.flatMap { InputDomain.textProblem($0, maximum: 100) })
        checks.record("currency", PortfolioValidation.currencyProblem(currency))
        checks.fail("market_cap", "must not be negative", when: marketCap.map { $0.value < 0 } ?? false)
        try checks.finish()
        return self
    }
}

/// Closes of one instrument, as `POST market/instruments/{symbol}/prices` sends them
/// and `GET` answers them.
struct PriceSeries: Codable, Sendable {
    struct Close: Codable, Sendable {
        var date: String
        var close: DecimalString
    }

    var closes: [Close]

    func validated() throws -> PriceSeries {
        var checks = FieldChecks()
        checks.fail("closes", "must hold 1 to 5000 closes", when: closes.isEmpty || closes.count > 5000)
        for (index, close) in closes.enumerated() {
            checks.record("closes[\(index)].date", TradeDate.problem(close.date))
            checks.fail("closes[\(index)].close", "must not be negative", when: close.close.value < 0)
        }
        checks.fail("closes", "names a date twice", when: Set(closes.map(\.date)).count != closes.count)
        try checks.finish()
        return self
    }
}

/// A close written, or the count of them.
struct PricesWritten: Codable, Sendable {
    var symbol: String
    var written: Int
}

/// An exchange rate: one `base` is worth `rate` of `quote` on `date`.
struct FXRate: Codable, Sendable {
    var base: String
    var quote: String
    var date: String
    var rate: DecimalString

    func validated() throws -> FXRate {
        var checks = FieldChecks()
        checks.record("base", PortfolioValidation.currencyProblem(base))
        checks.record("quote", PortfolioValidation.currencyProblem(quote))
        checks.fail("quote", "must differ from base", when: base == quote)
        checks.record("date", TradeDate.problem(date))
        checks.fail("rate", "must be greater than 0", when: rate.value <= 0)
        try checks.finish()
        return self
    }
}

/// A split of an instrument: `ratio` new units per old one from `effective_date` on.
struct CorporateAction: Codable, Sendable {
    var id: UUID
    var symbol: String
    var type: String
    var effectiveDate: String
    var ratio: DecimalString
    /// The price per new unit paid for fractions (cash in lieu); absent, fractions are kept.
    var cashInLieuPrice: DecimalString?
    var createdAt: Date

    init(_ row: PostgresRow) throws {
        var columns = RowReader(row)
        id = try columns.next()
        symbol = try columns.next()
        type = try columns.next()
        effectiveDate = try columns.next()
        ratio = try LedgerTransaction.decimal(columns.next()) ?? DecimalString(1)
        cashInLieuPrice = try LedgerTransaction.decimal(columns.next())
        createdAt = try columns.next()
    }
}

struct CorporateActionFields: Codable, Sendable {
    enum Kind: String, Codable, Sendable, CaseIterable, JSONSchemaDescribable { case split }
    var symbol: String
    var type: Kind
    var effectiveDate: String
    /// New units per old one: "2" for a 2-for-1 split, "0.1" for a 1-for-10 reverse split.
    var ratio: DecimalString
    /// When the issuer pays cash for fractions: its price per new unit. Every position is
    /// then left with whole units, the fraction sold at this price on the effective date.
    var cashInLieuPrice: DecimalString?

    func validated() throws -> CorporateActionFields {
        var checks = FieldChecks()
        checks.record("symbol", PortfolioValidation.symbolProblem(symbol))
        checks.record("effective_date", TradeDate.problem(effectiveDate))
        checks.fail("ratio", "must be greater than 0 and not 1", when: ratio.value <= 0 || ratio.value == 1)
        checks.fail("cash_in_lieu_price", "must be greater than 0", when: (cashInLieuPrice?.value ?? 1) <= 0)
        try checks.finish()
        return self
    }
}
