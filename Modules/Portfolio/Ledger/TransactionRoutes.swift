import AtriumCore
import Foundation
import HTTPTypes

/// A portfolio's ledger over HTTP: record an entry (Idempotency-Key honoured), page
/// through them, read or delete one. Every change books the whole ledger again before it
/// commits; what the booking refuses (a sell of more than was held then, a closed lot, a
/// withdrawal of more cash than was there) is answered 422 and changes nothing.
struct TransactionRoutes {
    func register(_ routes: ModuleRoutes) {
        let access = PortfolioAccess.records
        routes.create(
            "portfolios/{id}/transactions", summary: "Record a buy, sell, dividend, fee, deposit or withdrawal (decimals as strings)", access: access,
            body: TransactionFields.self, response: LedgerTransaction.self
        ) { request, input in
            try await Self.record(input, request: request)
        }

        routes.create(
            "portfolios/{id}/withdrawals", summary: "Take cash out of a portfolio (refused beyond the cash it holds then)", access: access,
            body: WithdrawalFields.self, response: LedgerTransaction.self
        ) { request, input in
            try await Self.record(input.entry, request: request)
        }

        routes.on(
            .get, "portfolios/{id}/withdrawals", summary: "A portfolio's withdrawals, a page at a time", access: access,
            query: QueryParameter.pagination, response: Page<LedgerTransaction>.self
        ) { request in
            let portfolioID = try request.uuidParameter("id")
            let page = try request.pageRequest()
            return try await request.transaction { try await TransactionStore.page(page, portfolio: portfolioID, kind: .withdrawal, on: $0) }
        }

        routes.on(
            .get, "portfolios/{id}/transactions", summary: "A portfolio's ledger, a page at a time (in the order entries were recorded)", access: access,
            query: QueryParameter.pagination, response: Page<LedgerTransaction>.self
        ) { request in
            let portfolioID = try request.uuidParameter("id")
            let page = try request.pageRequest()
            return try await request.transaction { try await TransactionStore.page(page, portfolio: portfolioID, on: $0) }
        }

        routes.on(.get, "portfolios/{id}/transactions/{tx}", summary: "One ledger entry", access: access, response: LedgerTransaction.self) { request in
            let (portfolioID, id) = (try request.uuidParameter("id"), try request.uuidParameter("tx"))
            return try await request.transaction { try await TransactionStore.find(id, portfolio: portfolioID, on: $0) }
        }

        routes.on(
            .delete, "portfolios/{id}/transactions/{tx}", summary: "Delete a ledger entry (refused when a later sell would then sell more than was held)",
            access: access, response: NoContent.self, status: .noContent
        ) { request in
            let (portfolioID, id) = (try request.uuidParameter("id"), try request.uuidParameter("tx"))
            try await request.transaction { transaction in
                let portfolio = try await PortfolioStore.lock(portfolioID, on: transaction)
                try await TransactionStore.delete(id, from: portfolio, on: transaction)
            }
            return NoContent()
        }
    }

    /// Records `input` in the portfolio the path names, locked, and books the ledger.
    static func record(_ input: TransactionFields, request: TenantRequest) async throws -> LedgerTransaction {
        let portfolioID = try request.uuidParameter("id")
        let fields = try input.validated()
        _ = try request.requireOwnership()
        return try await request.transaction { transaction in
            let portfolio = try await PortfolioStore.lock(portfolioID, on: transaction)
            let fxRate = try await Self.fxRate(for: fields, in: portfolio, on: transaction)
            return try await TransactionStore.insert(fields, fxRate: fxRate, into: portfolio, on: transaction)
        }
    }

    /// The entry's rate to the base: 1 in the base currency; else the one sent, or the
    /// tenant's rate on or before the trade date (422 `fx_rate_missing` when there is none).
    static func fxRate(for fields: TransactionFields, in portfolio: Portfolio, on transaction: TenantTransaction) async throws -> DecimalString {
        if fields.currency == portfolio.baseCurrency {
            if let given = fields.fxRate, given.value != 1 {
                throw AtriumError.validation(field: "fx_rate", "must be 1 (or absent) for an entry in the portfolio's base currency")
            }
            return DecimalString(1)
        }
        if let given = fields.fxRate { return given }
        guard let rate = try await MarketReader.fxRate(from: fields.currency, to: portfolio.baseCurrency, on: fields.tradeDate, on: transaction) else {
            throw MarketReader.fxMissing(from: fields.currency, to: portfolio.baseCurrency, on: fields.tradeDate, field: "fx_rate")
        }
        return rate.rate
    }
}
