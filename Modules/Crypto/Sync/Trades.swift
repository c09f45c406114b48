import AtriumCore
import Foundation
import HTTPTypes
import PostgresNIO

/// One of the account's fills, as synced from the exchange.
struct Trade: Codable, Sendable {
    var connectionId: UUID
    var symbol: String
    /// The exchange's id of the trade (unique per market).
    var tradeId: Int64
    var orderId: Int64
    /// `buy` when the account bought the market's base asset.
    var side: String
    var price: DecimalString
    var quantity: DecimalString
    var quoteQuantity: DecimalString
    var commission: DecimalString
    var commissionAsset: String
    var isMaker: Bool
    var tradedAt: Date
}

/// `GET trades`: the trades the caller may see, oldest first, by connection and market,
/// keyset-paged on (time, connection, market, trade id) so that a page never skips or
/// repeats a trade while a sync adds more.
struct TradeRoutes {
    func register(_ routes: ModuleRoutes) {
        routes.on(
            .get, "trades", summary: "Synced trades you may see, oldest first", access: CryptoAccess.records,
            query: QueryParameter.pagination + [
                .init("connection", "Only this connection's trades."), .init("symbol", "Only this market's trades (BTCUSDT)."),
            ],
            response: Page<Trade>.self
        ) { request in
            let limit = try request.limit()
            let cursor = try PageCursor.decode(request.query("cursor"), count: 4)
            let connection = try request.uuidQuery("connection")
            let symbol = request.query("symbol")
            if let symbol, ConnectionFields.marketsProblem([symbol]) != nil {
                throw AtriumError.validation(field: "symbol", "must be a market such as BTCUSDT")
            }
            let after = cursor.map { $0.values }
            let afterID = after.flatMap { Int64($0[3]) }
            let afterConnection = after.flatMap { UUID(uuidString: $0[1]) }
            if after != nil, afterID == nil || afterConnection == nil { throw AtriumError.validation(field: "cursor", "is not a cursor this list issued") }
            return try await request.transaction { transaction in
                let rows = try await transaction.lastStatement {
                    try await transaction.query(
                        """
                        SELECT connection_id, symbol, trade_id, order_id, is_buyer, price::text, quantity::text, quote_quantity::text, commission::text,
                               commission_asset, is_maker, traded_at, traded_at::text AS position
                        FROM crypto_trades
                        WHERE (\(connection)::uuid IS NULL OR connection_id = \(connection))
                          AND (\(symbol)::text IS NULL OR symbol = \(symbol))
                          AND (\(after?[0])::timestamptz IS NULL
                               OR (traded_at, connection_id, symbol, trade_id) > (\(after?[0])::timestamptz, \(afterConnection)::uuid, \(after?[2])::text, \(afterID)::int8))
                        ORDER BY traded_at, connection_id, symbol, trade_id
                        LIMIT \(limit + 1)
                        """)
                }
                var trades: [(Trade, String)] = []
                for row in rows {
                    var columns = RowReader(row)
                    let connection: UUID = try columns.next()
                    let symbol: String = try columns.next()
                    let tradeID: Int64 = try columns.next()
                    let orderID: Int64 = try columns.next()
                    let isBuyer: Bool = try columns.next()
                    let figures: [String] = try (0..<4).map { _ in try columns.next() }
                    let commissionAsset: String = try columns.next()
                    let isMaker: Bool = try columns.next()
                    let tradedAt: Date = try columns.next()
                    let position: String = try columns.next()
                    let decimals = figures.map { DecimalString($0) ?? DecimalString(0) }
                    trades.append((
                        Trade(
                            connectionId: connection, symbol: symbol, tradeId: tradeID, orderId: orderID, side: isBuyer ? "buy" : "sell", price: decimals[0],
                            quantity: decimals[1], quoteQuantity: decimals[2], commission: decimals[3], commissionAsset: commissionAsset, isMaker: isMaker,
                            tradedAt: tradedAt), position))
                }
                let shown = Array(trades.prefix(limit))
                guard trades.count > limit, let last = shown.last else { return Page(data: shown.map(\.0)) }
                let next = PageCursor([last.1, last.0.connectionId.uuidString, last.0.symbol, String(last.0.tradeId)])
                return Page(data: shown.map(\.0), nextCursor: next.encoded)
            }
        }
    }
}
