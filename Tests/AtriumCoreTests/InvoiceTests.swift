import AtriumCore
import AtriumTesting
import Foundation
import Logging
import PostgresNIO
import Testing

/// Closing months into invoices against a real database: idempotency, proration from
/// the recorded plan history, immutability, late usage and reconciliation.
@Suite("Invoices")
struct InvoiceTests {
    let logger = TestDatabase.logger
    static let catalogText = """
        plans:
          free:
            name: Free
            price: 0
            meters:
              usage.rows: { graduated: [ { up_to: 100, unit: 0 }, { unit: 2, flat: 100 } ] }
          pro:
            name: Pro
            price: 1999
            meters:
              usage.rows: { per_unit: 1 }
        """

    struct Fixture {
        let db: TestDatabase
        let tenant: Tenant
        let catalog: PlanCatalog
        let metering: Metering
        let invoices: Invoices

        @discardableResult
        func inTenant<Result: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> Result) async throws -> Result {
            let tenantID = tenant.id
            return try await db.withOwner { connection in
                try await connection.withTenantTransaction(tenantID, logger: TestDatabase.logger) { connection in try await body(connection) }
            }
        }

        func record(_ quantity: Int64, key: String, at time: Date) async throws {
            let (metering, tenantID) = (metering, tenant.id)
            try await inTenant { connection in
                try await metering.record("usage.rows", quantity: quantity, idempotencyKey: key, at: time, properties: [:], tenantID: tenantID, on: connection)
            }
        }

