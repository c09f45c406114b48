import AtriumCore
import Foundation
import PostgresNIO

/// The nightly daily valuations (`portfolio_valuations`): written by the
/// `portfolio.valuations.snapshot` job, read by the performance report, and deleted from
/// a change's date by whatever changes the past (a back-dated entry, a split, a
/// corrected close or rate), so the next run computes those days again.
enum ValuationStore {
    struct SnapshotRequest: Codable, Sendable {
        /// The last day to value (default: yesterday, UTC).
        var through: String?
    }

    static let snapshot = JobKind<SnapshotRequest>("portfolio.valuations.snapshot")

    /// Nightly, per tenant with the module.
    static let nightly = ScheduleDefinition(name: "portfolio.valuations.nightly", kind: snapshot.name, every: .seconds(86_400), perTenant: true)

    /// The job: every portfolio of the tenant valued from the day after its last stored
    /// valuation through `through`, each portfolio in its own transaction.
    static var job: JobDefinition {
        snapshot.definition(maxAttempts: 3, lease: .seconds(600)) { context, request in
            let through = request.through ?? DayNumber.text((DayNumber.of(TradeDate.today(context.module.clock.now)) ?? 0) - 1)
            let portfolios = try await context.transaction(seesAllOwners: true) { transaction in
                // Books cached for holdings reads (`BookCache`) that nobody made for a week.
                try await transaction.query("DELETE FROM portfolio_book_cache WHERE cached_at < now() - interval '7 days'")
                return try await transaction.query("SELECT id FROM portfolio_portfolios ORDER BY id").map { row in
                    var columns = RowReader(row)
                    let id: UUID = try columns.next()
                    return id
                }
            }
            for portfolio in portfolios {
                try await context.transaction(seesAllOwners: true) { transaction in
                    _ = try await store(portfolio, through: through, on: transaction)
                }
            }
        }
    }

    /// Values `id` through `through` from the day after its last stored valuation; the
    /// number of days written.
    static func store(_ id: UUID, through: String, on transaction: TenantTransaction) async throws -> Int {
        guard let end = DayNumber.of(through) else { return 0 }
        let portfolio = try await PortfolioStore.table.find(id, on: transaction, forUpdate: true)
        let last = try await transaction.query("SELECT max(as_of)::text FROM portfolio_valuations WHERE portfolio_id = \(id)").first.flatMap { row -> String? in
            var columns = RowReader(row)
            return try columns.next()
        }
        let inputs = try await PerformanceReport.inputs(of: portfolio, through: through, on: transaction)
        let all = try await ComputePool.shared.run {
            try PerformanceReport.daily(
                entries: inputs.entries, splits: inputs.splits, method: portfolio.costMethod, base: portfolio.baseCurrency,
                closes: try PerformanceReport.closeTexts(ofArrays: inputs.closes), manual: try PerformanceReport.series(inputs.manual),
                rates: try PerformanceReport.series(inputs.rates), through: end)
        }
        let after = last.flatMap(DayNumber.of) ?? Int.min
        let fresh = all.filter { $0.day > after }
        guard !fresh.isEmpty else { return 0 }
        _ = try await transaction.query(
            """
            INSERT INTO portfolio_valuations (tenant_id, portfolio_id, owner_id, as_of, value, inflow, outflow)
            SELECT \(transaction.tenantID), \(id), \(portfolio.ownerId), d::date, v::numeric, i::numeric, o::numeric
            FROM unnest(\(fresh.map { DayNumber.text($0.day) }), \(fresh.map { $0.value.description }), \(fresh.map { $0.inflow.description }),
                        \(fresh.map { $0.outflow.description })) AS f (d, v, i, o)
            ON CONFLICT (tenant_id, portfolio_id, as_of) DO UPDATE SET value = excluded.value, inflow = excluded.inflow, outflow = excluded.outflow,
                computed_at = now()
            """)
        return fresh.count
    }

    /// The stored days from `from − 1` through `to` when the valuations cover every day
    /// from the ledger's first (`firstDay`) through `to` with none missing; else nil.
    static func days(of id: UUID, firstDay: String, from: Int, to: Int, on transaction: TenantTransaction) async throws -> [Returns.Day]? {
        guard let first = DayNumber.of(firstDay) else { return nil }
        let coverage = try await transaction.query(
            "SELECT min(as_of)::text, max(as_of)::text, count(*)::int8 FROM portfolio_valuations WHERE portfolio_id = \(id)")
        guard let row = coverage.first else { return nil }
        var columns = RowReader(row)
        let (low, high, count): (String?, String?, Int64) = (try columns.next(), try columns.next(), try columns.next())
        guard let low = low.flatMap(DayNumber.of), let high = high.flatMap(DayNumber.of), low == first, high >= to, Int64(high - low + 1) == count else { return nil }
        let rows = try await transaction.query(
            """
            SELECT as_of::text, value::text, inflow::text, outflow::text FROM portfolio_valuations
            WHERE portfolio_id = \(id) AND as_of BETWEEN \(DayNumber.text(from - 1))::date AND \(DayNumber.text(to))::date ORDER BY as_of
            """)
        return try rows.map { row in
            var columns = RowReader(row)
            let day: String = try columns.next()
            func exact(_ text: String) -> Decimal { DecimalString(text)?.value ?? Decimal(string: text) ?? 0 }
            return Returns.Day(
                day: DayNumber.of(day) ?? 0, value: exact(try columns.next()), inflow: exact(try columns.next()), outflow: exact(try columns.next()))
        }
    }

    /// Forgets a portfolio's valuations from `date` on (a change dated then).
    static func invalidate(_ portfolio: UUID, from date: String, on transaction: TenantTransaction) async throws {
        _ = try await transaction.query("DELETE FROM portfolio_valuations WHERE portfolio_id = \(portfolio) AND as_of >= \(date)::date")
    }

    /// Forgets every portfolio's valuations from `date` on (the market changed then):
    /// the market's routes see no owner's rows, so this one statement sees them all.
    static func invalidateAll(from date: String, on transaction: TenantTransaction) async throws {
        try await transaction.connection.scopeToAllOwners(logger: transaction.logger)
        _ = try await transaction.query("DELETE FROM portfolio_valuations WHERE as_of >= \(date)::date")
    }
}
