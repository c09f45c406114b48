import AtriumCore
import Foundation
import PostgresNIO

/// The SQL of deals and their line items, run in the caller's row-level-secured
/// transaction. A line item belongs to its deal's owner.
enum DealStore: OwnedRecordStore {
    static let table = RecordTable<Deal>(
        "sales_deals",
        columns: """
            id, owner_id, title, company_id, contact_id, stage, amount, currency, to_char(expected_close, 'YYYY-MM-DD'), status, external_id, \
            created_at, updated_at
            """,
        noun: "deal", order: .ascending("updated_at", time: \.updatedAt, id: \.id), decode: Deal.init)
    static let items = RecordTable<DealItem>("sales_deal_items", columns: "id, product_id, quantity, unit_price", noun: "line item", decode: DealItem.init)

    static func list(_ page: PageRequest, _ filter: ListFilter, stage: String?, status: String?, on transaction: TenantTransaction) async throws -> Page<Deal> {
        let own: SQL = "(\(stage)::text IS NULL OR stage = \(stage)) AND (\(status)::text IS NULL OR status = \(status))"
        return try await transaction.lastStatement { try await table.page(page, where: filter.conditions(searching: ["title"], and: own), on: transaction) }
    }

    /// Deals of `status` per stage and currency, summed in numeric: many deals at the
    /// largest amount pass what an int8 holds.
    static func pipeline(status: String, on transaction: TenantTransaction) async throws -> Pipeline {
        let rows = try await transaction.query(
            """
            SELECT stage, currency, count(*)::int8, sum(amount)::text FROM sales_deals
            WHERE status = \(status) AND (\(transaction.ownerFilter)::uuid IS NULL OR owner_id = \(transaction.ownerFilter))
            GROUP BY tenant_id, stage, currency ORDER BY stage, currency
            """)
        var stages: [String: Pipeline.Stage] = [:]
        for row in rows {
            let (stage, currency, count, sum) = try row.decode((String, String, Int64, String).self)
            stages[stage, default: .init(stage: stage, count: 0, totals: [])].count += count
            stages[stage]?.totals.append(.init(currency: currency, amount: Decimal(string: sum) ?? 0))
        }
        return Pipeline(status: status, stages: stages.values.sorted { $0.stage < $1.stage })
    }

    static func insert(_ deal: DealFields, owner: UUID, on transaction: TenantTransaction) async throws -> Deal {
        try await transaction.requireVisible(
            Reference("company_id", table: "sales_companies", id: deal.companyId.value), Reference("contact_id", table: "sales_contacts", id: deal.contactId.value))
        let sql: SQL = """
            INSERT INTO sales_deals (tenant_id, owner_id, title, company_id, contact_id, stage, amount, currency, expected_close, status, external_id)
            VALUES (\(transaction.tenantID), \(owner), \(deal.title.value ?? ""), \(deal.companyId.value), \(deal.contactId.value), \(deal.stage.value ?? "lead"),
                    \(deal.amount.value ?? 0), \(deal.currency.value ?? "USD"), \(deal.expectedClose.value)::date, \(deal.status.value ?? "open"), \(deal.externalId.value))
            RETURNING \(unescaped: table.columns)
            """
        return try await transaction.lastStatement { try await table.one(sql, on: transaction) }
    }

    /// Applies a merge patch. Line items follow the deal to a new owner, and a new stage
    /// is recorded as a `stage_change` activity, in the same transaction.
    static func update(_ id: UUID, _ patch: DealFields, owner: UUID?, on transaction: TenantTransaction) async throws -> Deal {
        let before = try await table.find(id, on: transaction, forUpdate: true)
        try await transaction.requireVisible(
            Reference("company_id", table: "sales_companies", id: patch.companyId.value), Reference("contact_id", table: "sales_contacts", id: patch.contactId.value))
        let deal = try await table.one(
            """
            UPDATE sales_deals SET title = coalesce(\(patch.title.value), title),
                company_id = CASE WHEN \(patch.companyId.isSet) THEN \(patch.companyId.value)::uuid ELSE company_id END,
                contact_id = CASE WHEN \(patch.contactId.isSet) THEN \(patch.contactId.value)::uuid ELSE contact_id END,
                stage = coalesce(\(patch.stage.value), stage), amount = coalesce(\(patch.amount.value), amount),
                currency = coalesce(\(patch.currency.value), currency),
                expected_close = CASE WHEN \(patch.expectedClose.isSet) THEN \(patch.expectedClose.value)::date ELSE expected_close END,
                status = coalesce(\(patch.status.value), status),
                external_id = CASE WHEN \(patch.externalId.isSet) THEN \(patch.externalId.value) ELSE external_id END,
                owner_id = coalesce(\(owner), owner_id), updated_at = now()
            WHERE id = \(id)
            RETURNING \(unescaped: table.columns)
            """, on: transaction)
        if deal.ownerId != before.ownerId {
            try await transaction.query(
                "UPDATE sales_deal_items SET owner_id = \(deal.ownerId) WHERE deal_id = \(deal.id)")
        }
        if deal.stage != before.stage {
            try await ActivityStore.recordStageChange(of: deal, from: before.stage, on: transaction)
        }
        return deal
    }

    static func items(of deal: UUID, on transaction: TenantTransaction) async throws -> [DealItem] {
        _ = try await table.find(deal, on: transaction)
        return try await transaction.lastStatement {
            try await items.all("SELECT \(unescaped: items.columns) FROM sales_deal_items WHERE deal_id = \(deal) ORDER BY id", on: transaction)
        }
    }

    /// Adds a product at its catalog price unless `unitPrice` is given; 422 naming
    /// `product_id` for a product this tenant does not have.
    static func addItem(_ input: DealItemInput, to id: UUID, on transaction: TenantTransaction) async throws -> DealItem {
        let deal = try await table.find(id, on: transaction)
        try await transaction.requireVisible(Reference("product_id", table: "sales_products", id: input.productId))
        let sql: SQL = """
            INSERT INTO sales_deal_items (tenant_id, deal_id, owner_id, product_id, quantity, unit_price)
            SELECT \(transaction.tenantID), \(id), \(deal.ownerId), p.id, \(input.quantity), coalesce(\(input.unitPrice), p.unit_price)
            FROM sales_products p WHERE p.id = \(input.productId)
            RETURNING \(unescaped: items.columns)
            """
        return try await transaction.lastStatement { try await items.one(sql, on: transaction) }
    }

    static func updateItem(_ item: UUID, of deal: UUID, _ patch: DealItemPatch, on transaction: TenantTransaction) async throws -> DealItem {
        _ = try await table.find(deal, on: transaction)
        let sql: SQL = """
            UPDATE sales_deal_items SET quantity = coalesce(\(patch.quantity.value), quantity), unit_price = coalesce(\(patch.unitPrice.value), unit_price)
            WHERE id = \(item) AND deal_id = \(deal) RETURNING \(unescaped: items.columns)
            """
        return try await transaction.lastStatement { try await items.one(sql, on: transaction) }
    }

    static func removeItem(_ item: UUID, of deal: UUID, on transaction: TenantTransaction) async throws {
        _ = try await table.find(deal, on: transaction)
        _ = try await transaction.lastStatement {
            try await items.one("DELETE FROM sales_deal_items WHERE id = \(item) AND deal_id = \(deal) RETURNING \(unescaped: items.columns)", on: transaction)
        }
    }
}
