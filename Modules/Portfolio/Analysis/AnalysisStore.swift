import AtriumCore
import Crypto
import Foundation
import HTTPTypes
import PostgresNIO

/// Reading an analysis's inputs and writing its outcome.
enum AnalysisStore {
    static let columns = """
        id, owner_id, portfolio_id, as_of::text, advisor, inputs_hash, currency, value::text, \
        (SELECT coalesce(json_agg(json_build_object('code', v.code, 'severity', v.severity, 'text', v.text, 'figures', v.figures) ORDER BY v.position), '[]')
           FROM portfolio_advice v WHERE v.analysis_id = portfolio_analyses.id)::text, created_at
        """
    static let table = RecordTable<Analysis>(
        "portfolio_analyses", columns: columns, noun: "analysis", delegatedAs: PortfolioAccess.analysesScope,
        order: .descending("created_at", time: \.createdAt, id: \.id), decode: Analysis.init)

    /// What the advisor will be shown, and whose analysis it is.
    struct Prepared: Sendable {
        var owner: UUID
        var portfolio: UUID?
        var input: AnalysisInput
        var inputsHash: String
    }

    /// The portfolio valued as of the date, in its base currency; 422 `prices_missing`
    /// when a holding has no price on or before it (an analysis of part of a portfolio
    /// would mislead, and is not billed).
    static func inputs(portfolio id: UUID, asOf: String, band: String, on transaction: TenantTransaction) async throws -> (owner: UUID, AnalysisInput) {
        let portfolio = try await PortfolioStore.table.find(id, on: transaction)
        let holdings = try await HoldingsReport.holdings(of: id, asOf: asOf, on: transaction)
        guard holdings.missingPrices.isEmpty else { throw pricesMissing(holdings.missingPrices, asOf: asOf) }
        let described = try await MarketStore.describe(holdings.positions.map(\.symbol), on: transaction)
        let positions = holdings.positions.map { position in
            AnalysisInput.Position(
                symbol: position.symbol, name: described[position.symbol]?.name ?? "", sector: described[position.symbol]?.sector ?? "",
                assetType: described[position.symbol]?.assetType.rawValue ?? "other", currency: position.currency, quantity: position.quantity,
                cost: position.costBase, value: position.valueBase ?? DecimalString(0), priceDate: position.priceDate ?? asOf, stale: position.stale)
        }
        let scale = CurrencyCodes.minorUnitExponent(of: portfolio.baseCurrency) ?? 2
        let cash = holdings.cash.reduce(Decimal(0)) { $0 + $1.amountBase.value }
        return (portfolio.ownerId, AnalysisInput(
            asOf: asOf, currency: portfolio.baseCurrency, riskBand: band, positions: positions, cash: DecimalString(max(cash, 0), scale: scale)))
    }

    /// Holdings sent inline, valued at the tenant's closes on or before the date.
    static func inputs(holdings: [AnalysisRequest.Holding], currency requested: String?, asOf: String, band: String, on transaction: TenantTransaction)
        async throws -> AnalysisInput
    {
        let symbols = holdings.map(\.symbol)
        let described = try await MarketStore.describe(symbols, on: transaction)
        var checks = FieldChecks()
        for (index, holding) in holdings.enumerated() where described[holding.symbol] == nil {
            checks.fail("holdings[\(index)].symbol", "is not an instrument of this tenant", when: true)
        }
        try checks.finish()
        let quotes = try await MarketReader.quotes(for: symbols, portfolio: nil, on: asOf, on: transaction)
        let missing = symbols.filter { quotes[$0] == nil }
        guard missing.isEmpty else { throw pricesMissing(missing, asOf: asOf) }
        let currency = requested ?? described[symbols[0]]?.currency ?? "USD"
        let scale = CurrencyCodes.minorUnitExponent(of: currency) ?? 2
        var positions: [AnalysisInput.Position] = []
        for holding in holdings {
            guard let instrument = described[holding.symbol], let quote = quotes[holding.symbol] else { continue }
            guard let rate = try await MarketReader.fxRate(from: instrument.currency, to: currency, on: asOf, on: transaction) else {
                throw MarketReader.fxMissing(from: instrument.currency, to: currency, on: asOf, field: "currency")
            }
            positions.append(AnalysisInput.Position(
                symbol: holding.symbol, name: instrument.name, sector: instrument.sector, assetType: instrument.assetType.rawValue,
                currency: instrument.currency, quantity: holding.quantity, cost: holding.cost.map { DecimalString($0.value, scale: scale) },
                value: DecimalString(holding.quantity.value * quote.price * rate.rate.value, scale: scale), priceDate: quote.date,
                stale: TradeDate.days(from: quote.date, to: asOf) > HoldingsReport.staleAfterDays))
        }
        return AnalysisInput(asOf: asOf, currency: currency, riskBand: band, positions: positions, cash: DecimalString(0, scale: scale))
    }

