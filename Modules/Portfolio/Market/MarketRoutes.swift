import AtriumCore
import Foundation
import HTTPTypes

/// The tenant's market data over HTTP: instruments, daily closes, FX rates and splits.
/// Everyone who keeps a portfolio reads it; `portfolio.market.write` changes it.
struct MarketRoutes {
    func register(_ routes: ModuleRoutes) {
        routes.on(
            .get, "market/instruments", summary: "The tenant's instruments", access: PortfolioAccess.marketRead,
            query: QueryParameter.pagination + [.init("q", "Search in symbol, name and sector (case-insensitive)."), .init("updated_since", "Only instruments changed at or after this RFC 3339 time.")], response: Page<Instrument>.self
        ) { request in
            let page = try request.pageRequest()
            var filter = try ListFilter(request)
            filter.owner = nil  // instruments are the tenant's, not a user's
            return try await request.transaction { transaction in
                try await transaction.lastStatement {
                    try await MarketStore.instruments.page(page, where: filter.conditions(searching: ["symbol", "name", "sector"]), on: transaction)
                }
            }
        }

        routes.on(.get, "market/instruments/{symbol}", summary: "One instrument", access: PortfolioAccess.marketRead, response: Instrument.self) { request in
            let symbol = try Self.symbol(request)
            return try await request.transaction { transaction in try await transaction.lastStatement { try await MarketStore.instrument(symbol, on: transaction) } }
        }

        routes.on(
            .put, "market/instruments/{symbol}", summary: "Add or change an instrument", access: PortfolioAccess.marketWrite, body: InstrumentFields.self,
            response: Instrument.self
        ) { request, input in
            let symbol = try Self.symbol(request)
            let fields = try input.validated()
            return try await request.transaction { try await MarketStore.upsert(symbol, fields, on: $0) }
        }

        routes.on(
            .post, "market/instruments/{symbol}/prices", summary: "Write daily closes of an instrument (as traded, not split-adjusted)",
            access: PortfolioAccess.marketWrite, body: PriceSeries.self, response: PricesWritten.self
        ) { request, input in
            let symbol = try Self.symbol(request)
            let series = try input.validated()
            let written = try await request.transaction { try await MarketStore.writePrices(symbol, series, on: $0) }
            return PricesWritten(symbol: symbol, written: written)
        }

        routes.on(
            .get, "market/instruments/{symbol}/prices", summary: "An instrument's closes between two dates (at most 5000)", access: PortfolioAccess.marketRead,
            query: [.init("from", "First date, YYYY-MM-DD."), .init("to", "Last date, YYYY-MM-DD.")], response: PriceSeries.self
        ) { request in
            let symbol = try Self.symbol(request)
            var checks = FieldChecks()
            let (from, to) = (request.query("from") ?? "1900-01-01", request.query("to") ?? "2199-12-31")
            checks.record("from", TradeDate.problem(from))
            checks.record("to", TradeDate.problem(to))
            try checks.finish()
            return try await request.transaction { try await MarketStore.prices(symbol, from: from, to: to, on: $0) }
        }

        routes.on(.post, "market/fx", summary: "Write an exchange rate (one base is worth rate quote on date)", access: PortfolioAccess.marketWrite,
            body: FXRate.self, response: FXRate.self
        ) { request, input in
            let rate = try input.validated()
            try await request.transaction { try await MarketStore.writeRate(rate, on: $0) }
            return rate
        }

        routes.create(
            "market/corporate-actions", summary: "Record a split (applied to every ledger when it is read)", access: PortfolioAccess.marketWrite,
            body: CorporateActionFields.self, response: CorporateAction.self
        ) { request, input in
            let fields = try input.validated()
            return try await request.transaction { try await MarketStore.insertAction(fields, on: $0) }
        }

        routes.on(
            .get, "market/corporate-actions", summary: "The tenant's splits", access: PortfolioAccess.marketRead, query: QueryParameter.pagination,
            response: Page<CorporateAction>.self
        ) { request in
            let page = try request.pageRequest()
            return try await request.transaction { transaction in
                try await transaction.lastStatement { try await MarketStore.actions.page(page, on: transaction) }
            }
        }

        routes.on(
            .delete, "market/corporate-actions/{id}", summary: "Undo a split", access: PortfolioAccess.marketWrite, response: NoContent.self,
            status: .noContent
        ) { request in
            let id = try request.uuidParameter("id")
            try await request.transaction { transaction in
                let action = try await MarketStore.actions.find(id, on: transaction)
                try await ValuationStore.invalidateAll(from: action.effectiveDate, on: transaction)
                try await transaction.lastStatement { try await MarketStore.actions.delete(id, on: transaction) }
            }
            return NoContent()
        }
    }

    static func symbol(_ request: TenantRequest) throws -> String {
        let symbol = try request.parameter("symbol")
        if let problem = PortfolioValidation.symbolProblem(symbol) { throw AtriumError.validation(field: "symbol", problem) }
        return symbol
    }
}
