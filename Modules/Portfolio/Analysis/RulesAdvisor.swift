import AtriumCore
import Foundation

/// The shipped advisor, `rules/1`: fixed rules over weights of the portfolio's value,
/// with limits by risk band. Every item names the rule that made it (its `code`) and
/// carries its figures; the same input gives the same items in the same order.
///
/// | code | when | severity |
/// |---|---|---|
/// | `allocation` | always: the largest sector, asset type and currency | info |
/// | `position_concentration` | one position's weight above the band's limit (10 %, 20 %, 35 %) | warning |
/// | `sector_concentration` | one sector above the band's limit (30 %, 40 %, 60 %) | warning |
/// | `hhi_concentration` | Herfindahl index of position weights above 0.25 | warning |
/// | `stale_prices` | a price more than 5 days older than the date | warning |
/// | `loss_position` | a position worth 10 % or more below its cost | info |
/// | `cash_drag` | cash above 20 % of the value | info |
public struct RulesAdvisor: PortfolioAdvisor {
    public init() {}

    public var name: String { "rules/1" }

    struct Limits {
        var position: Decimal
        var sector: Decimal
    }

    /// `n` hundredths, exact.
    static func hundredths(_ n: Int) -> Decimal { Decimal(n) / 100 }

    static func limits(_ band: String) -> Limits {
        switch band {
        case "conservative": Limits(position: hundredths(10), sector: hundredths(30))
        case "aggressive": Limits(position: hundredths(35), sector: hundredths(60))
        default: Limits(position: hundredths(20), sector: hundredths(40))
        }
    }

    /// The rules run on the compute pool: a portfolio of thousands of positions never
    /// holds an event loop.
    public func advise(_ input: AnalysisInput) async throws -> [AdviceItem] {
        try await ComputePool.shared.run { Self.rules(input) }
    }

    /// The rules, synchronous (a caller runs them on the compute pool).
    public static func rules(_ input: AnalysisInput) -> [AdviceItem] {
        let total = input.total
        guard total > 0 else {
            return [AdviceItem(code: "empty", severity: .info, text: "The portfolio holds nothing to analyse on \(input.asOf).", figures: [:])]
        }
        let limits = limits(input.riskBand)
        var items: [AdviceItem] = []
        func weight(_ value: Decimal) -> Decimal { value / total }
        func percent(_ value: Decimal) -> String { DecimalString(value * 100, scale: 1).text + "%" }
        func figure(_ value: Decimal) -> String { DecimalString(value, scale: 4).text }

        var sectors: [String: Decimal] = [:]
        var types: [String: Decimal] = [:]
        var currencies: [String: Decimal] = [:]
        for position in input.positions {
            sectors[position.sector.isEmpty ? "Unclassified" : position.sector, default: 0] += position.value.value
            types[position.assetType, default: 0] += position.value.value
            currencies[position.currency, default: 0] += position.value.value
        }
        func largest(_ groups: [String: Decimal]) -> (String, Decimal)? {
            groups.max { ($0.value, $1.key) < ($1.value, $0.key) }.map { ($0.key, $0.value) }
        }
        if let (sector, value) = largest(sectors), let (type, typeValue) = largest(types), let (currency, currencyValue) = largest(currencies) {
            items.append(AdviceItem(
                code: "allocation", severity: .info,
                text: "Largest sector: \(sector) at \(percent(weight(value))); largest asset type: \(type) at \(percent(weight(typeValue))); "
                    + "largest currency: \(currency) at \(percent(weight(currencyValue))).",
                figures: [
                    "sector": sector, "sector_weight": figure(weight(value)), "asset_type": type, "asset_type_weight": figure(weight(typeValue)),
                    "currency": currency, "currency_weight": figure(weight(currencyValue)), "positions": String(input.positions.count),
                ]))
        }
        for position in input.positions.sorted(by: { ($0.value.value, $1.symbol) > ($1.value.value, $0.symbol) })
        where weight(position.value.value) > limits.position {
            items.append(AdviceItem(
                code: "position_concentration", severity: .warning,
                text: "\(position.symbol) is \(percent(weight(position.value.value))) of the portfolio, above the \(percent(limits.position)) "
                    + "a \(input.riskBand) investor's rules allow for one position.",
                figures: ["symbol": position.symbol, "weight": figure(weight(position.value.value)), "limit": figure(limits.position)]))
        }
        for (sector, value) in sectors.sorted(by: { $0.key < $1.key }) where weight(value) > limits.sector {
            items.append(AdviceItem(
                code: "sector_concentration", severity: .warning,
                text: "\(sector) is \(percent(weight(value))) of the portfolio, above the \(percent(limits.sector)) a \(input.riskBand) investor's rules allow for one sector.",
                figures: ["sector": sector, "weight": figure(weight(value)), "limit": figure(limits.sector)]))
        }
        let invested = input.positions.reduce(Decimal(0)) { $0 + $1.value.value }
        if invested > 0, input.positions.count > 1 {
            let hhi = input.positions.reduce(Decimal(0)) { sum, position in
                let share = position.value.value / invested
                return sum + share * share
            }
            if hhi > Self.hundredths(25) {
                items.append(AdviceItem(
                    code: "hhi_concentration", severity: .warning,
                    text: "The holdings are concentrated: their Herfindahl index is \(figure(hhi)) (above 0.25 counts as concentrated; "
                        + "\(input.positions.count) equal positions would give \(figure(1 / Decimal(input.positions.count)))).",
                    figures: ["hhi": figure(hhi), "threshold": "0.2500"]))
            }
        }
        let stale = input.positions.filter(\.stale).map(\.symbol).sorted()
        if !stale.isEmpty {
            items.append(AdviceItem(
                code: "stale_prices", severity: .warning,
                text: "Prices more than 5 days old value \(stale.joined(separator: ", ")): the figures above may be out of date.",
                figures: ["symbols": stale.joined(separator: ",")]))
        }
        for position in input.positions.sorted(by: { $0.symbol < $1.symbol }) {
            guard let cost = position.cost?.value, cost > 0 else { continue }
            let change = (position.value.value - cost) / cost
            if change <= -Self.hundredths(10) {
                items.append(AdviceItem(
                    code: "loss_position", severity: .info,
                    text: "\(position.symbol) is worth \(percent(-change)) less than it cost (\(DecimalString(cost, scale: 2).text) → "
                        + "\(position.value.text) \(input.currency)).",
                    figures: ["symbol": position.symbol, "change": figure(change), "cost": position.cost?.text ?? "", "value": position.value.text]))
            }
        }
        if weight(input.cash.value) > Self.hundredths(20) {
            items.append(AdviceItem(
                code: "cash_drag", severity: .info,
                text: "Cash is \(percent(weight(input.cash.value))) of the portfolio; above 20% it holds back returns.",
                figures: ["cash_weight": figure(weight(input.cash.value))]))
        }
        return items
    }
}
