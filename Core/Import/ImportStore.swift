import Foundation
import PostgresNIO

/// The SQL of imports as the API reads and moves them, run in the caller's transaction.
extension BulkImport {
    /// The mount path with the parent's id in place of its parameter.
    func mountedPath(parent: UUID?) -> String {
        guard let name = self.parent?.parameter, let parent else { return path }
        return path.replacingOccurrences(of: "{\(name)}", with: parent.uuidString.lowercased())
    }

    /// The upload is complete: the import waits for its job, enqueued in the same transaction.
    func queue(_ id: UUID, bytes: Int64, on transaction: TenantTransaction) async throws {
        try await transaction.connection.query("UPDATE imports SET state = 'queued', bytes = \(bytes) WHERE id = \(id)", logger: transaction.logger)
        try await transaction.enqueue(jobKind, payload: JobPayload(importId: id))
    }

    /// The upload broke off: the import fails and its stored chunks go.
    static func abandonUpload(_ id: UUID, on transaction: TenantTransaction) async throws {
        try await transaction.connection.query(
            "UPDATE imports SET state = 'failed', failure = 'the upload did not complete', finished_at = now() WHERE id = \(id)",
            logger: transaction.logger)
        try await transaction.connection.query("DELETE FROM import_chunks WHERE import_id = \(id)", logger: transaction.logger)
    }

    /// Every rejected row of an import: line and reason.
    static func errors(of id: UUID, on transaction: TenantTransaction) async throws -> [(Int64, String)] {
        try await transaction.connection.query(
            "SELECT line, reason FROM import_errors WHERE import_id = \(id) ORDER BY line, reason", logger: transaction.logger
        ).collect().map { try $0.decode((Int64, String).self) }
    }

    /// One import (`id`) or the newest `limit` of these entities (of `parent` only, when
    /// the imports have one), each with its first ten rejected rows, in one statement
    /// however many there are.
    func statuses(
        id: UUID?, parent: UUID?, limit: Int, tenant slug: String, on transaction: TenantTransaction
    ) async throws -> [ImportStatus] {
        let rows = try await transaction.connection.query(
            """
            SELECT i.id, i.entity, i.format, i.mode, i.error_policy, i.state, i.bytes, i.rows_read, i.rows_written, i.rows_unchanged,
                   i.rows_rejected, i.failure, i.created_at, i.finished_at, coalesce(e.errors, '[]')::text
            FROM imports i
            LEFT JOIN LATERAL (
                SELECT json_agg(json_build_object('line', x.line, 'reason', x.reason) ORDER BY x.line) AS errors
                FROM (SELECT line, reason FROM import_errors WHERE import_id = i.id ORDER BY line LIMIT 10) x
            ) e ON true
            WHERE i.module = \(moduleID) AND i.entity = ANY(\(entities.map(\.name))) AND i.parent_id IS NOT DISTINCT FROM \(parent)
              AND (\(id)::uuid IS NULL OR i.id = \(id)) AND (\(transaction.ownerFilter)::uuid IS NULL OR i.owner_id = \(transaction.ownerFilter))
            ORDER BY i.created_at DESC LIMIT \(limit)
            """, logger: transaction.logger
        ).collect()
        return try rows.map { row in
            let (id, entity, format, mode, policy, state, bytes, read, written, unchanged, rejected, failure, created, finished, errors) = try row.decode(
                (UUID, String, String, String, String, String, Int64, Int64, Int64, Int64, Int64, String?, Date, Date?, String).self)
            return ImportStatus(
                id: id, entity: entity, format: format, mode: mode, errorPolicy: policy, state: state, bytes: bytes, rowsRead: read, rowsWritten: written,
                rowsUnchanged: unchanged, rowsRejected: rejected, failure: failure,
                firstErrors: try JSONDecoder().decode([ImportRowError].self, from: Data(errors.utf8)),
                errorsUrl: "/v1/tenants/\(slug)/\(moduleID)/\(mountedPath(parent: parent))/\(id.uuidString.lowercased())/errors", createdAt: created,
                finishedAt: finished)
        }
    }
}
