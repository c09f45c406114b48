import AtriumCore
import Foundation
import HTTPTypes
import PostgresNIO

/// An item of the tenant's catalog; `sku` is its natural key. Everyone in the tenant
/// reads the catalog; its owner or a manager changes an entry.
struct Product: Codable, Sendable, KeysetRecord {
    var id: UUID
    var ownerId: UUID
    var sku: String
    var name: String
    var unitPrice: Int64
    var currency: String
    var createdAt: Date
    var updatedAt: Date

    static let columns = "id, owner_id, sku, name, unit_price, currency, created_at, updated_at"

    init(_ row: PostgresRow) throws {
        (id, ownerId, sku, name, unitPrice, currency, createdAt, updatedAt) = try row.decode((UUID, UUID, String, String, Int64, String, Date, Date).self)
    }
}

struct ProductInput: Codable, Sendable {
    var sku: String?
    var name: String?
    /// Minor units of `currency`.
    var unitPrice: Int64?
    var currency: String?
    var ownerId: UUID?

    func validated(creating: Bool) throws -> ProductInput {
        var errors: [AtriumError.FieldError] = []
        if creating {
            for (field, value) in [("sku", sku), ("name", name), ("currency", currency)] where (value ?? "").isEmpty {
                errors.append(.init(field: field, message: "is required"))
            }
            if unitPrice == nil { errors.append(.init(field: "unit_price", message: "is required")) }
        }
        if let sku, sku.isEmpty || InputDomain.length(sku) > 100 { errors.append(.init(field: "sku", message: "must be 1 to 100 characters")) }
        if let unitPrice, !(0...InputDomain.maximumAmount).contains(unitPrice) {
            errors.append(.init(field: "unit_price", message: "must be from 0 to \(InputDomain.maximumAmount) minor units"))
        }
        if let currency, !currency.isEmpty, !Validation.isCurrency(currency) { errors.append(.init(field: "currency", message: "must be an ISO 4217 code")) }
        if !errors.isEmpty { throw AtriumError.validation(errors) }
        return self
    }
}

struct ProductList: Codable, Sendable {
    var data: [Product]
    var nextCursor: String?
}

struct ProductRoutes {
    func register(_ routes: ModuleRoutes) {
        routes.on(.get, "products", summary: "The tenant's product catalog", access: SalesAccess.records,
                  query: QueryParameter.pagination + [.init("q", "Search in SKU and name."), .init("updated_since", "Changed at or after this RFC 3339 time.")],
                  response: ProductList.self) { request in
            let filter = try ListFilter(request)
            return try await request.transaction { transaction in
                let rows = try await transaction.connection.query(
                    """
                    SELECT \(unescaped: Product.columns) FROM sales_products
                    WHERE (\(filter.updatedSince)::timestamptz IS NULL OR updated_at >= \(filter.updatedSince))
                      AND (\(filter.search)::text IS NULL OR sku ILIKE \(filter.pattern) OR name ILIKE \(filter.pattern))
                      AND (\(filter.afterID)::uuid IS NULL OR (updated_at, id) > (
                          coalesce((SELECT updated_at FROM sales_products WHERE id = \(filter.afterID)), \(filter.afterTime)), \(filter.afterID)))
                    ORDER BY updated_at, id LIMIT \(filter.limit + 1)
                    """, logger: transaction.logger
                ).collect()
                let products = try rows.map(Product.init)
                let page = filter.page(products)
                return ProductList(data: page.rows, nextCursor: page.next)
            }
        }

        OwnedRecordRoutes.create(
            routes, "products", summary: "Add a product", body: ProductInput.self, response: Product.self,
            validate: { try $0.validated(creating: true) }, owner: \.ownerId
        ) { transaction, product, owner in
            let row = try await transaction.connection.query(
                """
                INSERT INTO sales_products (tenant_id, owner_id, sku, name, unit_price, currency)
                VALUES (\(transaction.tenantID), \(owner), \(product.sku ?? ""), \(product.name ?? ""), \(product.unitPrice ?? 0), \(product.currency ?? ""))
                RETURNING \(unescaped: Product.columns)
                """, logger: transaction.logger
            ).collect().first
            guard let row else { throw AtriumError.internalError() }
            return try Product(row)
        }

        routes.on(.get, "products/{id}", summary: "One product", access: SalesAccess.records, response: Product.self) { request in
            let id = try request.uuidParameter("id")
            return try await request.transaction { transaction in
                let row = try await transaction.connection.query("SELECT \(unescaped: Product.columns) FROM sales_products WHERE id = \(id)", logger: transaction.logger)
                    .collect().first
                guard let row else { throw AtriumError.notFound("No such product.") }
                return try Product(row)
            }
        }

        routes.on(.patch, "products/{id}", summary: "Change a product you own (any, as a manager)", access: SalesAccess.records, body: ProductInput.self,
                  response: Product.self) { request, input in
            let scope = try request.requireOwnership()
            let id = try request.uuidParameter("id")
            let patch = try input.validated(creating: false)
            let owner = try patch.ownerId.map { try scope.owner(for: $0, assignPermission: SalesPermission.assign) }
            return try await request.transaction { transaction in
                let row = try await transaction.connection.query(
                    """
                    UPDATE sales_products SET sku = coalesce(\(patch.sku), sku), name = coalesce(\(patch.name), name),
                        unit_price = coalesce(\(patch.unitPrice), unit_price), currency = coalesce(\(patch.currency), currency),
                        owner_id = coalesce(\(owner), owner_id), updated_at = now()
                    WHERE id = \(id) AND (\(scope.ownerFilter)::uuid IS NULL OR owner_id = \(scope.ownerFilter))
                    RETURNING \(unescaped: Product.columns)
                    """, logger: transaction.logger
                ).collect().first
                guard let row else { throw AtriumError.notFound("No such product you may change.") }
                return try Product(row)
            }
        }

        OwnedRecordRoutes.delete(routes, "products/{id}", table: "sales_products", noun: "product you may change", summary: "Remove a product no deal uses")
    }
}
