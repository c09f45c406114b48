import AtriumCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
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

/// Which trades a list or export reads: by connection, market and time, after a position.
struct TradeFilter: Sendable {
    var connection: UUID?
    var symbol: String?
    var since: Date?

    init(_ request: TenantRequest) throws {
        connection = try request.uuidQuery("connection")
        symbol = request.query("symbol")
        if let symbol, ConnectionFields.marketsProblem([symbol]) != nil {
            throw AtriumError.validation(field: "symbol", "must be a market such as BTCUSDT")
        }
        since = try request.timeQuery("since")
    }

    static let parameters: [QueryParameter] = [
        .init("connection", "Only this connection's trades."), .init("symbol", "Only this market's trades (BTCUSDT)."),
        .init("since", "Only trades at or after this RFC 3339 time."),
    ]
}

/// A trade's place in the list's order (time, connection, market, trade id): where the
/// next page starts.
struct TradePosition: Sendable {
    var time: String
    var connection: UUID
    var symbol: String
    var tradeID: Int64

    var cursor: PageCursor { PageCursor([time, connection.uuidString, symbol, String(tradeID)]) }

    init(time: String, connection: UUID, symbol: String, tradeID: Int64) {
        (self.time, self.connection, self.symbol, self.tradeID) = (time, connection, symbol, tradeID)
    }

    init?(_ cursor: PageCursor) {
        let values = cursor.values
        guard values.count == 4, let connection = UUID(uuidString: values[1]), let id = Int64(values[3]) else { return nil }
        self.init(time: values[0], connection: connection, symbol: values[2], tradeID: id)
    }
}

enum TradeStore {
    /// Up to `limit` trades the transaction may see, oldest first, after `after`.
    static func page(_ filter: TradeFilter, after: TradePosition?, limit: Int, on transaction: TenantTransaction) async throws -> [(Trade, TradePosition)] {
        let rows = try await transaction.query(
            """
            SELECT connection_id, symbol, trade_id, order_id, is_buyer, price::text, quantity::text, quote_quantity::text, commission::text,
                   commission_asset, is_maker, traded_at, traded_at::text AS position
            FROM crypto_trades
            WHERE (\(filter.connection)::uuid IS NULL OR connection_id = \(filter.connection))
              AND (\(filter.symbol)::text IS NULL OR symbol = \(filter.symbol))
              AND (\(filter.since)::timestamptz IS NULL OR traded_at >= \(filter.since))
              AND (\(after?.time)::timestamptz IS NULL
                   OR (traded_at, connection_id, symbol, trade_id) > (\(after?.time)::timestamptz, \(after?.connection)::uuid, \(after?.symbol)::text, \(after?.tradeID)::int8))
            ORDER BY traded_at, connection_id, symbol, trade_id
            LIMIT \(limit)
            """)
        return try rows.map { row in
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
            return (
                Trade(
                    connectionId: connection, symbol: symbol, tradeId: tradeID, orderId: orderID, side: isBuyer ? "buy" : "sell", price: decimals[0],
                    quantity: decimals[1], quoteQuantity: decimals[2], commission: decimals[3], commissionAsset: commissionAsset, isMaker: isMaker,
                    tradedAt: tradedAt),
                TradePosition(time: position, connection: connection, symbol: symbol, tradeID: tradeID))
        }
    }
}

/// `GET trades`: the trades the caller may see, oldest first, by connection and market,
/// keyset-paged on (time, connection, market, trade id) so that a page never skips or
/// repeats a trade while a sync adds more. `GET trades/export`: the same trades as CSV,
/// streamed in pages of 5,000, each read in its own short transaction.
struct TradeRoutes {
    static let exportPage = 5_000
    static let header = [
        "traded_at", "connection_id", "symbol", "trade_id", "order_id", "side", "price", "quantity", "quote_quantity", "commission",
        "commission_asset", "is_maker",
    ]

    func register(_ routes: ModuleRoutes) {
        routes.on(
            .get, "trades", summary: "Synced trades you may see, oldest first", access: CryptoAccess.records,
            query: QueryParameter.pagination + TradeFilter.parameters, response: Page<Trade>.self
        ) { request in
            let limit = try request.limit()
            let filter = try TradeFilter(request)
            let cursor = try PageCursor.decode(request.query("cursor"), count: 4)
            let after = cursor.flatMap(TradePosition.init)
            if cursor != nil, after == nil { throw AtriumError.validation(field: "cursor", "is not a cursor this list issued") }
            let trades = try await request.transaction { transaction in
                try await transaction.lastStatement { try await TradeStore.page(filter, after: after, limit: limit + 1, on: transaction) }
            }
            let shown = Array(trades.prefix(limit))
            guard trades.count > limit, let last = shown.last else { return Page(data: shown.map(\.0)) }
            return Page(data: shown.map(\.0), nextCursor: last.1.cursor.encoded)
        }

        routes.streaming(
            .get, "trades/export", summary: "Synced trades you may see as CSV, oldest first (streamed)", access: CryptoAccess.records,
            query: TradeFilter.parameters, produces: "text/csv"
        ) { request in
            let filter = try TradeFilter(request)
            let body = ResponseBody { writer in
                var buffer = ByteBuffer()
                CSVWriter.appendRow(Self.header, to: &buffer)
                var after: TradePosition?
                while true {
                    let page = try await request.transaction { transaction in
                        try await transaction.lastStatement { try await TradeStore.page(filter, after: after, limit: Self.exportPage, on: transaction) }
                    }
                    for (trade, _) in page {
                        CSVWriter.appendRow(
                            [trade.tradedAt.formatted(.iso8601), trade.connectionId.uuidString.lowercased(), trade.symbol, String(trade.tradeId),
                             String(trade.orderId), trade.side, trade.price.text, trade.quantity.text, trade.quoteQuantity.text, trade.commission.text,
                             trade.commissionAsset, String(trade.isMaker)],
                            to: &buffer)
                    }
                    try await writer.write(buffer)
                    buffer.clear()
                    guard page.count == Self.exportPage, let last = page.last else { break }
                    after = last.1
                }
                try await writer.finish(nil)
            }
            return Response(
                status: .ok, headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"trades.csv\""], body: body)
        }
    }
}
