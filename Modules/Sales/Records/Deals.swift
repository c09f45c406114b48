import AtriumCore
import Foundation
import HTTPTypes
import PostgresNIO

/// An opportunity moving through the pipeline. Moving it to another stage records a
/// `stage_change` activity in the same transaction.
struct Deal: Codable, Sendable, KeysetRecord {
    var id: UUID
    var ownerId: UUID
    var title: String
    var companyId: UUID?
    var contactId: UUID?
    var stage: String
    /// Minor units of `currency`.
    var amount: Int64
    var currency: String
    var expectedClose: String?
    var status: String
    var externalId: String?
    var createdAt: Date
    var updatedAt: Date

    static let columns = """
        id, owner_id, title, company_id, contact_id, stage, amount, currency, to_char(expected_close, 'YYYY-MM-DD'), status, external_id, created_at, updated_at
        """

    init(_ row: PostgresRow) throws {
        (id, ownerId, title, companyId, contactId, stage, amount, currency, expectedClose, status, externalId, createdAt, updatedAt) = try row.decode(
            (UUID, UUID, String, UUID?, UUID?, String, Int64, String, String?, String, String?, Date, Date).self)
    }
}

struct DealInput: Codable, Sendable {
    var title: String?
    var companyId: UUID?
    var contactId: UUID?
    var stage: String?
    var amount: Int64?
    var currency: String?
    /// YYYY-MM-DD.
    var expectedClose: String?
    var status: String?
    var externalId: String?
    var ownerId: UUID?

    func validated(creating: Bool) throws -> DealInput {
        var errors: [AtriumError.FieldError] = []
        if creating, (title ?? "").isEmpty {
            errors.append(.init(field: "title", message: "is required"))
        } else if let title, title.isEmpty || InputDomain.length(title) > 300 {
            errors.append(.init(field: "title", message: "must be 1 to 300 characters"))
        }
        if let stage, stage.range(of: "^[a-z][a-z0-9_]{0,39}\\z", options: .regularExpression) == nil {
            errors.append(.init(field: "stage", message: "is a lowercase name such as qualified or proposal"))
        }
        if let amount, !(0...InputDomain.maximumAmount).contains(amount) {
            errors.append(.init(field: "amount", message: "must be from 0 to \(InputDomain.maximumAmount) minor units"))
        }
        if let currency, !Validation.isCurrency(currency) { errors.append(.init(field: "currency", message: "must be an ISO 4217 code")) }
        if let status, !["open", "won", "lost"].contains(status) { errors.append(.init(field: "status", message: "must be open, won or lost")) }
        if let expectedClose, !InputDomain.isDate(expectedClose) {
            errors.append(.init(field: "expected_close", message: "must be a date, YYYY-MM-DD"))
        }
        if let externalId, let problem = InputDomain.textProblem(externalId, maximum: 200) {
            errors.append(.init(field: "external_id", message: problem))
        }
        if !errors.isEmpty { throw AtriumError.validation(errors) }
        return self
    }
}

/// A PATCH of a deal (JSON Merge Patch): absent keeps, `null` clears the fields that
/// may be empty (company, contact, expected close, external id).
struct DealPatch: Codable, Sendable {
    var title: Patch<String>
    var companyId: Patch<UUID>
    var contactId: Patch<UUID>
    var stage: Patch<String>
    var amount: Patch<Int64>
    var currency: Patch<String>
    var expectedClose: Patch<String>
    var status: Patch<String>
    var externalId: Patch<String>
    var ownerId: Patch<UUID>

    func validated() throws -> DealPatch {
        let required: [(String, Bool)] = [
            ("title", title == .clear), ("stage", stage == .clear), ("amount", amount == .clear), ("currency", currency == .clear),
            ("status", status == .clear), ("owner_id", ownerId == .clear),
        ]
        let cleared = required.filter(\.1).map { AtriumError.FieldError(field: $0.0, message: "cannot be cleared (null)") }
        if !cleared.isEmpty { throw AtriumError.validation(cleared) }
        // The values given are checked exactly as a create's are.
        _ = try DealInput(
            title: title.value, companyId: companyId.value, contactId: contactId.value, stage: stage.value, amount: amount.value,
            currency: currency.value, expectedClose: expectedClose.value, status: status.value, externalId: externalId.value, ownerId: ownerId.value
        ).validated(creating: false)
        return self
    }
}

