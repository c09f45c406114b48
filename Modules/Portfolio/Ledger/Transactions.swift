import AtriumCore
import Foundation
import PostgresNIO

/// One recorded entry of a portfolio's ledger, as it was typed: a trade (quantity and
/// price), or cash (amount). Decimals travel as strings.
struct LedgerTransaction: Codable, Sendable {
    var id, portfolioId, ownerId: UUID
    var type: Ledger.Kind
    /// `YYYY-MM-DD`.
    var tradeDate: String
    var symbol: String?
    var quantity, price, amount: DecimalString?
    var currency: String
    var fee: DecimalString
    /// Base units per unit of `currency` on the trade date: fixes the entry's cost in the base.
    var fxRate: DecimalString
    /// The buys a sell takes from, in order (empty: the portfolio's cost method).
    var lots: [UUID]
    var externalId: String?
    var notes: String
    var createdAt, updatedAt: Date

    init(_ row: PostgresRow) throws {
        var columns = RowReader(row)
        id = try columns.next()
        portfolioId = try columns.next()
        ownerId = try columns.next()
        let kind: String = try columns.next()
        type = Ledger.Kind(rawValue: kind) ?? .buy
        tradeDate = try columns.next()
        symbol = try columns.next()
        quantity = try Self.decimal(columns.next())
        price = try Self.decimal(columns.next())
        amount = try Self.decimal(columns.next())
        currency = try columns.next()
        fee = try Self.decimal(columns.next()) ?? DecimalString(0, scale: 0)
        fxRate = try Self.decimal(columns.next()) ?? DecimalString(1, scale: 0)
        lots = try columns.next()
        externalId = try columns.next()
        notes = try columns.next()
        createdAt = try columns.next()
        updatedAt = try columns.next()
    }

    /// A numeric column read as its text (`::text`), exactly as PostgreSQL stores it.
    static func decimal(_ text: String?) throws -> DecimalString? {
        guard let text else { return nil }
        guard let value = DecimalString(text) else { throw PortfolioDataError("numeric column holds '\(text)'") }
        return value
    }

    /// The entry as the ledger books it.
    var entry: Ledger.Entry {
        Ledger.Entry(
            id: id, kind: type, date: tradeDate, symbol: symbol, quantity: quantity?.value ?? 0, price: price?.value ?? 0,
            amount: amount?.value ?? 0, currency: currency, fee: fee.value, fxRate: fxRate.value, lots: lots)
    }
}

extension Ledger.Kind: JSONSchemaDescribable {}

/// A value read from the database that the module's own checks should have kept out.
struct PortfolioDataError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A new ledger entry as a request sends it.
struct TransactionFields: Codable, Sendable {
    var type: Ledger.Kind
    var tradeDate: String
    var symbol: String?
    var quantity, price, amount: DecimalString?
    var currency: String
    var fee: DecimalString?
    /// Base units per unit of `currency` on the trade date; when absent, the tenant's
    /// rate on or before the trade date is taken (and stored on the entry).
    var fxRate: DecimalString?
    var lots: [UUID]?
    var externalId: String?
    var notes: String?

    /// Every problem of the body at once (422 naming each field).
    func validated() throws -> TransactionFields {
        var checks = FieldChecks()
        checks.record("trade_date", TradeDate.problem(tradeDate))
        checks.record("currency", PortfolioValidation.currencyProblem(currency))
        switch type {
        case .buy, .sell:
            checks.fail("symbol", "is required for a \(type.rawValue)", when: symbol == nil)
            checks.fail("quantity", "is required for a \(type.rawValue)", when: quantity == nil)
            checks.fail("price", "is required for a \(type.rawValue)", when: price == nil)
            checks.fail("amount", "is not taken by a \(type.rawValue) (it is quantity × price)", when: amount != nil)
        case .dividend, .fee, .deposit, .withdrawal:
            checks.fail("symbol", "is required for a dividend", when: type == .dividend && symbol == nil)
            checks.fail("symbol", "is not taken by a \(type.rawValue)", when: (type == .deposit || type == .withdrawal) && symbol != nil)
            checks.fail("amount", "is required for a \(type.rawValue)", when: amount == nil)
            checks.fail("quantity", "is not taken by a \(type.rawValue) (send amount)", when: quantity != nil)
            checks.fail("price", "is not taken by a \(type.rawValue) (send amount)", when: price != nil)
        }
        checks.fail("lots", "may be named only by a sell", when: type != .sell && !(lots ?? []).isEmpty)
        checks.fail("lots", "names a lot twice", when: Set(lots ?? []).count != (lots ?? []).count)
        checks.fail("lots", "may name at most 1000 lots", when: (lots ?? []).count > 1000)
        checks.record("symbol", symbol.flatMap(PortfolioValidation.symbolProblem))
        checks.fail("quantity", "must be greater than 0", when: quantity.map { $0.value <= 0 } ?? false)
        checks.fail("price", "must not be negative", when: price.map { $0.value < 0 } ?? false)
        checks.fail("amount", "must be greater than 0", when: amount.map { $0.value <= 0 } ?? false)
        checks.fail("fee", "must not be negative", when: fee.map { $0.value < 0 } ?? false)
        checks.fail("fx_rate", "must be greater than 0", when: fxRate.map { $0.value <= 0 } ?? false)
        checks.record("external_id", externalId.flatMap { InputDomain.textProblem($0, maximum: 200) ?? ($0.isEmpty ? "must not be empty" : nil) })
        checks.record("notes", notes.flatMap { InputDomain.textProblem($0, maximum: 2000) })
        try checks.finish()
        return self
    }
}

/// A withdrawal as `withdrawals` takes it: cash out of the portfolio on a date, with a
/// note (seed 000 kept one per withdrawal), recorded as a ledger entry of type `withdrawal`.
struct WithdrawalFields: Codable, Sendable {
    var amount: DecimalString
    var currency: String
    var tradeDate: String
    var fee: DecimalString?
    var fxRate: DecimalString?
    var externalId: String?
    var notes: String?

    var entry: TransactionFields {
        TransactionFields(
            type: .withdrawal, tradeDate: tradeDate, amount: amount, currency: currency, fee: fee, fxRate: fxRate, externalId: externalId, notes: notes)
    }
}
