import AtriumCore
import Foundation
import HTTPTypes
import PostgresNIO

/// A sync run as the API shows it.
struct SyncRun: Codable, Sendable {
    var id: UUID
    var connectionId: UUID
    var startedAt: Date
    var finishedAt: Date?
    var outcome: String
    var pages: Int
    var tradesNew: Int
    var tradesSeen: Int
    var error: String?

    init(_ row: PostgresRow) throws {
        var columns = RowReader(row)
        id = try columns.next()
        connectionId = try columns.next()
        startedAt = try columns.next()
        finishedAt = try columns.next()
        outcome = try columns.next()
        pages = try columns.next()
        tradesNew = try columns.next()
        tradesSeen = try columns.next()
        error = try columns.next()
    }
}

/// The answer to `POST connections/{id}/sync`.
struct SyncQueued: Codable, Sendable {
    /// False when a sync of the connection was already queued or running (it will do).
    var queued: Bool
}

struct SyncRoutes {
    static let runs = RecordTable<SyncRun>(
        "crypto_sync_runs", columns: "id, connection_id, started_at, finished_at, outcome, pages, trades_new, trades_seen, error", noun: "sync run",
        order: .descending("started_at", time: \.startedAt, id: \.id), decode: SyncRun.init)

    func register(_ routes: ModuleRoutes) {
        routes.on(
            .post, "connections/{id}/sync", summary: "Sync a connection now (queued; one at a time per connection)", access: CryptoAccess.records,
            response: SyncQueued.self, status: .accepted
        ) { request in
            let id = try request.uuidParameter("id")
            return try await request.transaction { transaction in
                _ = try await ConnectionStore.table.find(id, on: transaction)
                let job = try await transaction.enqueue(CryptoSync.kind, .init(connection: id), uniqueKey: CryptoSync.uniqueKey(id))
                return SyncQueued(queued: job != nil)
            }
        }

        routes.on(
            .get, "connections/{id}/runs", summary: "A connection's sync runs, newest first", access: CryptoAccess.records, query: QueryParameter.pagination,
            response: Page<SyncRun>.self
        ) { request in
            let id = try request.uuidParameter("id")
            let page = try request.pageRequest()
            return try await request.transaction { transaction in
                _ = try await ConnectionStore.table.find(id, on: transaction)
                return try await transaction.lastStatement { try await Self.runs.page(page, where: "connection_id = \(id)", on: transaction) }
            }
        }
    }
}
