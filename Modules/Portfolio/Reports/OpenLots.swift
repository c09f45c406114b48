import AtriumCore
import Foundation

/// The lots a portfolio holds on a date, each as bought (after the splits up to the
/// date): which buy opened it, what is left of it and what that part cost, as traded and
/// in the base at trade-date FX. A sell may name these ids (`lots`) to take from them.
/// Under moving average there is one pool per instrument, id `average`.
struct OpenLots: Codable, Sendable {
    struct Lot: Codable, Sendable {
        /// The buy's transaction id (`average` for a moving-average pool).
        var id: String
        var symbol: String
        var currency: String
        var openedOn: String
        var quantity: DecimalString
        var cost: DecimalString
        var costBase: DecimalString
    }

    var asOf: String
    var baseCurrency: String
    var costMethod: CostMethod
    var lots: [Lot]
}

enum OpenLotsReport {
    /// The open lots of `portfolioID` as of `asOf`, of `symbol` only when given, oldest
    /// first within an instrument.
    static func lots(of portfolioID: UUID, asOf: String, symbol: String?, on transaction: TenantTransaction) async throws -> OpenLots {
        let portfolio = try await PortfolioStore.table.find(portfolioID, on: transaction)
        let (_, _, ledger) = try await TransactionStore.booked(portfolio, asOf: asOf, on: transaction)
        let baseScale = CurrencyCodes.minorUnitExponent(of: portfolio.baseCurrency) ?? 2
        let lots = zip(ledger.local.lots, ledger.base.lots).filter { symbol == nil || $0.0.symbol == symbol }.map { local, base in
            let currency = ledger.currencies[local.symbol] ?? portfolio.baseCurrency
            return OpenLots.Lot(
                id: local.id == "average" ? local.id : local.id.lowercased(), symbol: local.symbol, currency: currency, openedOn: local.openedOn,
                quantity: DecimalString(local.quantity), cost: DecimalString(local.cost, scale: CurrencyCodes.minorUnitExponent(of: currency) ?? 2),
                costBase: DecimalString(base.cost, scale: baseScale))
        }
        return OpenLots(
            asOf: asOf, baseCurrency: portfolio.baseCurrency, costMethod: portfolio.costMethod,
            lots: lots.enumerated().sorted { ($0.element.symbol, $0.offset) < ($1.element.symbol, $1.offset) }.map(\.element))
    }
}
