import AtriumCore
import Foundation

/// The stored daily valuations of a portfolio over a period (what the nightly
/// `portfolio.valuations.snapshot` wrote): a chart's series, one row per day, in the
/// base. Days after a back-dated change are absent until the next run values them again.
struct ValuationList: Codable, Sendable {
    struct Day: Codable, Sendable {
        var asOf: String
        var value: DecimalString
        var inflow: DecimalString
        var outflow: DecimalString
    }

    var from: String
    var to: String
    var currency: String
    var days: [Day]

    /// The longest period one request reads.
    static let maximumDays = 3_700

    static func list(of portfolioID: UUID, from: String, to: String, on transaction: TenantTransaction) async throws -> ValuationList {
        let portfolio = try await PortfolioStore.table.find(portfolioID, on: transaction)
        let scale = CurrencyCodes.minorUnitExponent(of: portfolio.baseCurrency) ?? 2
        let rows = try await transaction.query(
            """
            SELECT as_of::text, value::text, inflow::text, outflow::text FROM portfolio_valuations
            WHERE portfolio_id = \(portfolio.id) AND as_of BETWEEN \(from)::date AND \(to)::date ORDER BY as_of
            """)
        let days = try rows.map { row in
            var columns = RowReader(row)
            let day: String = try columns.next()
            let figures = try (0..<3).map { _ in try LedgerTransaction.decimal(columns.next())?.value ?? 0 }
            return Day(
                asOf: day, value: DecimalString(figures[0], scale: scale), inflow: DecimalString(figures[1], scale: scale),
                outflow: DecimalString(figures[2], scale: scale))
        }
        return ValuationList(from: from, to: to, currency: portfolio.baseCurrency, days: days)
    }
}
