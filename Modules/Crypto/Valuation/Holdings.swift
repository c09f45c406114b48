import AtriumCore
import Foundation
import HTTPTypes
import PostgresNIO

/// What the synced balances hold and are worth now: the balances of every active
/// connection the caller may see (their own; an admin's `?owner=` narrows to one user),
/// summed per asset and valued at the exchange's last prices (at most five minutes old).
struct Holdings: Codable, Sendable {
    struct Line: Codable, Sendable {
        var asset: String
        var quantity: DecimalString
        /// One unit's worth in the valuation asset; null when no market prices it.
        var price: DecimalString?
        var value: DecimalString?
    }

    var valuationAsset: String
    var pricedAt: Date
    /// The sum of the priced lines, rounded half-even to 8 places once.
    var totalValue: DecimalString
    var assets: [Line]
    /// Assets held that no direct, inverse or BTC-bridged market prices: left out of the
    /// total, never counted as 0.
    var unpricedAssets: [String]

    /// Values `quantities` (asset → amount) at `quotes`.
    init(_ quantities: [(asset: String, quantity: Decimal)], in valuation: String, at quotes: Quotes) {
        let rates = quotes.rates(of: quantities.map(\.asset), in: valuation)
        var total: Decimal = 0
        var lines: [Line] = []
        var unpriced: [String] = []
        for (asset, quantity) in quantities {
            guard let rate = rates[asset] else {
                unpriced.append(asset)
                lines.append(Line(asset: asset, quantity: DecimalString(quantity), price: nil, value: nil))
                continue
            }
            let value = quantity * rate
            total += value
            lines.append(Line(
                asset: asset, quantity: DecimalString(quantity), price: DecimalString(DecimalString.rounded(rate, scale: 18)),
                value: DecimalString(value, scale: 8)))
        }
        valuationAsset = valuation
        pricedAt = quotes.pricedAt
        totalValue = DecimalString(total, scale: 8)
        assets = lines
        unpricedAssets = unpriced
    }
}

struct HoldingsRoutes {
    let adapter: any ExchangeAdapter
    let marketData: MarketData

    func register(_ routes: ModuleRoutes) {
        let (adapter, marketData) = (adapter, marketData)
        routes.on(
            .get, "holdings", summary: "What your connected accounts hold, valued at the exchange's prices (at most five minutes old)",
            access: CryptoAccess.records,
            query: ValuationScope.parameters, response: Holdings.self
        ) { request in
            let scope = try ValuationScope(request)
            let (valuation, quantities) = try await request.transaction { transaction in
                let valuation = try await scope.valuationAsset(on: transaction)
                let rows = try await transaction.lastStatement {
                    try await transaction.query(
                        """
                        SELECT b.asset, sum(b.free + b.locked)::text FROM crypto_balances b
                        JOIN crypto_connections c ON c.tenant_id = b.tenant_id AND c.id = b.connection_id AND c.state = 'active'
                        WHERE (\(scope.owner)::uuid IS NULL OR b.owner_id = \(scope.owner))
                          AND (\(scope.connection)::uuid IS NULL OR b.connection_id = \(scope.connection))
                        GROUP BY b.asset HAVING sum(b.free + b.locked) <> 0 ORDER BY b.asset
                        """)
                }
                return (valuation, try rows.map { row in
                    let (asset, quantity) = try row.decode((String, String).self)
                    return (asset: asset, quantity: DecimalString(quantity)?.value ?? 0)
                })
            }
            let quotes: Quotes
            do throws(ExchangeFailure) {
                quotes = try await marketData.quotes(from: adapter)
            } catch {
                throw ConnectionProblems.problem(for: error)
            }
            return Holdings(quantities, in: valuation, at: quotes)
        }
    }
}
