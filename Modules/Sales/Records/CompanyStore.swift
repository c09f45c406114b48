import AtriumCore
import Foundation
import PostgresNIO

/// The SQL of companies, run in the caller's row-level-secured transaction.
enum CompanyStore: OwnedRecordStore {
    static let table = RecordTable<Company>(
        "sales_companies", columns: "id, owner_id, name, domain, external_id, created_at, updated_at", noun: "company",
        order: .ascending("updated_at", time: \.updatedAt, id: \.id), decode: Company.init)

    static func list(_ page: PageRequest, _ filter: ListFilter, on transaction: TenantTransaction) async throws -> Page<Company> {
        try await transaction.lastStatement { try await table.page(page, where: filter.conditions(searching: ["name", "domain"]), on: transaction) }
    }

    static func insert(_ company: CompanyFields, owner: UUID, on transaction: TenantTransaction) async throws -> Company {
        let sql: SQL = """
            INSERT INTO sales_companies (tenant_id, owner_id, name, domain, external_id)
            VALUES (\(transaction.tenantID), \(owner), \(company.name.value ?? ""), \(company.domain.value), \(company.externalId.value))
            RETURNING \(unescaped: table.columns)
            """
        return try await transaction.lastStatement { try await table.one(sql, on: transaction) }
    }

    /// Applies a merge patch: a field set changes, `null` clears, absent keeps.
    static func update(_ id: UUID, _ patch: CompanyFields, owner: UUID?, on transaction: TenantTransaction) async throws -> Company {
        let sql: SQL = """
            UPDATE sales_companies SET name = coalesce(\(patch.name.value), name),
                domain = CASE WHEN \(patch.domain.isSet) THEN \(patch.domain.value) ELSE domain END,
                external_id = CASE WHEN \(patch.externalId.isSet) THEN \(patch.externalId.value) ELSE external_id END,
                owner_id = coalesce(\(owner), owner_id), updated_at = now()
            WHERE id = \(id)
            RETURNING \(unescaped: table.columns)
            """
        return try await transaction.lastStatement { try await table.one(sql, on: transaction) }
    }
}
