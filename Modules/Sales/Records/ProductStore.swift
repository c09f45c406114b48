import AtriumCore
import Foundation
import PostgresNIO

/// The SQL of the product catalog. Everyone in the tenant reads every product (the
/// table's policies limit only writes to the owner), so lists take no owner filter.
enum ProductStore: OwnedRecordStore {
    static let table = RecordTable<Product>(
        "sales_products", columns: "id, owner_id, sku, name, unit_price, currency, created_at, updated_at", noun: "product", ownedBy: nil,
        order: .ascending("updated_at", time: \.updatedAt, id: \.id), decode: Product.init)

    static func list(_ page: PageRequest, _ filter: ListFilter, on transaction: TenantTransaction) async throws -> Page<Product> {
        try await transaction.lastStatement { try await table.page(page, where: filter.conditions(searching: ["sku", "name"]), on: transaction) }
    }

    static func insert(_ product: ProductFields, owner: UUID, on transaction: TenantTransaction) async throws -> Product {
        let sql: SQL = """
            INSERT INTO sales_products (tenant_id, owner_id, sku, name, unit_price, currency)
            VALUES (\(transaction.tenantID), \(owner), \(product.sku.value ?? ""), \(product.name.value ?? ""), \(product.unitPrice.value ?? 0), \(product.currency.value ?? ""))
            RETURNING \(unescaped: table.columns)
            """
        return try await transaction.lastStatement { try await table.one(sql, on: transaction) }
    }

    /// Applies a merge patch; 404 for a product the caller may read but not change.
    static func update(_ id: UUID, _ patch: ProductFields, owner: UUID?, on transaction: TenantTransaction) async throws -> Product {
        let sql: SQL = """
            UPDATE sales_products SET sku = coalesce(\(patch.sku.value), sku), name = coalesce(\(patch.name.value), name),
                unit_price = coalesce(\(patch.unitPrice.value), unit_price), currency = coalesce(\(patch.currency.value), currency),
                owner_id = coalesce(\(owner), owner_id), updated_at = now()
            WHERE id = \(id)
            RETURNING \(unescaped: table.columns)
            """
        return try await transaction.lastStatement { try await table.one(sql, on: transaction) }
    }
}
