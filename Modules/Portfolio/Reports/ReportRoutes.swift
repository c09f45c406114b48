import AtriumCore
import Foundation
import HTTPTypes

/// Reports of a portfolio as of a date (`as_of`, default today in UTC): what it holds
/// and is worth, and what its sells realized. Entries and splits after the date are
/// left out, so a report of a past date is what the ledger said then.
struct ReportRoutes {
    static let asOf = QueryParameter("as_of", "The date to report as of, YYYY-MM-DD (default: today, UTC).")

    func register(_ routes: ModuleRoutes) {
        let clock = routes.context.clock
        routes.on(
            .get, "portfolios/{id}/holdings", summary: "What a portfolio holds on a date, its cost and its value", access: PortfolioAccess.records,
            query: [Self.asOf], response: Holdings.self
        ) { request in
            let (id, asOf) = (try request.uuidParameter("id"), try Self.asOf(request, now: clock.now))
            return try await request.transaction { try await HoldingsReport.holdings(of: id, asOf: asOf, on: $0) }
        }

        routes.on(
            .get, "portfolios/{id}/realized", summary: "Gains realized by a portfolio's sells up to a date, lot by lot", access: PortfolioAccess.records,
            query: [Self.asOf], response: Realized.self
        ) { request in
            let (id, asOf) = (try request.uuidParameter("id"), try Self.asOf(request, now: clock.now))
            return try await request.transaction { try await RealizedReport.realized(of: id, asOf: asOf, on: $0) }
        }

        routes.on(
            .get, "portfolios/{id}/lots", summary: "The lots a portfolio holds on a date, what is left of each and what that cost",
            access: PortfolioAccess.records, query: [Self.asOf, .init("symbol", "Only this instrument's lots.")], response: OpenLots.self
        ) { request in
            let (id, asOf) = (try request.uuidParameter("id"), try Self.asOf(request, now: clock.now))
            let symbol = request.query("symbol")
            if let problem = symbol.flatMap(PortfolioValidation.symbolProblem) { throw AtriumError.validation(field: "symbol", problem) }
            return try await request.transaction { try await OpenLotsReport.lots(of: id, asOf: asOf, symbol: symbol, on: $0) }
        }

        routes.on(
            .get, "portfolios/{id}/valuations", summary: "The stored daily valuations of a portfolio over a period (the nightly snapshots)",
            access: PortfolioAccess.records,
            query: [.init("from", "First day, YYYY-MM-DD (default: a year before to)."), .init("to", "Last day, YYYY-MM-DD (default: today, UTC).")],
            response: ValuationList.self
        ) { request in
            let id = try request.uuidParameter("id")
            let to = request.query("to") ?? TradeDate.today(clock.now)
            var checks = FieldChecks()
            checks.record("to", TradeDate.problem(to))
            let from = request.query("from") ?? DayNumber.of(to).map { DayNumber.text($0 - 365) } ?? to
            checks.record("from", TradeDate.problem(from))
            if let first = DayNumber.of(from), let last = DayNumber.of(to) {
                checks.fail("from", "must be on or before to", when: first > last)
                checks.fail("from", "may be at most \(ValuationList.maximumDays) days before to", when: last - first >= ValuationList.maximumDays)
            }
            try checks.finish()
            return try await request.transaction { try await ValuationList.list(of: id, from: from, to: to, on: $0) }
        }

        routes.on(
            .get, "portfolios/{id}/performance", summary: "Time-weighted (linked daily) and money-weighted (XIRR) returns over a period",
            access: PortfolioAccess.records,
            query: [.init("from", "First day, YYYY-MM-DD (default: the ledger's first)."), .init("to", "Last day, YYYY-MM-DD (default: today, UTC).")],
            response: Performance.self
        ) { request in
            let id = try request.uuidParameter("id")
            var checks = FieldChecks()
            let (from, to) = (request.query("from"), request.query("to") ?? TradeDate.today(clock.now))
            checks.record("from", from.flatMap(TradeDate.problem))
            checks.record("to", TradeDate.problem(to))
            try checks.finish()
            if let stored = try await request.transaction({ try await PerformanceReport.fromSnapshots(of: id, from: from, to: to, on: $0) }) {
                return stored
            }
            return try await request.readBehindRequests { try await PerformanceReport.replay(of: id, from: from, to: to, on: $0) }
        }
    }

    static func asOf(_ request: TenantRequest, now: Date) throws -> String {
        guard let text = request.query("as_of") else { return TradeDate.today(now) }
        if let problem = TradeDate.problem(text) { throw AtriumError.validation(field: "as_of", problem) }
        return text
    }
}