struct DealList: Codable, Sendable {
    var data: [Deal]
    var nextCursor: String?
}

/// Deals per stage, with counts and totals per currency (amounts never mix currencies).
struct Pipeline: Codable, Sendable {
    struct Total: Codable, Sendable {
        var currency: String
        /// Exact, in minor units: a sum of many amounts can pass what an Int64 holds.
        var amount: Decimal
    }
    struct Stage: Codable, Sendable {
        var stage: String
        var count: Int64
        var totals: [Total]
    }
    var status: String
    var stages: [Stage]
}

struct DealItem: Codable, Sendable {
    var id: UUID
    var productId: UUID
    var quantity: Int32
    var unitPrice: Int64
}

struct DealItemInput: Codable, Sendable {
    var productId: UUID
    var quantity: Int32
    /// Defaults to the product's price.
    var unitPrice: Int64?
}

struct DealItemPatch: Codable, Sendable {
    var quantity: Int32?
    var unitPrice: Int64?
}

struct DealItemList: Codable, Sendable {
    var data: [DealItem]
}

struct DealRoutes {
    func register(_ routes: ModuleRoutes) {
        routes.on(.get, "deals", summary: "List deals you may see", access: SalesAccess.records,
                  query: QueryParameter.pagination + [
                    .init("owner", "Only this owner's deals."), .init("stage", "Only deals in this stage."), .init("status", "open, won or lost."),
                    .init("updated_since", "Changed at or after this RFC 3339 time."), .init("q", "Search in titles."),
                  ], response: DealList.self) { request in
            let scope = try request.requireOwnership()
            let filter = try ListFilter(request)
            let (stage, status) = (request.query("stage"), request.query("status"))
            return try await request.transaction { transaction in
                let rows = try await transaction.connection.query(
                    """
                    SELECT \(unescaped: Deal.columns) FROM sales_deals
                    WHERE (\(scope.ownerFilter)::uuid IS NULL OR owner_id = \(scope.ownerFilter))
                      AND (\(filter.owner)::uuid IS NULL OR owner_id = \(filter.owner))
                      AND (\(stage)::text IS NULL OR stage = \(stage)) AND (\(status)::text IS NULL OR status = \(status))
                      AND (\(filter.updatedSince)::timestamptz IS NULL OR updated_at >= \(filter.updatedSince))
                      AND (\(filter.search)::text IS NULL OR title ILIKE \(filter.pattern))
                      AND (\(filter.afterID)::uuid IS NULL OR (updated_at, id) > (
                          coalesce((SELECT updated_at FROM sales_deals WHERE id = \(filter.afterID)), \(filter.afterTime)), \(filter.afterID)))
                    ORDER BY updated_at, id LIMIT \(filter.limit + 1)
                    """, logger: transaction.logger
                ).collect()
                let deals = try rows.map(Deal.init)
                let page = filter.page(deals)
                return DealList(data: page.rows, nextCursor: page.next)
            }
        }

        routes.on(.get, "pipeline", summary: "Deals per stage with counts and totals per currency", access: SalesAccess.records,
                  query: [.init("status", "open (default), won or lost.")], response: Pipeline.self) { request in
            let scope = try request.requireOwnership()
            let status = request.query("status") ?? "open"
            guard ["open", "won", "lost"].contains(status) else { throw AtriumError.validation(field: "status", "must be open, won or lost") }
            return try await request.transaction { transaction in
                let rows = try await transaction.connection.query(
                    """
                    SELECT stage, currency, count(*)::int8, sum(amount)::text FROM sales_deals
                    WHERE status = \(status) AND (\(scope.ownerFilter)::uuid IS NULL OR owner_id = \(scope.ownerFilter))
                    GROUP BY tenant_id, stage, currency ORDER BY stage, currency
                    """, logger: transaction.logger)
                var stages: [String: Pipeline.Stage] = [:]
                // Summed in numeric: many deals at the largest amount pass what an int8 holds.
                for try await (stage, currency, count, sum) in rows.decode((String, String, Int64, String).self) {
                    let amount = Decimal(string: sum) ?? 0
                    stages[stage, default: .init(stage: stage, count: 0, totals: [])].count += count
                    stages[stage]?.totals.append(.init(currency: currency, amount: amount))
                }
                return Pipeline(status: status, stages: stages.values.sorted { $0.stage < $1.stage })
            }
        }

        OwnedRecordRoutes.create(
            routes, "deals", summary: "Create a deal", body: DealInput.self, response: Deal.self, validate: { try $0.validated(creating: true) },
            owner: \.ownerId
        ) { transaction, deal, owner in
            try await transaction.requireVisible(
                Reference("company_id", table: "sales_companies", id: deal.companyId), Reference("contact_id", table: "sales_contacts", id: deal.contactId))
            let row = try await transaction.connection.query(
                """
                INSERT INTO sales_deals (tenant_id, owner_id, title, company_id, contact_id, stage, amount, currency, expected_close, status, external_id)
                VALUES (\(transaction.tenantID), \(owner), \(deal.title ?? ""), \(deal.companyId), \(deal.contactId), \(deal.stage ?? "lead"),
                        \(deal.amount ?? 0), \(deal.currency ?? "USD"), \(deal.expectedClose)::date, \(deal.status ?? "open"), \(deal.externalId))
                RETURNING \(unescaped: Deal.columns)
                """, logger: transaction.logger
            ).collect().first
            guard let row else { throw AtriumError.internalError() }
            return try Deal(row)
        }

        routes.on(.get, "deals/{id}", summary: "One deal", access: SalesAccess.records, response: Deal.self) { request in
            let scope = try request.requireOwnership()
            let id = try request.uuidParameter("id")
            return try await request.transaction { transaction in try await Self.find(id, scope: scope, on: transaction) }
        }

        routes.on(.patch, "deals/{id}", summary: "Change a deal (JSON Merge Patch: null clears a field); a new stage records a stage_change activity",
                  access: SalesAccess.records, body: DealPatch.self, response: Deal.self) { request, input in
            let scope = try request.requireOwnership()
            let id = try request.uuidParameter("id")
            let patch = try input.validated()
            let owner = try patch.ownerId.value.map { try scope.owner(for: $0, assignPermission: SalesPermission.assign) }
            return try await request.transaction { transaction in
                let before = try await Self.find(id, scope: scope, on: transaction, lock: true)
                try await transaction.requireVisible(
                    Reference("company_id", table: "sales_companies", id: patch.companyId.value),
                    Reference("contact_id", table: "sales_contacts", id: patch.contactId.value))
                let row = try await transaction.connection.query(
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
                    RETURNING \(unescaped: Deal.columns)
                    """, logger: transaction.logger
                ).collect().first
                guard let row else { throw AtriumError.notFound("No such deal.") }
                let deal = try Deal(row)
                if deal.ownerId != before.ownerId {
                    // Line items are the deal's: they follow it to its new owner.
                    try await transaction.connection.query(
                        "UPDATE sales_deal_items SET owner_id = \(deal.ownerId) WHERE deal_id = \(deal.id)", logger: transaction.logger)
                }
                if deal.stage != before.stage {
                    try await transaction.connection.query(
                        """
                        INSERT INTO sales_activities (tenant_id, owner_id, kind, subject, deal_id, contact_id)
                        VALUES (\(transaction.tenantID), \(deal.ownerId), 'stage_change', \("Stage \(before.stage) → \(deal.stage)"), \(deal.id), \(deal.contactId))
                        """, logger: transaction.logger)
                }
                return deal
            }
        }

        OwnedRecordRoutes.delete(routes, "deals/{id}", table: "sales_deals", noun: "deal", summary: "Delete a deal with its items and activities")

        routes.on(.get, "deals/{id}/items", summary: "A deal's line items", access: SalesAccess.records, response: DealItemList.self) { request in
            let scope = try request.requireOwnership()
            let id = try request.uuidParameter("id")
            return try await request.transaction { transaction in
                _ = try await Self.find(id, scope: scope, on: transaction)
                let rows = try await transaction.connection.query(
                    "SELECT id, product_id, quantity, unit_price FROM sales_deal_items WHERE deal_id = \(id) ORDER BY id", logger: transaction.logger)
                var items: [DealItem] = []
                for try await (itemID, product, quantity, price) in rows.decode((UUID, UUID, Int32, Int64).self) {
                    items.append(DealItem(id: itemID, productId: product, quantity: quantity, unitPrice: price))
                }
                return DealItemList(data: items)
            }
        }

        routes.on(.post, "deals/{id}/items", summary: "Add a product to a deal", access: SalesAccess.records, body: DealItemInput.self,
                  response: DealItem.self, status: .created) { request, input in
            let scope = try request.requireOwnership()
            let id = try request.uuidParameter("id")
            guard input.quantity > 0 else { throw AtriumError.validation(field: "quantity", "must be positive") }
            if let price = input.unitPrice, !(0...InputDomain.maximumAmount).contains(price) {
                throw AtriumError.validation(field: "unit_price", "must be from 0 to \(InputDomain.maximumAmount) minor units")
            }
            return try await request.transaction { transaction in
                let deal = try await Self.find(id, scope: scope, on: transaction)
                let row = try await transaction.connection.query(
                    """
                    INSERT INTO sales_deal_items (tenant_id, deal_id, owner_id, product_id, quantity, unit_price)
                    SELECT \(transaction.tenantID), \(id), \(deal.ownerId), p.id, \(input.quantity), coalesce(\(input.unitPrice), p.unit_price)
                    FROM sales_products p WHERE p.id = \(input.productId)
                    RETURNING id, product_id, quantity, unit_price
                    """, logger: transaction.logger
                ).collect().first
                guard let (itemID, product, quantity, price) = try row?.decode((UUID, UUID, Int32, Int64).self) else {
                    throw AtriumError.validation(field: "product_id", "does not name a product of this tenant")
                }
                return DealItem(id: itemID, productId: product, quantity: quantity, unitPrice: price)
            }
        }
        Self.registerItemRemoval(routes)
    }

    static func registerItemRemoval(_ routes: ModuleRoutes) {
        routes.on(.patch, "deals/{id}/items/{item}", summary: "Change a line item's quantity or price", access: SalesAccess.records,
                  body: DealItemPatch.self, response: DealItem.self) { request, input in
            let scope = try request.requireOwnership()
            let (id, item) = (try request.uuidParameter("id"), try request.uuidParameter("item"))
            if let quantity = input.quantity, quantity <= 0 { throw AtriumError.validation(field: "quantity", "must be positive") }
            if let price = input.unitPrice, !(0...InputDomain.maximumAmount).contains(price) {
                throw AtriumError.validation(field: "unit_price", "must be from 0 to \(InputDomain.maximumAmount) minor units")
            }
            return try await request.transaction { transaction in
                _ = try await Self.find(id, scope: scope, on: transaction)
                let row = try await transaction.connection.query(
                    """
                    UPDATE sales_deal_items SET quantity = coalesce(\(input.quantity), quantity), unit_price = coalesce(\(input.unitPrice), unit_price)
                    WHERE id = \(item) AND deal_id = \(id) RETURNING id, product_id, quantity, unit_price
                    """, logger: transaction.logger
                ).collect().first
                guard let (itemID, product, quantity, price) = try row?.decode((UUID, UUID, Int32, Int64).self) else {
                    throw AtriumError.notFound("No such line item.")
                }
                return DealItem(id: itemID, productId: product, quantity: quantity, unitPrice: price)
            }
        }

        routes.on(.delete, "deals/{id}/items/{item}", summary: "Remove a line item from a deal", access: SalesAccess.records, response: NoContent.self,
                  status: .noContent) { request in
            let scope = try request.requireOwnership()
            let (id, item) = (try request.uuidParameter("id"), try request.uuidParameter("item"))
            try await request.transaction { transaction in
                _ = try await Self.find(id, scope: scope, on: transaction)
                let deleted = try await transaction.connection.query(
                    "DELETE FROM sales_deal_items WHERE id = \(item) AND deal_id = \(id) RETURNING 1", logger: transaction.logger
                ).collect()
                guard !deleted.isEmpty else { throw AtriumError.notFound("No such line item.") }
            }
            return NoContent()
        }
    }

    static func find(_ id: UUID, scope: Ownership, on transaction: TenantTransaction, lock: Bool = false) async throws -> Deal {
        let row = try await transaction.connection.query(
            """
            SELECT \(unescaped: Deal.columns) FROM sales_deals
            WHERE id = \(id) AND (\(scope.ownerFilter)::uuid IS NULL OR owner_id = \(scope.ownerFilter))
            \(unescaped: lock ? "FOR UPDATE" : "")
            """, logger: transaction.logger
        ).collect().first
        guard let row else { throw AtriumError.notFound("No such deal.") }
        return try Deal(row)
    }
}