        /// Rewrites the tenant's plan history as if it had been on `spans` (plan, start, end).
        func setPlanHistory(_ spans: [(String, String, String?)]) async throws {
            let tenantID = tenant.id
            try await db.withOwner { connection in
                try await connection.withPlatformTransaction(logger: TestDatabase.logger) { connection in
                    try await connection.query("DELETE FROM plan_periods WHERE tenant_id = \(tenantID)", logger: TestDatabase.logger)
                    for (plan, start, end) in spans {
                        try await connection.query(
                            "INSERT INTO plan_periods (tenant_id, plan, started_at, ended_at) VALUES (\(tenantID), \(plan), \(start)::timestamptz, \(end)::timestamptz)",
                            logger: TestDatabase.logger)
                    }
                }
            }
        }
    }

    func fixture() async throws -> Fixture {
        let db = try await TestDatabase.create()
        let tenant = try await db.createTenant("acme")
        try await db.backdateSubscription(of: tenant)
        let catalog = try PlanCatalog.parse(Self.catalogText, path: "plans.yaml")
        let metering = Metering(registry: try ModuleRegistry([UsageFixture()]), catalog: catalog, logger: logger)
        try await db.withOwner { connection in try await MeterDeclarations(metering: metering, logger: TestDatabase.logger).synchronize(on: connection) }
        return Fixture(db: db, tenant: tenant, catalog: catalog, metering: metering, invoices: Invoices(catalog: catalog, metering: metering, logger: logger))
    }

    @Test func closingTwiceOrConcurrentlyYieldsOneInvoice() async throws {
        let fixture = try await fixture()
        let september = try Metering.period("2026-09")
        try await fixture.record(150, key: "a", at: september.addingTimeInterval(86_400))
        let invoices = fixture.invoices
        let tenantID = fixture.tenant.id
        // Two closers at once, on two connections.
        let closings = try await withThrowingTaskGroup(of: Invoices.Closing.self) { group in
            for _ in 0..<2 {
                group.addTask { try #require(try await fixture.inTenant { try await invoices.close(period: september, tenantID: tenantID, on: $0) }) }
            }
            return try await group.reduce(into: [Invoices.Closing]()) { $0.append($1) }
        }
        #expect(Set(closings.map(\.invoice.id)).count == 1)
        #expect(closings.filter(\.created).count == 1)
        let again = try #require(try await fixture.inTenant { try await invoices.close(period: september, tenantID: tenantID, on: $0) })
        #expect(again.created == false)
        #expect(again.invoice.id == closings[0].invoice.id)
        #expect(again.invoice.number == "ACME-202609")
        let count = try await fixture.inTenant { connection in
            try await connection.query("SELECT count(*)::int FROM invoices", logger: TestDatabase.logger).collect().first?.decode(Int.self)
        }
        #expect(count == 1)
        // A month that ended before the subscription began has nothing to bill.
        let before = try await fixture.inTenant { try await invoices.close(period: try Metering.period("2025-12"), tenantID: tenantID, on: $0) }
        #expect(before == nil)
        // The current month has not ended: it cannot be closed.
        await #expect(throws: AtriumError.self) {
            try await fixture.inTenant { try await invoices.close(period: try Metering.period(nil), tenantID: tenantID, on: $0) }
        }
    }

    @Test func aMidMonthPlanChangeIsProratedFromTheRecordedHistory() async throws {
        let fixture = try await fixture()
        // The database records plan changes itself: a change adds a period.
        try await fixture.db.withOwner { connection in
            _ = try await PlanChange(catalog: fixture.catalog, logger: TestDatabase.logger).change(
                slug: "acme", to: "pro", actor: .init(type: .operator, id: "test"), on: connection)
        }
        let history = try await fixture.inTenant { connection in
            try await connection.query("SELECT plan, ended_at IS NULL FROM plan_periods ORDER BY started_at", logger: TestDatabase.logger)
                .collect().map { try $0.decode((String, Bool).self) }
        }
        #expect(history.map(\.0) == ["free", "pro"])
        #expect(history.map(\.1) == [false, true])
        // October (31 days): free until the 16th, Pro from then: 1999 × 16/31 = 1031.74 → 1032.
        try await fixture.setPlanHistory([("free", "2026-10-01T00:00:00Z", "2026-10-16T00:00:00Z"), ("pro", "2026-10-16T00:00:00Z", nil)])
        try await fixture.record(40, key: "oct", at: try Metering.period("2026-10").addingTimeInterval(3600))
        let (invoices, tenantID) = (fixture.invoices, fixture.tenant.id)
        let invoice = try #require(try await fixture.inTenant { try await invoices.close(period: try Metering.period("2026-10"), tenantID: tenantID, on: $0) }).invoice
        let lines = try #require(invoice.lines)
        #expect(lines.map(\.kind) == [.subscription, .subscription, .usage])
        #expect(lines.map(\.amount) == [0, 1032, 40])  // rows priced by Pro, the plan at the month's end
        #expect(invoice.total == 1072)
        #expect(invoice.plan == "pro")
        #expect(invoice.status == .draft)
    }

    @Test func finalizedInvoicesAreFrozenAndLateUsageIsAdjustedOnTheNextOne() async throws {
        let fixture = try await fixture()
        try await fixture.setPlanHistory([("free", "2026-08-01T00:00:00Z", nil)])
        let (august, september) = (try Metering.period("2026-08"), try Metering.period("2026-09"))
        try await fixture.record(90, key: "aug-1", at: august.addingTimeInterval(86_400))
        let (invoices, tenantID) = (fixture.invoices, fixture.tenant.id)
        let draft = try #require(try await fixture.inTenant { try await invoices.close(period: august, tenantID: tenantID, on: $0) }).invoice
        // Usage arriving while the invoice is a draft lands on the draft when it is finalized.
        try await fixture.record(20, key: "aug-2", at: august.addingTimeInterval(2 * 86_400))
        let (finalized, changed) = try await fixture.inTenant { try await invoices.finalize(draft.id, tenantID: tenantID, on: $0) }
        #expect(changed)
        #expect(finalized.status == .finalized)
        #expect(finalized.lines?.last?.quantity == 110)
        #expect(finalized.total == 120)  // 100 free, 10 × 2 + 100 flat
        // Finalizing again changes nothing; the database refuses edits by anyone.
        let repeated = try await fixture.inTenant { try await invoices.finalize(draft.id, tenantID: tenantID, on: $0) }
        #expect(repeated.changed == false)
        await expectDatabaseError("23514") {
            try await fixture.inTenant { connection in
                try await connection.query("UPDATE invoice_lines SET amount = 0", logger: TestDatabase.logger)
            }
        }
        await expectDatabaseError("23514") {
            try await fixture.inTenant { connection in
                try await connection.query("UPDATE invoices SET total = 1", logger: TestDatabase.logger)
            }
        }
        // Late August usage after finalization.
        try await fixture.record(30, key: "aug-late", at: august.addingTimeInterval(3 * 86_400))
        let reconciliation = Reconciliation(metering: fixture.metering, logger: logger)
        let pending = try await fixture.inTenant { try await reconciliation.run(period: august, on: $0) }
        #expect(pending.differences.map(\.kind) == [.awaitingAdjustment])
        #expect(pending.differences.first?.expected == 140)
        #expect(pending.differences.first?.found == 110)
        #expect(pending.consistent)
        let next = try #require(try await fixture.inTenant { try await invoices.close(period: september, tenantID: tenantID, on: $0) }).invoice
        let adjustment = try #require(next.lines?.first { $0.kind == .adjustment })
        #expect(adjustment.quantity == 30)
        #expect(adjustment.amount == 60)  // 140 rows cost 180, 110 cost 120
        #expect(adjustment.usagePeriod == august)
        // The August invoice itself is unchanged.
        let august2 = try await fixture.inTenant { try await invoices.find(draft.id, on: $0) }
        #expect(august2?.total == 120)
        // Once September is finalized, August reconciles exactly.
        _ = try await fixture.inTenant { try await invoices.finalize(next.id, tenantID: tenantID, on: $0) }
        let settled = try await fixture.inTenant { try await reconciliation.run(period: august, on: $0) }
        #expect(settled.differences.isEmpty)
        // Paid and void follow the lifecycle; a paid invoice cannot be voided.
        let paid = try await fixture.inTenant { try await invoices.markPaid(draft.id, tenantID: tenantID, on: $0) }
        #expect(paid.status == .paid)
        await #expect(throws: AtriumError.self) { try await fixture.inTenant { try await invoices.void(draft.id, on: $0) } }
    }

    @Test func theDailyJobClosesFinalizesAndMovesTheSubscriptionThroughItsStates() async throws {
        let fixture = try await fixture()
        let (db, tenantID, logger) = (fixture.db, fixture.tenant.id, logger)
        let subscriptions = Subscriptions(logger: logger)
        // A trial: 10 days from now.
        try await fixture.inTenant { try await subscriptions.startTrial(days: 10, on: $0) }
        #expect(try await fixture.inTenant { try await subscriptions.find(on: $0) }?.status == .trialing)
        // The job on the 2nd of a month drafts last month; on the 5th it finalizes it.
        let now = Date()
        let firstOfMonth = try Metering.period(nil, now: now)
        try await db.withApp { database in
            try await BillingJobs.closeAndFinalize(
                tenantID: tenantID, catalog: fixture.catalog, metering: fixture.metering, database: database,
                now: firstOfMonth.addingTimeInterval(86_400), logger: logger)
        }
        let lastMonth = try Metering.period(nil, now: firstOfMonth.addingTimeInterval(-1))
        let drafted = try await fixture.inTenant { try await fixture.invoices.find(period: lastMonth, on: $0) }
        #expect(drafted?.status == .draft)
        try await db.withApp { database in
            try await BillingJobs.closeAndFinalize(
                tenantID: tenantID, catalog: fixture.catalog, metering: fixture.metering, database: database,
                now: firstOfMonth.addingTimeInterval(4 * 86_400), logger: logger)
        }
        let finalized = try await fixture.inTenant { try await fixture.invoices.find(period: lastMonth, on: $0) }
        #expect(finalized?.status == .finalized)
        // Unpaid 15 days after finalization: past due; the trial has ended by then, too.
        try await fixture.inTenant { try await subscriptions.refreshStatus(tenantID: tenantID, now: now.addingTimeInterval(15 * 86_400), on: $0) }
        #expect(try await fixture.inTenant { try await subscriptions.find(on: $0) }?.status == .pastDue)
        let invoiceID = try #require(finalized?.id)
        _ = try await fixture.inTenant { try await fixture.invoices.markPaid(invoiceID, tenantID: tenantID, on: $0) }
        // Paid today, while the trial still runs: trialing again; once it has ended, active.
        #expect(try await fixture.inTenant { try await subscriptions.find(on: $0) }?.status == .trialing)
        try await fixture.inTenant { try await subscriptions.refreshStatus(tenantID: tenantID, now: now.addingTimeInterval(15 * 86_400), on: $0) }
        #expect(try await fixture.inTenant { try await subscriptions.find(on: $0) }?.status == .active)
        try await fixture.inTenant { try await subscriptions.cancel(on: $0) }
        try await fixture.inTenant { try await subscriptions.refreshStatus(tenantID: tenantID, on: $0) }
        let canceled = try await fixture.inTenant { try await subscriptions.find(on: $0) }
        #expect(canceled?.status == .canceled)
        #expect(canceled?.canceledAt != nil)
    }

    @Test func reconciliationNamesACounterThatDisagreesWithItsEvents() async throws {
        let fixture = try await fixture()
        let october = try Metering.period("2026-10")
        var expected: Int64 = 0
        var generator = SeededGenerator(seed: 7)
        for index in 0..<40 {
            let quantity = Int64.random(in: 0...50, using: &generator)
            expected += quantity
            try await fixture.record(quantity, key: "e\(index)", at: october.addingTimeInterval(Double(index) * 3600))
        }
        let (metering, reconciliation) = (fixture.metering, Reconciliation(metering: fixture.metering, logger: logger))
        // Usage totals equal the sum of the events.
        let total = try await fixture.inTenant { try await metering.usage(period: october, on: $0) }.first { $0.meter == "usage.rows" }?.value
        #expect(total == expected)
        let clean = try await fixture.inTenant { try await reconciliation.run(period: october, on: $0) }
        #expect(clean.differences.isEmpty)
        #expect(clean.events == 40)
        // In the month's counter already (usage recorded outside a request does not wait in
        // usage_pending: the fold finds nothing), which is then edited.
        let folded = try await fixture.db.withApp { database in
            try await database.withPlatformTransaction(logger: TestDatabase.logger) { try await Metering.fold(on: $0, logger: TestDatabase.logger) }
        }
        #expect(folded == 0)
        #expect(try await fixture.inTenant { try await reconciliation.run(period: october, on: $0) }.differences.isEmpty)
        try await fixture.inTenant { connection in
            try await connection.query("UPDATE usage_counters SET quantity = quantity + 5 WHERE meter = 'usage.rows'", logger: TestDatabase.logger)
        }
        let tampered = try await fixture.inTenant { try await reconciliation.run(period: october, on: $0) }
        #expect(tampered.differences.map(\.kind) == [.counterMismatch])
        #expect(tampered.differences.first?.found == expected + 5)
        #expect(tampered.consistent == false)
    }

    @Test func aMeterWithEventsCannotChangeItsAggregation() async throws {
        let fixture = try await fixture()
        try await fixture.record(1, key: "x", at: Date())
        struct Changed: AtriumModule {
            var id: String { "usage" }
            var version: String { "2.0.0" }
            var requiredKernelVersion: String { "0.1" }
            var meters: [MeterDefinition] { [.init("usage.rows", aggregation: .max, unit: "row"), .init("usage.fresh", aggregation: .count, unit: "x")] }
            func routes(_ routes: ModuleRoutes) {}
        }
        let changed = Metering(registry: try ModuleRegistry([Changed()]), logger: logger)
        await #expect(throws: ConfigurationError.self) {
            try await fixture.db.withOwner { try await MeterDeclarations(metering: changed, logger: TestDatabase.logger).synchronize(on: $0) }
        }
        // A meter without events may still be redeclared.
        struct Unused: AtriumModule {
            var id: String { "usage" }
            var version: String { "2.0.0" }
            var requiredKernelVersion: String { "0.1" }
            var meters: [MeterDefinition] { [.init("usage.rows", aggregation: .sum, unit: "row"), .init("usage.peak", aggregation: .sum, unit: "user")] }
            func routes(_ routes: ModuleRoutes) {}
        }
        try await fixture.db.withOwner {
            try await MeterDeclarations(metering: Metering(registry: try ModuleRegistry([Unused()]), logger: TestDatabase.logger), logger: TestDatabase.logger)
                .synchronize(on: $0)
        }
    }
}

extension TestDatabase {
    /// Makes the tenant's current plan look in force since January 2026, so past months
    /// have something to bill.
    func backdateSubscription(of tenant: Tenant) async throws {
        try await withOwner { connection in
            try await connection.withPlatformTransaction(logger: TestDatabase.logger) { connection in
                try await connection.query(
                    "UPDATE plan_periods SET started_at = '2026-01-01T00:00:00Z' WHERE tenant_id = \(tenant.id)", logger: TestDatabase.logger)
            }
        }
    }
}