    static func pricesMissing(_ symbols: [String], asOf: String) -> AtriumError {
        LedgerProblems.problem(
            "prices_missing", field: "as_of", "no price on or before \(asOf) for \(symbols.joined(separator: ", ")): add closes (or a manual price); nothing was billed")
    }

    /// SHA-256 of the input as canonical JSON (sorted keys) and the advisor's name.
    static func hash(_ input: AnalysisInput, advisor: String) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var digest = SHA256()
        digest.update(data: Data(advisor.utf8))
        digest.update(data: try encoder.encode(input))
        return digest.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// Writes the analysis and its advice and bills both, in `transaction` (the one that
    /// holds the Idempotency-Key): one analysis, and one advice unit per item, each keyed
    /// by the analysis id so that nothing is billed twice. `quota` is the plan's monthly
    /// cap on analyses (`portfolio.analyses`): past it, 429 `quota_exceeded` and nothing
    /// is written.
    static func write(
        _ prepared: Prepared, advisor: String, advice: [AdviceItem], requestedBy: UUID?, quota: Int64?, on transaction: TenantTransaction
    ) async throws
        -> Analysis
    {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let summary = String(decoding: try encoder.encode(prepared.input), as: UTF8.self)
        let value = DecimalString(prepared.input.total, scale: CurrencyCodes.minorUnitExponent(of: prepared.input.currency) ?? 2)
        let rows = try await transaction.query(
            """
            INSERT INTO portfolio_analyses (tenant_id, owner_id, portfolio_id, as_of, advisor, inputs_hash, currency, value, summary)
            VALUES (\(transaction.tenantID), \(prepared.owner), \(prepared.portfolio), \(prepared.input.asOf)::date, \(advisor), \(prepared.inputsHash),
                \(prepared.input.currency), \(value.text)::numeric, \(summary)::jsonb)
            RETURNING id, created_at
            """)
        var columns = try RowReader(rows.first.unwrapped("the new analysis"))
        let id: UUID = try columns.next()
        let createdAt: Date = try columns.next()
        if !advice.isEmpty {
            let figures = try advice.map { String(decoding: try encoder.encode($0.figures), as: UTF8.self) }
            _ = try await transaction.query(
                """
                INSERT INTO portfolio_advice (tenant_id, analysis_id, owner_id, position, code, severity, text, figures)
                SELECT \(transaction.tenantID), \(id), \(prepared.owner), a.ord - 1, a.code, a.severity, a.text, a.figures::jsonb
                FROM unnest(\(advice.map(\.code)), \(advice.map(\.severity.rawValue)), \(advice.map(\.text)), \(figures)) WITH ORDINALITY AS a (code, severity, text, figures, ord)
                """)
        }
        var properties: [String: JSONValue] = [
            "user": .string(prepared.owner.uuidString.lowercased()), "portfolio_value": .string(value.text), "currency": .string(prepared.input.currency),
        ]
        if let portfolio = prepared.portfolio { properties["portfolio"] = .string(portfolio.uuidString.lowercased()) }
        if let requestedBy, requestedBy != prepared.owner { properties["requested_by"] = .string(requestedBy.uuidString.lowercased()) }
        _ = try await transaction.recordUsage(PortfolioModule.analysisMeter, quantity: 1, idempotencyKey: "analysis:\(id)", properties: properties, quota: quota)
        if !advice.isEmpty {
            _ = try await transaction.recordUsage(
                PortfolioModule.adviceMeter, quantity: Int64(advice.count), idempotencyKey: "advice:\(id)", properties: properties)
        }
        return Analysis(
            id: id, ownerId: prepared.owner, portfolioId: prepared.portfolio, input: prepared.input, advisor: advisor, inputsHash: prepared.inputsHash,
            advice: advice, createdAt: createdAt)
    }
}
