import AtriumCore
import Foundation
import PostgresNIO

/// The SQL of portfolios.
enum PortfolioStore: OwnedRecordStore {
    static let table = RecordTable<Portfolio>(
        "portfolio_portfolios", columns: "id, owner_id, name, base_currency, cost_method, created_at, updated_at", noun: "portfolio", delegatedAs: PortfolioAccess.scope,
        order: .ascending("updated_at", time: \.updatedAt, id: \.id), decode: Portfolio.init)

    static func insert(_ fields: PortfolioFields, owner: UUID, on transaction: TenantTransaction) async throws -> Portfolio {
        let sql: SQL = """
            INSERT INTO portfolio_portfolios (tenant_id, owner_id, name, base_currency, cost_method)
            VALUES (\(transaction.tenantID), \(owner), \(fields.name.value ?? ""), \(fields.baseCurrency.value ?? ""), \((fields.costMethod.value ?? .fifo).rawValue))
            RETURNING \(unescaped: table.columns)
            """
        return try await transaction.lastStatement { try await table.one(sql, on: transaction) }
    }

    static func update(_ id: UUID, _ patch: PortfolioFields, owner: UUID?, on transaction: TenantTransaction) async throws -> Portfolio {
        let sql: SQL = """
            UPDATE portfolio_portfolios SET name = coalesce(\(patch.name.value), name),
                cost_method = coalesce(\(patch.costMethod.value?.rawValue), cost_method),
                owner_id = coalesce(\(owner), owner_id), updated_at = now()
            WHERE id = \(id)
            RETURNING \(unescaped: table.columns)
            """
        return try await transaction.lastStatement { try await table.one(sql, on: transaction) }
    }

    /// The portfolio, locked until commit: a ledger is written one entry at a time, so
    /// that each write books against the ledger the previous one left.
    static func lock(_ id: UUID, on transaction: TenantTransaction) async throws -> Portfolio {
        try await table.find(id, on: transaction, forUpdate: true)
    }
}

struct PortfolioRoutes {
    func register(_ routes: ModuleRoutes) {
        PortfolioAccess.recordRoutes.list(routes, "portfolios", summary: "Portfolios you may see", search: "name") { request, page, filter in
            try await request.transaction { transaction in
                try await transaction.lastStatement {
                    try await PortfolioStore.table.page(page, where: filter.conditions(searching: ["name"]), on: transaction)
                }
            }
        }
        PortfolioAccess.recordRoutes.register(routes, "portfolios", store: PortfolioStore.self, summaries: .init(
            create: "Open a portfolio (base currency, cost method fifo or average)", get: "One portfolio",
            change: "Rename a portfolio, change its cost method or owner (JSON Merge Patch; the base currency is fixed)",
            delete: "Delete a portfolio and its ledger"))
    }
}
