import AtriumCore
import Foundation

/// The exchange's markets and last prices, as one valuation reads them: which asset is
/// worth how much of another.
struct Quotes: Sendable {
    var markets: [ExchangeMarket]
    var prices: [String: Decimal]
    /// When the prices were fetched.
    var pricedAt: Date

    /// The market trading `base` against `quote`, by symbol.
    private var bySides: [String: String] {
        Dictionary(markets.map { ("\($0.base)/\($0.quote)", $0.symbol) }, uniquingKeysWith: { first, _ in first })
    }

    /// What one unit of `asset` is worth in `valuation`: 1 for itself, else the direct
    /// market's price, the inverse market's reciprocal, or the two legs through BTC; nil
    /// when none of those is listed and priced (the asset is then unpriced, never 0).
    func rate(of asset: String, in valuation: String) -> Decimal? {
        Self.rate(of: asset, in: valuation, sides: bySides) { prices[$0] }
    }

    /// Rates of many assets at once (the market index built once).
    func rates(of assets: some Sequence<String>, in valuation: String) -> [String: Decimal] {
        let sides = bySides
        var rates: [String: Decimal] = [:]
        for asset in assets { rates[asset] = Self.rate(of: asset, in: valuation, sides: sides) { prices[$0] } }
        return rates
    }

    /// The markets a conversion of `asset` into `valuation` reads, with whether each is
    /// read inverted: for converting at past closes (P&L), by the same route as today's.
    func route(of asset: String, in valuation: String) -> [(symbol: String, inverted: Bool)]? {
        let sides = bySides
        func leg(_ from: String, _ to: String) -> (symbol: String, inverted: Bool)? {
            if let direct = sides["\(from)/\(to)"] { return (direct, false) }
            if let inverse = sides["\(to)/\(from)"] { return (inverse, true) }
            return nil
        }
        if asset == valuation { return [] }
        if let one = leg(asset, valuation) { return [one] }
        if asset != Self.bridge, valuation != Self.bridge, let first = leg(asset, Self.bridge), let second = leg(Self.bridge, valuation) {
            return [first, second]
        }
        return nil
    }

    /// The asset most markets quote against, through which two assets without a market
    /// of their own are converted.
    static let bridge = "BTC"

    static func rate(of asset: String, in valuation: String, sides: [String: String], price: (String) -> Decimal?) -> Decimal? {
        func leg(_ from: String, _ to: String) -> Decimal? {
            if let direct = sides["\(from)/\(to)"], let value = price(direct), value > 0 { return value }
            if let inverse = sides["\(to)/\(from)"], let value = price(inverse), value > 0 { return 1 / value }
            return nil
        }
        if asset == valuation { return 1 }
        if let one = leg(asset, valuation) { return one }
        guard asset != bridge, valuation != bridge, let first = leg(asset, bridge), let second = leg(bridge, valuation) else { return nil }
        return first * second
    }
}

/// The exchange's markets and prices for this process, fetched at most once per five
/// minutes (one `ticker/price` call for every symbol, weight 4, whatever the number of
/// tenants and reads), and past daily closes, which never change, kept once fetched.
actor MarketData {
    static let freshFor: TimeInterval = 300

    private var quotes: Quotes?
    private var closes: [String: [Int64: Decimal]] = [:]

    /// Markets and prices no older than five minutes.
    func quotes(from adapter: any ExchangeAdapter, now: Date = Date()) async throws(ExchangeFailure) -> Quotes {
        if let quotes, now.timeIntervalSince(quotes.pricedAt) < Self.freshFor { return quotes }
        let markets = try await adapter.markets()
        let prices = try await adapter.prices()
        let fresh = Quotes(markets: markets, prices: prices, pricedAt: now)
        quotes = fresh
        return fresh
    }

    /// `symbol`'s daily closes covering `from` through `to` (fetched when a day in that
    /// range is missing; today's close is not final, so it is fetched again each time).
    func dailyCloses(of symbol: String, from: Date, to: Date, adapter: any ExchangeAdapter) async throws(ExchangeFailure) -> [Int64: Decimal] {
        let day: Int64 = 86_400_000
        let first = Int64(from.timeIntervalSince1970 * 1000) / day * day
        let last = Int64(to.timeIntervalSince1970 * 1000) / day * day
        let today = Int64(Date().timeIntervalSince1970 * 1000) / day * day
        let known = closes[symbol] ?? [:]
        let complete = stride(from: first, through: last, by: Int(day)).allSatisfy { $0 < today && known[$0] != nil }
        if complete { return known }
        let fetched = try await adapter.dailyCloses(of: symbol, from: from, to: to)
        let merged = known.merging(fetched) { _, new in new }
        closes[symbol] = merged
        return merged
    }
}
