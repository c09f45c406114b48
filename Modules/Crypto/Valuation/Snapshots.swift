import AtriumCore
import Foundation
import HTTPTypes
import PostgresNIO

/// A snapshot of one user's holdings, as the API shows it.
struct Snapshot: Codable, Sendable {
    struct Line: Codable, Sendable {
        var asset: String
        var quantity: DecimalString
        var price: DecimalString?
        var value: DecimalString?
    }

    var id: UUID
    var ownerId: UUID
    var takenAt: Date
    var valuationAsset: String
    var totalValue: DecimalString
    var unpricedAssets: [String]
    var connections: Int
    /// The assets, in `GET snapshots/{id}` only.
    var lines: [Line]?

    static let columns = "id, owner_id, taken_at, valuation_asset, round(total_value, 8)::text, unpriced_assets, connections"

    init(_ row: PostgresRow) throws {
        var columns = RowReader(row)
        id = try columns.next()
        ownerId = try columns.next()
        takenAt = try columns.next()
        valuationAsset = try columns.next()
        let total: String = try columns.next()
        totalValue = DecimalString(total) ?? DecimalString(0)
        unpricedAssets = try columns.next()
        connections = try columns.next()
    }
}

/// `crypto.snapshot`: every user of the tenant whose last snapshot is older than the
/// plan's interval gets one: the balances of their active connections, each asset valued
/// at the exchange's prices in their valuation asset. One statement writes every due
/// user's snapshot and lines, once per interval slot (a second run in the same slot adds
/// nothing). Old snapshots are thinned in the same job: the last seven days whole, before
/// that the last of each UTC day.
enum Snapshots {
    struct Request: Codable, Sendable {}

    static let kind = JobKind<Request>("crypto.snapshot")
    static let uniqueKey = "crypto.snapshot"

    /// Whether some user is due: a tick only queues the job then.
    static let dueCondition = """
        EXISTS (
            SELECT 1 FROM crypto_connections c
            WHERE c.state = 'active' AND NOT EXISTS (
                SELECT 1 FROM crypto_snapshots s WHERE s.owner_id = c.owner_id
                  AND s.slot = to_timestamp(floor(extract(epoch FROM now()) / crypto_sync_interval(c.tenant_id)) * crypto_sync_interval(c.tenant_id))))
        """

    static func job(adapter: @escaping @Sendable (JobContext) -> any ExchangeAdapter, marketData: MarketData) -> JobDefinition {
        kind.definition(maxAttempts: 4, lease: .seconds(300), backoff: .seconds(30)) { context, _ in
            _ = try await take(adapter: adapter(context), marketData: marketData, context: context)
        }
    }

