import AtriumCore
import Foundation
import HTTPTypes
import PostgresNIO

/// Profit and loss per asset at average cost, in the valuation asset.
///
/// Every trade disposes of one asset and acquires another, both worth the trade's quote
/// amount in the valuation asset on the trade's day (the quote asset's daily close when
/// it is not the valuation asset itself). An acquisition adds its worth to the asset's
/// cost; a disposal takes the average cost of what it gives up and realizes the
/// difference. Fees: in the base or quote asset they change what was received or given
/// (so the cost or the proceeds); in a third asset (BNB) their worth that day is added to
/// the cost of a buy or taken from the proceeds of a sell, and that asset's holding
/// shrinks at its average cost.
///
/// Holdings the trades do not explain (deposits) are `unexplained_quantity`, outside
/// P&L: a disposal takes from the explained quantity first and realizes only on that.
struct ProfitAndLoss: Codable, Sendable {
    struct Line: Codable, Sendable {
        var asset: String
        /// What the trades explain being held now.
        var quantity: DecimalString
        var cost: DecimalString
        var averageCost: DecimalString?
        var price: DecimalString?
        var value: DecimalString?
        var unrealized: DecimalString?
        var realized: DecimalString
        /// Fees paid on this asset's trades, in the valuation asset.
        var fees: DecimalString
        /// The balance less what the trades explain: deposits, withdrawals, transfers.
        var unexplainedQuantity: DecimalString
    }

    var valuationAsset: String
    var pricedAt: Date
    var realized: DecimalString
    var unrealized: DecimalString
    var assets: [Line]
    /// Assets that no market prices in the valuation asset now or on a trade's day: their
    /// trades are left out, never valued 0.
    var unpricedAssets: [String]
}

/// One synced trade, as the P&L reads it.
struct LedgerTrade: Sendable {
    var symbol: String
    var isBuyer: Bool
    var quantity: Decimal
    var quoteQuantity: Decimal
    var commission: Decimal
    var commissionAsset: String
    /// The UTC day, as its first millisecond since 1970.
    var day: Int64
}

/// The running average-cost book: explained quantity, cost, realized and fees per asset.
struct AverageCostBook {
    struct Position {
        var quantity: Decimal = 0
        var cost: Decimal = 0
        var realized: Decimal = 0
        var fees: Decimal = 0
    }

    private(set) var positions: [String: Position] = [:]

    mutating func acquire(_ asset: String, quantity: Decimal, cost: Decimal) {
        positions[asset, default: Position()].quantity += quantity
        positions[asset, default: Position()].cost += cost
    }

    /// Gives up `quantity` of `asset` for `proceeds`; realizes on the explained part only.
    mutating func dispose(_ asset: String, quantity: Decimal, proceeds: Decimal?) {
        var position = positions[asset, default: Position()]
        guard quantity > 0 else { return }
        let matched = min(quantity, max(0, position.quantity))
        if matched > 0 {
            let basis = matched == position.quantity ? position.cost : position.cost * matched / position.quantity
            if let proceeds { position.realized += proceeds * matched / quantity - basis }
            position.cost -= basis
            position.quantity -= matched
        }
        positions[asset] = position
    }

    mutating func fee(_ asset: String, _ value: Decimal) {
        positions[asset, default: Position()].fees += value
    }

    /// Books `trade` of market `base`/`quote`; `worth(asset)` is one unit of `asset` in
    /// the valuation asset on the trade's day.
    mutating func book(_ trade: LedgerTrade, base: String, quote: String, worth: (String) -> Decimal?) -> Bool {
        guard let quoteRate = worth(quote) else { return false }
        let value = trade.quoteQuantity * quoteRate
        let feeAsset = trade.commissionAsset
        var feeValue: Decimal = 0
        if trade.commission > 0 {
            guard let feeRate = worth(feeAsset) else { return false }
            feeValue = trade.commission * feeRate
        }
        if trade.isBuyer {
            let received = trade.quantity - (feeAsset == base ? trade.commission : 0)
            let paid = trade.quoteQuantity + (feeAsset == quote ? trade.commission : 0)
            acquire(base, quantity: received, cost: value + (feeAsset == base ? 0 : feeValue))
            dispose(quote, quantity: paid, proceeds: paid * quoteRate)
        } else {
            let given = trade.quantity + (feeAsset == base ? trade.commission : 0)
            let received = trade.quoteQuantity - (feeAsset == quote ? trade.commission : 0)
            // A fee in the base asset is in `given`; in the quote or a third asset, it is
            // taken from what the sale brought.
            dispose(base, quantity: given, proceeds: value - (feeAsset == base ? 0 : feeValue))
            acquire(quote, quantity: received, cost: received * quoteRate)
        }
        if feeAsset != base, feeAsset != quote, trade.commission > 0 { dispose(feeAsset, quantity: trade.commission, proceeds: nil) }
        fee(base, feeValue)
        return true
    }
}

struct ProfitAndLossRoutes {
    let adapter: any ExchangeAdapter
    let marketData: MarketData

