import AtriumCore
import Foundation
import HTTPTypes

/// A price the owner types for one portfolio (an unlisted fund, a house): it wins over
/// the market's closes there, from its date until a later manual price.
struct ManualPrice: Codable, Sendable {
    var symbol: String
    var date: String
    var price: DecimalString
}

struct ManualPriceFields: Codable, Sendable {
    var date: String
    var price: DecimalString

    func validated() throws -> ManualPriceFields {
        var checks = FieldChecks()
        checks.record("date", TradeDate.problem(date))
        checks.fail("price", "must not be negative", when: price.value < 0)
        try checks.finish()
        return self
    }
}

struct ManualPriceRoutes {
    func register(_ routes: ModuleRoutes) {
        routes.on(
            .put, "portfolios/{id}/prices/{symbol}", summary: "Set a portfolio's own price of an instrument on a date (wins over the market's close)",
            access: PortfolioAccess.records, body: ManualPriceFields.self, response: ManualPrice.self
        ) { request, input in
            let (id, symbol) = (try request.uuidParameter("id"), try MarketRoutes.symbol(request))
            let fields = try input.validated()
            try await request.transaction { transaction in
                let portfolio = try await PortfolioStore.lock(id, on: transaction)
                _ = try await transaction.query(
                    """
                    INSERT INTO portfolio_manual_prices (tenant_id, portfolio_id, owner_id, symbol, on_date, price)
                    VALUES (\(transaction.tenantID), \(portfolio.id), \(portfolio.ownerId), \(symbol), \(fields.date)::date, \(fields.price.text)::numeric)
                    ON CONFLICT (tenant_id, portfolio_id, symbol, on_date) DO UPDATE SET price = excluded.price
                    """)
                try await ValuationStore.invalidate(portfolio.id, from: fields.date, on: transaction)
            }
            return ManualPrice(symbol: symbol, date: fields.date, price: fields.price)
        }

        routes.on(
            .delete, "portfolios/{id}/prices/{symbol}", summary: "Remove a portfolio's own price of an instrument on a date (?date=)",
            access: PortfolioAccess.records, query: [.init("date", "The price's date, YYYY-MM-DD.")], response: NoContent.self, status: .noContent
        ) { request in
            let (id, symbol) = (try request.uuidParameter("id"), try MarketRoutes.symbol(request))
            let date = request.query("date") ?? ""
            if let problem = TradeDate.problem(date) { throw AtriumError.validation(field: "date", problem) }
            try await request.transaction { transaction in
                let portfolio = try await PortfolioStore.lock(id, on: transaction)
                let deleted = try await transaction.query(
                    "DELETE FROM portfolio_manual_prices WHERE portfolio_id = \(portfolio.id) AND symbol = \(symbol) AND on_date = \(date)::date RETURNING 1")
                guard !deleted.isEmpty else { throw AtriumError.notFound("No such price.") }
                try await ValuationStore.invalidate(portfolio.id, from: date, on: transaction)
            }
            return NoContent()
        }
    }
}
