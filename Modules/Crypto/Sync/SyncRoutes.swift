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
    /// Request weight the run spent at the exchange.
    var weight: Int
    /// Whether it read every market (daily, or asked with `--full`), not only those whose
    /// assets' balances moved.
    var fullPass: Bool
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
        weight = try columns.next()
        fullPass = try columns.next()
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
        "crypto_sync_runs", columns: "id, connection_id, started_at, finished_at, outcome, pages, trades_new, trades_seen, weight, full_pass, error", noun: "sync run",
        order: .descending("started_at", time: \.startedAt, id: \.id), decode: SyncRun.init)

    /// A manual sync is for a connection that syncs (active) and whose last run started
    /// at least the plan's interval ago: else 409 naming its state, or 429
    /// `sync_too_soon` with `Retry-After`. (New credentials and the CLI sync at once.)
    static func requireSyncAllowed(_ id: UUID, on transaction: TenantTransaction) async throws {
        let rows = try await transaction.query(
            """
            SELECT c.state, ceil(extract(epoch FROM
                (SELECT max(started_at) FROM crypto_sync_runs r WHERE r.connection_id = c.id)
                    + make_interval(secs => crypto_sync_interval(c.tenant_id)) - now()))::int8
            FROM crypto_connections c WHERE c.id = \(id)
            """)
        guard let row = rows.first else { throw AtriumError.notFound("No such connection.") }
        let (state, wait) = try row.decode((String, Int64?).self)
        guard state == "active" else {
            throw AtriumError(
                status: .conflict, code: "connection_not_syncing", title: "The connection does not sync",
                detail: state == "auth_failed"
                    ? "The exchange refused its key: give new credentials (PUT connections/{id}/credentials), which syncs at once."
                    : "It is paused: the plan includes fewer connections than the tenant has. Upgrade the plan or remove one.")
        }
        if let wait, wait > 0 {
            var problem = AtriumError(
                status: .tooManyRequests, code: "sync_too_soon", title: "Synced recently",
                detail: "The plan syncs a connection at most once per interval; the next sync may start in \(wait) s.")
            problem.headers[.retryAfter] = String(wait)
            throw problem
        }
    }

    func register(_ routes: ModuleRoutes) {
        routes.on(
            .post, "connections/{id}/sync",
            summary: "Sync a connection now (queued; one at a time per connection; at most once per the plan's sync interval)",
            access: CryptoAccess.records, response: SyncQueued.self, status: .accepted
        ) { request in
            let id = try request.uuidParameter("id")
            return try await request.transaction { transaction in
                _ = try await ConnectionStore.table.find(id, on: transaction)
                try await Self.requireSyncAllowed(id, on: transaction)
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