    /// Takes the due snapshots; returns how many users got one.
    static func take(adapter: any ExchangeAdapter, marketData: MarketData, context: JobContext) async throws -> Int {
        // What needs a price: each due user's valuation asset and held assets.
        let needed = try await context.transaction(seesAllOwners: true) { transaction in
            try await transaction.query(
                """
                SELECT DISTINCT coalesce(st.valuation_asset, 'USDT'), b.asset
                FROM crypto_balances b
                JOIN crypto_connections c ON c.tenant_id = b.tenant_id AND c.id = b.connection_id AND c.state = 'active'
                LEFT JOIN crypto_settings st ON st.tenant_id = b.tenant_id AND st.owner_id = b.owner_id
                """
            ).map { try $0.decode((String, String).self) }
        }
        var valuations: [String] = [], assets: [String] = [], rates: [String] = []
        if !needed.isEmpty {
            let quotes: Quotes
            do throws(ExchangeFailure) {
                quotes = try await marketData.quotes(from: adapter)
            } catch {
                if case .unavailable(let reason, let retryAfter?) = error { throw JobRetryLater(after: .seconds(max(1, retryAfter)), reason: reason) }
                throw error
            }
            for (valuation, asset) in needed {
                guard let rate = quotes.rate(of: asset, in: valuation) else { continue }
                valuations.append(valuation)
                assets.append(asset)
                rates.append(DecimalString(DecimalString.rounded(rate, scale: 18)).text)
            }
        }
        return try await context.transaction(seesAllOwners: true) { [valuations, assets, rates] transaction in
            let taken = try await transaction.query(
                """
                WITH slot AS (
                    SELECT to_timestamp(floor(extract(epoch FROM now()) / i) * i) AS at FROM crypto_sync_interval(\(transaction.tenantID)) AS i
                ), rates AS (
                    SELECT * FROM unnest(\(valuations)::text[], \(assets)::text[], \(rates)::numeric[]) AS r (valuation_asset, asset, rate)
                ), due AS (
                    SELECT c.owner_id, count(*)::int AS connections FROM crypto_connections c, slot
                    WHERE c.state = 'active'
                      AND NOT EXISTS (SELECT 1 FROM crypto_snapshots s WHERE s.owner_id = c.owner_id AND s.slot = slot.at)
                    GROUP BY c.owner_id
                ), held AS (
                    SELECT b.owner_id, coalesce(st.valuation_asset, 'USDT') AS valuation_asset, b.asset, sum(b.free + b.locked) AS quantity
                    FROM crypto_balances b
                    JOIN crypto_connections c ON c.tenant_id = b.tenant_id AND c.id = b.connection_id AND c.state = 'active'
                    JOIN due ON due.owner_id = b.owner_id
                    LEFT JOIN crypto_settings st ON st.tenant_id = b.tenant_id AND st.owner_id = b.owner_id
                    GROUP BY 1, 2, 3 HAVING sum(b.free + b.locked) <> 0
                ), priced AS (
                    SELECT h.*, r.rate, h.quantity * r.rate AS value FROM held h LEFT JOIN rates r USING (valuation_asset, asset)
                ), snapshots AS (
                    INSERT INTO crypto_snapshots (tenant_id, owner_id, slot, valuation_asset, total_value, unpriced_assets, connections)
                    SELECT \(transaction.tenantID), due.owner_id, slot.at, coalesce(st.valuation_asset, 'USDT'),
                        coalesce((SELECT sum(p.value) FROM priced p WHERE p.owner_id = due.owner_id), 0),
                        coalesce((SELECT array_agg(p.asset ORDER BY p.asset) FROM priced p WHERE p.owner_id = due.owner_id AND p.rate IS NULL), '{}'),
                        due.connections
                    FROM due CROSS JOIN slot
                    LEFT JOIN crypto_settings st ON st.tenant_id = \(transaction.tenantID) AND st.owner_id = due.owner_id
                    ON CONFLICT (tenant_id, owner_id, slot) DO NOTHING
                    RETURNING id, owner_id
                ), lines AS (
                    INSERT INTO crypto_snapshot_lines (tenant_id, snapshot_id, owner_id, asset, quantity, price, value)
                    SELECT \(transaction.tenantID), s.id, p.owner_id, p.asset, p.quantity, p.rate, p.value FROM snapshots s JOIN priced p USING (owner_id)
                )
                SELECT count(*)::int FROM snapshots
                """)
            // Thinning: past seven days, only the last snapshot of each UTC day stays.
            _ = try await transaction.query(
                """
                DELETE FROM crypto_snapshots s WHERE s.taken_at < now() - interval '7 days'
                  AND EXISTS (SELECT 1 FROM crypto_snapshots later WHERE later.owner_id = s.owner_id AND later.taken_at > s.taken_at
                                AND (later.taken_at AT TIME ZONE 'UTC')::date = (s.taken_at AT TIME ZONE 'UTC')::date)
                """)
            return try taken.first?.decode(Int.self) ?? 0
        }
    }
}

struct SnapshotRoutes {
    static let table = RecordTable<Snapshot>(
        "crypto_snapshots", columns: Snapshot.columns, noun: "snapshot", order: .descending("taken_at", time: \.takenAt, id: \.id), decode: Snapshot.init)

    func register(_ routes: ModuleRoutes) {
        CryptoAccess.recordRoutes.list(routes, "snapshots", summary: "Snapshots of holdings you may see, newest first", search: "valuation_asset") {
            request, page, filter in
            try await request.transaction { transaction in
                try await transaction.lastStatement {
                    try await Self.table.page(page, where: filter.conditions(searching: ["valuation_asset"]), on: transaction)
                }
            }
        }
        routes.on(.get, "snapshots/{id}", summary: "One snapshot with its assets", access: CryptoAccess.records, response: Snapshot.self) { request in
            let id = try request.uuidParameter("id")
            return try await request.transaction { transaction in
                var snapshot = try await Self.table.find(id, on: transaction)
                let rows = try await transaction.lastStatement {
                    try await transaction.query(
                        """
                        SELECT asset, quantity::text, price::text, round(value, 8)::text FROM crypto_snapshot_lines
                        WHERE snapshot_id = \(id) ORDER BY asset
                        """)
                }
                snapshot.lines = try rows.map { row in
                    let (asset, quantity, price, value) = try row.decode((String, String, String?, String?).self)
                    return Snapshot.Line(
                        asset: asset, quantity: DecimalString(quantity) ?? DecimalString(0), price: price.flatMap(DecimalString.init),
                        value: value.flatMap(DecimalString.init))
                }
                return snapshot
            }
        }
    }
}
