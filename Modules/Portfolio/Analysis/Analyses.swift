import AtriumCore
import Foundation
import PostgresNIO

/// A stored analysis: what was analysed (its inputs' hash), by which advisor, and the
/// advice it gave, in order.
struct Analysis: Codable, Sendable {
    var id, ownerId: UUID
    var portfolioId: UUID?
    var asOf: String
    var advisor: String
    var inputsHash: String
    var currency: String
    var value: DecimalString
    var advice: [AdviceItem]
    var createdAt: Date

    init(id: UUID, ownerId: UUID, portfolioId: UUID?, input: AnalysisInput, advisor: String, inputsHash: String, advice: [AdviceItem], createdAt: Date) {
        (self.id, self.ownerId, self.portfolioId, self.asOf, self.advisor, self.inputsHash) = (id, ownerId, portfolioId, input.asOf, advisor, inputsHash)
        (self.currency, self.advice, self.createdAt) = (input.currency, advice, createdAt)
        value = DecimalString(input.total, scale: CurrencyCodes.minorUnitExponent(of: input.currency) ?? 2)
    }

    init(_ row: PostgresRow) throws {
        var columns = RowReader(row)
        id = try columns.next()
        ownerId = try columns.next()
        portfolioId = try columns.next()
        asOf = try columns.next()
        advisor = try columns.next()
        inputsHash = try columns.next()
        currency = try columns.next()
        value = try LedgerTransaction.decimal(columns.next()) ?? DecimalString(0)
        let advice: String = try columns.next()
        self.advice = try JSONDecoder().decode([AdviceItem].self, from: Data(advice.utf8))
        createdAt = try columns.next()
    }
}

/// `POST analyses`: a portfolio of the caller's (or of a client's, for an advisor), or
/// holdings sent inline (the stock consultant's mode), valued on `as_of`.
struct AnalysisRequest: Codable, Sendable {
    struct Holding: Codable, Sendable {
        var symbol: String
        var quantity: DecimalString
        /// What the units cost, in `currency`; optional.
        var cost: DecimalString?
    }

    enum RiskBand: String, Codable, Sendable, CaseIterable, JSONSchemaDescribable {
        case conservative, moderate, aggressive
    }

    var portfolioId: UUID?
    var holdings: [Holding]?
    /// The currency inline holdings are valued in (default: the first one's instrument currency).
    var currency: String?
    var asOf: String?
    /// The band whose limits the rules apply (default: the owner's risk profile's, else moderate).
    var riskBand: RiskBand?

    func validated() throws -> AnalysisRequest {
        var checks = FieldChecks()
        checks.fail("portfolio_id", "send either portfolio_id or holdings", when: (portfolioId == nil) == (holdings == nil))
        checks.fail("holdings", "must hold 1 to 2000 holdings", when: holdings.map { $0.isEmpty || $0.count > 2000 } ?? false)
        for (index, holding) in (holdings ?? []).enumerated() {
            checks.record("holdings[\(index)].symbol", PortfolioValidation.symbolProblem(holding.symbol))
            checks.fail("holdings[\(index)].quantity", "must be greater than 0", when: holding.quantity.value <= 0)
            checks.fail("holdings[\(index)].cost", "must not be negative", when: holding.cost.map { $0.value < 0 } ?? false)
        }
        checks.fail("holdings", "names a symbol twice", when: holdings.map { Set($0.map(\.symbol)).count != $0.count } ?? false)
        checks.record("currency", currency.flatMap(PortfolioValidation.currencyProblem))
        checks.fail("currency", "is taken only with inline holdings (a portfolio reports in its base)", when: currency != nil && portfolioId != nil)
        checks.record("as_of", asOf.flatMap(TradeDate.problem))
        try checks.finish()
        return self
    }
}
