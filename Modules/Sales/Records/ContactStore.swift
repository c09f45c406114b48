import AtriumCore
import Foundation
import PostgresNIO

/// The SQL of contacts. Every statement runs in the caller's transaction, whose
/// row-level security shows only the tenant's rows the caller may reach.
enum ContactStore: OwnedRecordStore {
    static let table = RecordTable<Contact>(
        "sales_contacts", columns: "id, owner_id, first_name, last_name, email, phone, company_id, tags, external_id, created_at, updated_at",
        noun: "contact", order: .ascending("updated_at", time: \.updatedAt, id: \.id), decode: Contact.init)

    /// What a contact list may be narrowed to.
    struct Filter: Sendable {
        var common: ListFilter
        var tag: String?
        var company: UUID?
    }

    static func list(_ page: PageRequest, _ filter: Filter, on transaction: TenantTransaction) async throws -> Page<Contact> {
        let own: SQL = """
            (\(filter.tag)::text IS NULL OR tags @> ARRAY[\(filter.tag)::text]) AND (\(filter.company)::uuid IS NULL OR company_id = \(filter.company))
            """
        return try await transaction.lastStatement {
            try await table.page(page, where: filter.common.conditions(searching: ["(first_name || ' ' || last_name)", "email"], and: own), on: transaction)
        }
    }

    static func insert(_ contact: ContactFields, owner: UUID, on transaction: TenantTransaction) async throws -> Contact {
        try await transaction.requireVisible(Reference("company_id", table: "sales_companies", id: contact.companyId.value))
        let insert: SQL = """
            INSERT INTO sales_contacts (tenant_id, owner_id, first_name, last_name, email, phone, company_id, tags, external_id)
            VALUES (\(transaction.tenantID), \(owner), \(contact.firstName.value ?? ""), \(contact.lastName.value ?? ""), \(contact.email.value), \(contact.phone.value),
                    \(contact.companyId.value), \(contact.tags.value ?? []), \(contact.externalId.value))
            RETURNING \(unescaped: table.columns)
            """
        return try await transaction.lastStatement { try await table.one(insert, on: transaction) }
    }

    /// Applies a merge patch: a field set changes, `null` clears, absent keeps.
    static func update(_ id: UUID, _ patch: ContactFields, owner: UUID?, on transaction: TenantTransaction) async throws -> Contact {
        try await transaction.requireVisible(Reference("company_id", table: "sales_companies", id: patch.companyId.value))
        let sql: SQL = """
            UPDATE sales_contacts SET
                first_name = CASE WHEN \(patch.firstName.isSet) THEN coalesce(\(patch.firstName.value), '') ELSE first_name END,
                last_name = CASE WHEN \(patch.lastName.isSet) THEN coalesce(\(patch.lastName.value), '') ELSE last_name END,
                email = CASE WHEN \(patch.email.isSet) THEN \(patch.email.value) ELSE email END,
                phone = CASE WHEN \(patch.phone.isSet) THEN \(patch.phone.value) ELSE phone END,
                company_id = CASE WHEN \(patch.companyId.isSet) THEN \(patch.companyId.value)::uuid ELSE company_id END,
                tags = CASE WHEN \(patch.tags.isSet) THEN coalesce(\(patch.tags.value)::text[], '{}') ELSE tags END,
                external_id = CASE WHEN \(patch.externalId.isSet) THEN \(patch.externalId.value) ELSE external_id END,
                owner_id = coalesce(\(owner), owner_id), updated_at = now()
            WHERE id = \(id)
            RETURNING \(unescaped: table.columns)
            """
        return try await transaction.lastStatement { try await table.one(sql, on: transaction) }
    }

    /// A page of the export, in id order after `after`: the columns as CSV fields.
    static func exportPage(after: UUID?, limit: Int, on transaction: TenantTransaction) async throws -> [ContactExport.Row] {
        try await transaction.query(
            """
            SELECT id, coalesce(email, ''), first_name, last_name, coalesce(phone, ''), coalesce(company_id::text, ''),
                   array_to_string(tags, ';'), coalesce(external_id, ''), owner_id, updated_at
            FROM sales_contacts
            WHERE (\(transaction.ownerFilter)::uuid IS NULL OR owner_id = \(transaction.ownerFilter)) AND (\(after)::uuid IS NULL OR id > \(after))
            ORDER BY id LIMIT \(limit)
            """
        ).map { try ContactExport.Row(decoding: $0) }
    }
}
