public import Foundation
public import Logging
import PostgresNIO

/// The billing jobs every worker runs when a plan catalog is configured.
///
/// `kernel.billing.close` runs daily for every active tenant: it drafts the invoice of
/// the month that ended (idempotently), finalizes drafts whose month ended more than
/// `finalizeAfterDays` ago (late usage until then lands on the draft itself; after
/// that it becomes an adjustment on the next invoice), and moves time-driven
/// subscription states (trial ended, payment overdue).
public enum BillingJobs {
    public static let closeJob = "kernel.billing.close"
    public static let finalizeAfterDays = 3

    /// `outbound` says which addresses webhook endpoints may have (`ATRIUM_OUTBOUND_ALLOW`).
    public static func definitions(
        catalog: PlanCatalog, metering: Metering, masterKey: MasterKey?, outbound: OutboundAddressPolicy = .publicInternet, logger: Logger
    ) -> [JobDefinition] {
        [
            Webhooks(masterKey: masterKey, outbound: outbound, logger: logger).definition(),
            JobDefinition(kind: closeJob, maxAttempts: 5, backoff: .seconds(60)) { context in
                guard let tenantID = context.tenantID else { return }
                try await closeAndFinalize(tenantID: tenantID, catalog: catalog, metering: metering, database: context.database, logger: context.logger)
            },
        ]
    }

    public static var schedules: [ScheduleDefinition] {
        [ScheduleDefinition(name: closeJob, kind: closeJob, every: .seconds(86_400), perTenant: true)]
    }

    /// What the daily job does for one tenant; also `atrium invoices close`'s core.
    public static func closeAndFinalize(
        tenantID: UUID, catalog: PlanCatalog, metering: Metering, database: Database, now: Date = Date(), logger: Logger
    ) async throws {
        let invoices = Invoices(catalog: catalog, metering: metering, logger: logger)
        let lastMonth = try Metering.period(nil, now: try Metering.period(nil, now: now).addingTimeInterval(-1))
        try await database.withTenantTransaction(tenantID, logger: logger) { connection in
            _ = try await invoices.close(period: lastMonth, tenantID: tenantID, now: now, on: connection)  // nil: not subscribed then
            let due = try await connection.query(
                """
                SELECT id FROM invoices WHERE status = 'draft'
                  AND (period + interval '1 month' + make_interval(days => \(finalizeAfterDays)::int)) <= \(now)::timestamptz AT TIME ZONE 'UTC'
                ORDER BY period
                """, logger: logger
            ).collect()
            for row in due { _ = try await invoices.finalize(try row.decode(UUID.self), tenantID: tenantID, on: connection) }
            try await Subscriptions(logger: logger).refreshStatus(tenantID: tenantID, now: now, on: connection)
        }
    }
}
