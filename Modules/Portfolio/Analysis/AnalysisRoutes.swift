import AtriumCore
import Foundation
import HTTPTypes
import Logging

/// Analyses over HTTP. `POST analyses` reads its inputs (committing at once), runs the
/// advisor outside any transaction (on the compute pool for the rules), then writes the
/// analysis, its advice and both meters in one transaction with the Idempotency-Key: an
/// advisor that fails, or a write that fails, bills nothing, and a retry bills once.
struct AnalysisRoutes {
    let advisor: any PortfolioAdvisor

    func register(_ routes: ModuleRoutes) {
        let advisor = advisor
        let clock = routes.context.clock
        let access = RouteAccess.owned("portfolio.records")
        routes.create(
            "analyses", summary: "Analyse a portfolio (or holdings sent inline) as of a date; billed per analysis and per advice item", access: access,
            body: AnalysisRequest.self, response: Analysis.self,
            prepare: { request, input in
                let body = try input.validated()
                let ownership = try request.requireOwnership()
                let asOf = body.asOf ?? TradeDate.today(clock.now)
                let (owner, analysisInput): (UUID, AnalysisInput) = try await request.transaction { transaction in
                    if let portfolio = body.portfolioId {
                        let owner = try await PortfolioStore.table.find(portfolio, on: transaction).ownerId
                        let band = try await Self.band(body.riskBand, of: owner, on: transaction)
                        return try await AnalysisStore.inputs(portfolio: portfolio, asOf: asOf, band: band, on: transaction)
                    }
                    let band = try await Self.band(body.riskBand, of: ownership.userID, on: transaction)
                    return (ownership.userID, try await AnalysisStore.inputs(
                        holdings: body.holdings ?? [], currency: body.currency, asOf: asOf, band: band, on: transaction))
                }
                let advice: [AdviceItem]
                do {
                    advice = try await advisor.advise(analysisInput)
                } catch let error as AtriumError {
                    throw error
                } catch {
                    request.logger.error("portfolio advisor failed", metadata: ["advisor": "\(advisor.name)", "error": "\(String(reflecting: error))"])
                    throw AtriumError(
                        status: .badGateway, code: "advisor_failed", title: "The advisor failed",
                        detail: "The advisor \(advisor.name) could not analyse this portfolio; nothing was billed. Try again later.")
                }
                let prepared = AnalysisStore.Prepared(
                    owner: owner, portfolio: body.portfolioId, input: analysisInput, inputsHash: try AnalysisStore.hash(analysisInput, advisor: advisor.name))
                return (prepared, advice, ownership.userID)
            },
            write: { request, transaction, prepared in
                let (inputs, advice, requester) = prepared
                return try await AnalysisStore.write(
                    inputs, advisor: advisor.name, advice: advice, requestedBy: requester, quota: request.quota(PortfolioModule.analysesQuota), on: transaction)
            })

        routes.on(
            .get, "analyses", summary: "Analyses you may see, newest first", access: access,
            query: QueryParameter.pagination + [.init("portfolio_id", "Only this portfolio's analyses.")], response: Page<Analysis>.self
        ) { request in
            let page = try request.pageRequest()
            let portfolio = try request.uuidQuery("portfolio_id")
            let filter: SQL = portfolio.map { "portfolio_id = \($0)" } ?? "true"
            return try await request.transaction { transaction in
                try await transaction.lastStatement { try await AnalysisStore.table.page(page, where: filter, on: transaction) }
            }
        }

        PortfolioAccess.recordRoutes.get(routes, "analyses/{id}", summary: "One analysis and its advice", table: AnalysisStore.table)
    }

    /// The band the request names, else the owner's risk profile's, else moderate.
    static func band(_ requested: AnalysisRequest.RiskBand?, of owner: UUID, on transaction: TenantTransaction) async throws -> String {
        if let requested { return requested.rawValue }
        return try await ProfileStore.band(of: owner, on: transaction) ?? "moderate"
    }
}
