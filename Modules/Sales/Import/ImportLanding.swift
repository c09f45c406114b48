import AtriumCore
import Foundation
import Logging
import PostgresNIO

/// The set-based half of an import: rows staged by COPY are checked against each
/// other and the table, then land with one `INSERT … ON CONFLICT` per import.
///
/// Landing rules: a natural key repeated in the file keeps its last row (the earlier
/// ones are rejected, naming the later line); a rep cannot update a record someone else
/// owns (rejected); `insert` mode rejects keys that exist; `upsert` updates only rows
/// whose values differ, so re-importing a file changes nothing. Imported rows belong to
/// the importer; updated rows keep their owner.
struct ImportLanding {
    let entity: ImportEntity
    let tenantID: UUID
    let ownerID: UUID
    let seesAll: Bool
    let importID: UUID
    let logger: Logger

    var table: String {
        switch entity.name {
        case .contacts: "sales_contacts"
        case .companies: "sales_companies"
        case .products: "sales_products"
        case .deals: "sales_deals"
        }
    }

    /// Moves the rows that cannot land into `sales_import_rejects` and out of the stage;
    /// returns how many.
    func reject(mode: ImportSettings.Mode, on connection: PostgresConnection) async throws -> Int64 {
        let key = entity.key
        try await connection.query("CREATE TEMP TABLE sales_import_rejects (line bigint NOT NULL, reason text NOT NULL) ON COMMIT DROP", logger: logger)
        try await connection.query(
            """
            INSERT INTO sales_import_rejects (line, reason)
            SELECT line, \(key + " repeats on line ") || later FROM (
                SELECT line, max(line) OVER (PARTITION BY \(unescaped: key)) AS later FROM sales_import_stage
            ) repeated WHERE line < later
            """, logger: logger)
        if !seesAll {
            try await connection.query(
                """
                INSERT INTO sales_import_rejects (line, reason)
                SELECT s.line, \("a record with this \(key) belongs to another user") FROM sales_import_stage s
                JOIN \(unescaped: table) t ON t.\(unescaped: key) = s.\(unescaped: key)
                WHERE t.owner_id <> \(ownerID)
                """, logger: logger)
        }
        if mode == .insert {
            try await connection.query(
                """
                INSERT INTO sales_import_rejects (line, reason)
                SELECT s.line, \("a record with this \(key) exists (mode insert)") FROM sales_import_stage s
                JOIN \(unescaped: table) t ON t.\(unescaped: key) = s.\(unescaped: key)
                """, logger: logger)
        }
        let removed = try await connection.query(
            """
            WITH removed AS (DELETE FROM sales_import_stage WHERE line IN (SELECT line FROM sales_import_rejects) RETURNING 1)
            SELECT count(*)::int8 FROM removed
            """, logger: logger
        ).collect().first?.decode(Int64.self) ?? 0
        return removed
    }

    /// Keeps the landing's rejections with the import (skip_invalid).
    func keepRejections(on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            INSERT INTO sales_import_errors (tenant_id, import_id, line, reason)
            SELECT \(tenantID), \(importID), line, reason FROM sales_import_rejects ON CONFLICT DO NOTHING
            """, logger: logger)
    }

    /// Lands the staged rows; returns how many were inserted or changed.
    func land(mode: ImportSettings.Mode, on connection: PostgresConnection) async throws -> Int64 {
        let upsert = mode == .upsert
        let sql: PostgresQuery
        switch entity.name {
        case .contacts:
            sql = """
                WITH written AS (
                    INSERT INTO sales_contacts AS c (tenant_id, owner_id, email, first_name, last_name, phone, company_id, tags, external_id)
                    SELECT \(tenantID), \(ownerID), s.email, coalesce(s.first_name, ''), coalesce(s.last_name, ''), s.phone, co.id,
                           coalesce(string_to_array(s.tags, ';'), '{}'), s.external_id
                    FROM sales_import_stage s
                    LEFT JOIN sales_companies co ON co.domain = s.company_domain AND (\(seesAll) OR co.owner_id = \(ownerID))
                    ON CONFLICT (tenant_id, email) DO UPDATE SET
                        first_name = excluded.first_name, last_name = excluded.last_name, phone = excluded.phone,
                        company_id = excluded.company_id, tags = excluded.tags, external_id = excluded.external_id, updated_at = now()
                    WHERE \(upsert) AND (c.first_name, c.last_name, c.phone, c.company_id, c.tags, c.external_id)
                        IS DISTINCT FROM (excluded.first_name, excluded.last_name, excluded.phone, excluded.company_id, excluded.tags, excluded.external_id)
                    RETURNING 1
                ) SELECT count(*)::int8 FROM written
                """
        case .companies:
            sql = """
                WITH written AS (
                    INSERT INTO sales_companies AS c (tenant_id, owner_id, domain, name, external_id)
                    SELECT \(tenantID), \(ownerID), s.domain, s.name, s.external_id FROM sales_import_stage s
                    ON CONFLICT (tenant_id, domain) DO UPDATE SET name = excluded.name, external_id = excluded.external_id, updated_at = now()
                    WHERE \(upsert) AND (c.name, c.external_id) IS DISTINCT FROM (excluded.name, excluded.external_id)
                    RETURNING 1
                ) SELECT count(*)::int8 FROM written
                """
        case .products:
            sql = """
                WITH written AS (
                    INSERT INTO sales_products AS p (tenant_id, owner_id, sku, name, unit_price, currency)
                    SELECT \(tenantID), \(ownerID), s.sku, s.name, s.unit_price::int8, s.currency FROM sales_import_stage s
                    ON CONFLICT (tenant_id, sku) DO UPDATE SET name = excluded.name, unit_price = excluded.unit_price,
                        currency = excluded.currency, updated_at = now()
                    WHERE \(upsert) AND (p.name, p.unit_price, p.currency) IS DISTINCT FROM (excluded.name, excluded.unit_price, excluded.currency)
                    RETURNING 1
                ) SELECT count(*)::int8 FROM written
                """
        case .deals:
            sql = """
                WITH written AS (
                    INSERT INTO sales_deals AS d (tenant_id, owner_id, external_id, title, stage, amount, currency, status, expected_close, contact_id, company_id)
                    SELECT \(tenantID), \(ownerID), s.external_id, s.title, s.stage, s.amount::int8, s.currency, s.status, s.expected_close::date, ct.id, co.id
                    FROM sales_import_stage s
                    LEFT JOIN sales_contacts ct ON ct.email = s.contact_email AND (\(seesAll) OR ct.owner_id = \(ownerID))
                    LEFT JOIN sales_companies co ON co.domain = s.company_domain AND (\(seesAll) OR co.owner_id = \(ownerID))
                    ON CONFLICT (tenant_id, external_id) DO UPDATE SET title = excluded.title, stage = excluded.stage, amount = excluded.amount,
                        currency = excluded.currency, status = excluded.status, expected_close = excluded.expected_close,
                        contact_id = excluded.contact_id, company_id = excluded.company_id, updated_at = now()
                    WHERE \(upsert) AND (d.title, d.stage, d.amount, d.currency, d.status, d.expected_close, d.contact_id, d.company_id)
                        IS DISTINCT FROM (excluded.title, excluded.stage, excluded.amount, excluded.currency, excluded.status, excluded.expected_close,
                                          excluded.contact_id, excluded.company_id)
                    RETURNING 1
                ) SELECT count(*)::int8 FROM written
                """
        }
        return try await connection.query(sql, logger: logger).collect().first?.decode(Int64.self) ?? 0
    }
}
