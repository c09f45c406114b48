import AtriumCore
import Foundation

/// Realized gains: every part of every sell matched to the lot it closed, its gain as
/// traded and in the base (cost at the buy's FX, proceeds at the sell's), split into the
/// price's part (the gain as traded, at the sell's FX) and the currency's part.
struct Realized: Codable, Sendable {
    struct Line: Codable, Sendable {
        /// The sell, or the split whose cash in lieu sold the fraction (`cash_in_lieu`).
        var sellId: UUID
        /// The buy the units came from (`average` under moving average).
        var lot: String
        var symbol: String
        var date: String
        var currency: String
        var quantity: DecimalString
        var cost: DecimalString
        var proceeds: DecimalString
        var gain: DecimalString
        var costBase: DecimalString
        var proceedsBase: DecimalString
        var gainBase: DecimalString
        var priceEffectBase: DecimalString
        var currencyEffectBase: DecimalString
        /// True on the fraction a split paid in cash (`sell_id` is the split's id).
        var cashInLieu: Bool? = nil
    }

    var asOf: String
    /// The sum of every line's gain in the base, exact, rounded once.
    var total: DecimalString
    var currency: String
    var costMethod: CostMethod
    var lines: [Line]
    /// What the report was made from (`InputsHash`): the same hash, the same report.
    var inputsHash: String
}

enum RealizedReport {
    static func realized(of portfolioID: UUID, asOf: String, on transaction: TenantTransaction) async throws -> Realized {
        let portfolio = try await PortfolioStore.table.find(portfolioID, on: transaction)
        let (entries, splits, ledger) = try await TransactionStore.booked(portfolio, asOf: asOf, on: transaction)
        let digest = try await InputsHash.ledgerDigest(of: portfolio.id, asOf: asOf, on: transaction)
        return report(portfolio: portfolio, ledger: ledger, entries: entries, splits: splits, ledgerDigest: digest, asOf: asOf)
    }

    static func report(
        portfolio: Portfolio, ledger: Ledger, entries: [Ledger.Entry], splits: [Ledger.Split], ledgerDigest: String, asOf: String
    ) -> Realized {
        let baseScale = CurrencyCodes.minorUnitExponent(of: portfolio.baseCurrency) ?? 2
        let sells = Dictionary(entries.map { ($0.id.uuidString, $0) }, uniquingKeysWith: { first, _ in first })
        let splitsByID = Dictionary(splits.map { ($0.id.uuidString, $0) }, uniquingKeysWith: { first, _ in first })
        var total: Decimal = 0
        let lines = ledger.disposals.map { local, base in
            let sell = sells[local.sell]
            let inLieu = sell == nil ? splitsByID[local.sell] : nil
            let currency = sell?.currency ?? ledger.currencies[local.symbol] ?? portfolio.baseCurrency
            let scale = CurrencyCodes.minorUnitExponent(of: currency) ?? 2
            // The rate the proceeds were turned into the base at (see `Ledger.Split`).
            let rate = sell?.fxRate ?? inLieu?.cashInLieuFX ?? (local.proceeds == 0 ? 1 : base.proceeds / local.proceeds)
            let priceEffect = local.gain * rate
            total += base.gain
            return Realized.Line(
                sellId: sell?.id ?? inLieu?.id ?? UUID(), lot: local.lot == "average" ? "average" : local.lot.lowercased(), symbol: local.symbol, date: local.date,
                currency: currency, quantity: DecimalString(local.quantity), cost: DecimalString(local.cost, scale: scale),
                proceeds: DecimalString(local.proceeds, scale: scale), gain: DecimalString(local.gain, scale: scale),
                costBase: DecimalString(base.cost, scale: baseScale), proceedsBase: DecimalString(base.proceeds, scale: baseScale),
                gainBase: DecimalString(base.gain, scale: baseScale), priceEffectBase: DecimalString(priceEffect, scale: baseScale),
                currencyEffectBase: DecimalString(base.gain - priceEffect, scale: baseScale), cashInLieu: inLieu == nil ? nil : true)
        }
        return Realized(
            asOf: asOf, total: DecimalString(total, scale: baseScale), currency: portfolio.baseCurrency, costMethod: portfolio.costMethod, lines: lines,
            inputsHash: InputsHash.of(report: "realized/1", method: portfolio.costMethod, asOf: asOf, ledger: ledgerDigest, splits: splits))
    }
}