    func register(_ routes: ModuleRoutes) {
        let (adapter, marketData) = (adapter, marketData)
        routes.on(
            .get, "pnl", summary: "Realized and unrealized profit and loss per asset, at average cost in the valuation asset",
            access: CryptoAccess.records,
            query: ValuationScope.parameters, response: ProfitAndLoss.self
        ) { request in
            let scope = try ValuationScope(request)
            let (valuation, trades, balances) = try await request.transaction { transaction in
                let valuation = try await scope.valuationAsset(on: transaction)
                let trades = try await transaction.query(
                    """
                    SELECT symbol, is_buyer, quantity::text, quote_quantity::text, commission::text, commission_asset,
                        (extract(epoch FROM date_trunc('day', traded_at AT TIME ZONE 'UTC')) * 1000)::int8
                    FROM crypto_trades
                    WHERE (\(scope.owner)::uuid IS NULL OR owner_id = \(scope.owner)) AND (\(scope.connection)::uuid IS NULL OR connection_id = \(scope.connection))
                    ORDER BY traded_at, connection_id, symbol, trade_id
                    """
                ).map { row in
                    let (symbol, isBuyer, quantity, quoteQuantity, commission, asset, day) = try row.decode((String, Bool, String, String, String, String, Int64).self)
                    return LedgerTrade(
                        symbol: symbol, isBuyer: isBuyer, quantity: DecimalString(quantity)?.value ?? 0, quoteQuantity: DecimalString(quoteQuantity)?.value ?? 0,
                        commission: DecimalString(commission)?.value ?? 0, commissionAsset: asset, day: day)
                }
                let balances = try await transaction.lastStatement {
                    try await transaction.query(
                        """
                        SELECT asset, sum(free + locked)::text FROM crypto_balances
                        WHERE (\(scope.owner)::uuid IS NULL OR owner_id = \(scope.owner)) AND (\(scope.connection)::uuid IS NULL OR connection_id = \(scope.connection))
                        GROUP BY asset
                        """
                    ).map { try $0.decode((String, String).self) }
                }
                return (valuation, trades, Dictionary(balances.map { ($0.0, DecimalString($0.1)?.value ?? 0) }, uniquingKeysWith: +))
            }
            do throws(ExchangeFailure) {
                return try await Self.compute(trades, balances: balances, in: valuation, adapter: adapter, marketData: marketData)
            } catch {
                throw ConnectionProblems.problem(for: error)
            }
        }
    }

    static func compute(
        _ trades: [LedgerTrade], balances: [String: Decimal], in valuation: String, adapter: any ExchangeAdapter, marketData: MarketData
    ) async throws(ExchangeFailure) -> ProfitAndLoss {
        let quotes = try await marketData.quotes(from: adapter)
        let sides = Dictionary(quotes.markets.map { ($0.symbol, ($0.base, $0.quote)) }, uniquingKeysWith: { first, _ in first })
        // The past closes each conversion needs, fetched once per market for the days traded.
        var assetsToConvert = Set<String>()
        for trade in trades {
            guard let (_, quote) = sides[trade.symbol] else { continue }
            assetsToConvert.insert(quote)
            if trade.commission > 0 { assetsToConvert.insert(trade.commissionAsset) }
        }
        assetsToConvert.remove(valuation)
        var routes: [String: [(symbol: String, inverted: Bool)]] = [:]
        var closes: [String: [Int64: Decimal]] = [:]
        if let first = trades.first?.day, let last = trades.last?.day {
            for asset in assetsToConvert {
                guard let route = quotes.route(of: asset, in: valuation) else { continue }
                routes[asset] = route
                for leg in route where closes[leg.symbol] == nil {
                    closes[leg.symbol] = try await marketData.dailyCloses(
                        of: leg.symbol, from: Date(timeIntervalSince1970: Double(first) / 1000), to: Date(timeIntervalSince1970: Double(last) / 1000),
                        adapter: adapter)
                }
            }
        }
        func worth(_ asset: String, on day: Int64) -> Decimal? {
            if asset == valuation { return 1 }
            guard let route = routes[asset] else { return nil }
            var rate: Decimal = 1
            for leg in route {
                guard let close = closes[leg.symbol]?[day], close > 0 else { return nil }
                rate *= leg.inverted ? 1 / close : close
            }
            return rate
        }
        var book = AverageCostBook()
        var unpriced = Set<String>()
        for trade in trades {
            guard let (base, quote) = sides[trade.symbol] else { continue }
            if !book.book(trade, base: base, quote: quote, worth: { worth($0, on: trade.day) }) {
                unpriced.formUnion([base, quote].filter { worth($0, on: trade.day) == nil })
                if trade.commission > 0, worth(trade.commissionAsset, on: trade.day) == nil { unpriced.insert(trade.commissionAsset) }
            }
        }
        let assets = Set(book.positions.keys).union(balances.keys).sorted()
        let rates = quotes.rates(of: assets, in: valuation)
        var lines: [ProfitAndLoss.Line] = []
        var realizedTotal: Decimal = 0, unrealizedTotal: Decimal = 0
        for asset in assets {
            let position = book.positions[asset] ?? AverageCostBook.Position()
            let rate = unpriced.contains(asset) ? nil : rates[asset]
            if rate == nil { unpriced.insert(asset) }
            let value = rate.map { position.quantity * $0 }
            let unrealized = value.map { $0 - position.cost }
            realizedTotal += position.realized
            unrealizedTotal += unrealized ?? 0
            lines.append(ProfitAndLoss.Line(
                asset: asset, quantity: DecimalString(position.quantity), cost: DecimalString(position.cost, scale: 8),
                averageCost: position.quantity > 0 ? DecimalString(position.cost / position.quantity, scale: 8) : nil,
                price: rate.map { DecimalString(DecimalString.rounded($0, scale: 18)) }, value: value.map { DecimalString($0, scale: 8) },
                unrealized: unrealized.map { DecimalString($0, scale: 8) }, realized: DecimalString(position.realized, scale: 8),
                fees: DecimalString(position.fees, scale: 8), unexplainedQuantity: DecimalString((balances[asset] ?? 0) - position.quantity)))
        }
        return ProfitAndLoss(
            valuationAsset: valuation, pricedAt: quotes.pricedAt, realized: DecimalString(realizedTotal, scale: 8),
            unrealized: DecimalString(unrealizedTotal, scale: 8), assets: lines, unpricedAssets: unpriced.sorted())
    }
}
