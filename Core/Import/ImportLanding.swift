import Foundation
import Logging
import PostgresNIO

/// The set-based checks before an entity's landing statement: staged rows are checked
/// against each other and the target table, and those that cannot land leave the stage.
///
/// Rules: a natural key repeated in the file keeps its last row (the earlier ones are
/// rejected, naming the later line); an importer who sees only their own records cannot
/// update another owner's (rejected); `insert` mode rejects keys that exist.
struct ImportRejections {
    let entity: ImportEntity
    let tenantID: UUID
    let importID: UUID
    let ownerID: UUID
    let seesAll: Bool
    /// The parent's column and id (`ImportParent`): keys match within it.
    var parent: (column: String, id: UUID)? = nil
    let logger: Logger

    /// Moves the rows that cannot land into `atrium_import_rejects` and out of the
    /// stage; returns how many.
    func reject(mode: ImportSettings.Mode, on connection: PostgresConnection) async throws -> Int64 {
        let (keys, table, stage) = (entity.keys, entity.table, ImportLanding.stage)
        for name in keys + entity.keyColumns + [table] + (parent.map { [$0.column] } ?? []) where !TenantTransaction.isIdentifier(name) {
            throw ConfigurationError("import entity \(entity.name): '\(name)' is not a plain identifier")
        }
        let key = keys.joined(separator: ", ")
        // The stage holds text; the table's key columns are compared as text (a no-op for text columns, which keeps their index).
        let matches = zip(keys, entity.keyColumns).map { "t.\($1)::text = s.\($0)" }.joined(separator: " AND ")
        // Within the import's parent only (one portfolio's entries), when it has one.
        let (parentColumn, parentID) = (parent?.column ?? "tenant_id", parent?.id)
        try await connection.query("CREATE TEMP TABLE atrium_import_rejects (line bigint NOT NULL, reason text NOT NULL) ON COMMIT DROP", logger: logger)
        try await connection.query(
            """
            INSERT INTO atrium_import_rejects (line, reason)
            SELECT line, \(key + " repeats on line ") || later FROM (
                SELECT line, max(line) OVER (PARTITION BY \(unescaped: key)) AS later FROM \(unescaped: stage)
            ) repeated WHERE line < later
            """, logger: logger)
        for reference in entity.references {
            for name in [reference.field, reference.table, reference.column] where !TenantTransaction.isIdentifier(name) {
                throw ConfigurationError("import entity \(entity.name): '\(name)' is not a plain identifier")
            }
            try await connection.query(
                """
                INSERT INTO atrium_import_rejects (line, reason)
                SELECT s.line, \("\(reference.field) names no \(reference.noun) of this tenant: ") || s.\(unescaped: reference.field) FROM \(unescaped: stage) s
                WHERE s.\(unescaped: reference.field) IS NOT NULL
                  AND NOT EXISTS (SELECT 1 FROM \(unescaped: reference.table) t WHERE t.\(unescaped: reference.column)::text = s.\(unescaped: reference.field))
                """, logger: logger)
        }
        if entity.owned, !seesAll {
            try await connection.query(
                """
                INSERT INTO atrium_import_rejects (line, reason)
                SELECT s.line, \("a record with this \(key) belongs to another user") FROM \(unescaped: stage) s
                JOIN \(unescaped: table) t ON \(unescaped: matches) AND (\(parentID)::uuid IS NULL OR t.\(unescaped: parentColumn) = \(parentID))
                WHERE t.owner_id <> \(ownerID)
                """, logger: logger)
        }
        if mode == .insert {
            try await connection.query(
                """
                INSERT INTO atrium_import_rejects (line, reason)
                SELECT s.line, \("a record with this \(key) exists (mode insert)") FROM \(unescaped: stage) s
                JOIN \(unescaped: table) t ON \(unescaped: matches) AND (\(parentID)::uuid IS NULL OR t.\(unescaped: parentColumn) = \(parentID))
                """, logger: logger)
        }
        return try await connection.query(
            """
            WITH removed AS (DELETE FROM \(unescaped: stage) WHERE line IN (SELECT line FROM atrium_import_rejects) RETURNING 1)
            SELECT count(*)::int8 FROM removed
            """, logger: logger
        ).collect().first?.decode(Int64.self) ?? 0
    }

    /// Keeps the landing's rejections with the import (skip_invalid).
    func keepRejections(on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            INSERT INTO import_errors (tenant_id, import_id, line, reason)
            SELECT \(tenantID), \(importID), line, reason FROM atrium_import_rejects ON CONFLICT DO NOTHING
            """, logger: logger)
    }
}
