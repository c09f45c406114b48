import AtriumCore
import AtriumPortfolio
import AtriumTesting
import Foundation
import HTTPTypes
import PostgresNIO
import Testing

/// The stock consultant's bill, end to end: analyses run over the API, their usage
/// closed into the month's invoice by the shipped plan catalog.
@Suite struct PortfolioInvoiceTests {
    static let shippedPlans = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appending(path: "tenants/plans.yaml")

    /// Two analyses of six advice items each, on the `consultant` plan: 2 × 5.00 INR +
    /// 12 × 2.00 INR = 34.00 INR, and a failed analysis (no prices) adds nothing.
    @Test func theConsultantsInvoiceIsFiveRupeesAnAnalysisAndTwoAnAdvice() async throws {
        try await PortfolioTeam.withTeam { team in
            let portfolio = try await PortfolioAnalysisTests.market(team)
            for _ in 0..<2 {
                let analysis = try await team.call(
                    .post, "/analyses", team.ann, #"{"portfolio_id":"\#(portfolio)","as_of":"2024-03-04"}"#, expect: .created)
                #expect(analysis["advice"]?.array?.count == 6)
            }
            // A holding with no price: the analysis is refused and bills nothing.
            try await team.market("NOPR")
            let unpriced = try await team.portfolio("Unpriced")
            try await team.trade(unpriced, "buy", "NOPR", "1", at: "10", on: "2024-01-02")
            let refused = try await team.call(
                .post, "/analyses", team.ann, #"{"portfolio_id":"\#(unpriced)","as_of":"2024-03-04"}"#, expect: .unprocessableContent)
            #expect(refused["code"]?.string == "prices_missing")

            let catalog = try PlanCatalog.load(Self.shippedPlans, knownModules: ["sales", "portfolio", "crypto"])
            let metering = Metering(registry: try ModuleRegistry([PortfolioModule()]), catalog: catalog, logger: TestDatabase.logger)
            let invoices = Invoices(catalog: catalog, metering: metering, logger: TestDatabase.logger)
            let tenantID = team.tenant.id
            let invoice = try await team.db.withOwner { connection in
                let month = try await connection.withTenantTransaction(tenantID, logger: TestDatabase.logger) { connection in
                    try await connection.query(
                        "SELECT to_char(min(occurred_at) AT TIME ZONE 'UTC', 'YYYY-MM') FROM usage_records WHERE meter LIKE 'portfolio.%'",
                        logger: TestDatabase.logger
                    ).collect().first?.decode(String.self) ?? ""
                }
                let period = try Metering.period(month)
                // The tenant on the consultant plan for the whole month.
                try await connection.withPlatformTransaction(logger: TestDatabase.logger) { connection in
                    try await connection.query("DELETE FROM plan_periods WHERE tenant_id = \(tenantID)", logger: TestDatabase.logger)
                    try await connection.query(
                        "INSERT INTO plan_periods (tenant_id, plan, started_at) VALUES (\(tenantID), 'consultant', \(period) - interval '1 day')",
                        logger: TestDatabase.logger)
                }
                return try await connection.withTenantTransaction(tenantID, logger: TestDatabase.logger) { connection in
                    try await invoices.close(period: period, tenantID: tenantID, now: period.addingTimeInterval(40 * 86_400), on: connection)
                }
            }
            let closed = try #require(invoice?.invoice)
            #expect(closed.currency == "INR")
            #expect(closed.plan == "consultant")
            let usage = (closed.lines ?? []).filter { $0.kind == .usage }
            #expect(usage.map { $0.meter ?? "" }.sorted() == ["portfolio.advice", "portfolio.analysis"])
            #expect(usage.first { $0.meter == "portfolio.analysis" }?.quantity == 2)
            #expect(usage.first { $0.meter == "portfolio.analysis" }?.amount == 1_000)
            #expect(usage.first { $0.meter == "portfolio.advice" }?.quantity == 12)
            #expect(usage.first { $0.meter == "portfolio.advice" }?.amount == 2_400)
            #expect(closed.total == 3_400)
        }
    }
}
