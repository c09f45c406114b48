@testable import AtriumCore
import AtriumTesting
import Foundation
import Logging
import PostgresNIO
import Testing

/// Usage a request records costs it no round trip and no shared lock: the record travels
/// in front of the request's next statement (or its `COMMIT`) and fails that statement if
/// it fails; it appends a pending row instead of moving the month's counter, and readers
/// add the pending rows in until `kernel.usage.fold` moves them.
@Suite("Usage recorded on the request path")
struct UsageRecordingTests {
    let logger = TestDatabase.logger

    func count(_ connection: PostgresConnection, _ sql: PostgresQuery) async throws -> Int {
        var value = -1
        for try await n in try await connection.query(sql, logger: logger).decode(Int.self) { value = n }
        return value
    }

    func rowsUsage(_ db: TestDatabase, _ tenant: Tenant) async throws -> Int64? {
        let metering = Metering(registry: try ModuleRegistry([UsageFixture()]), logger: logger)
        return try await db.withApp { database in
            try await database.withTenantTransaction(tenant.id, logger: logger) { connection in
                try await metering.usage(period: try Metering.period(nil), on: connection)
            }
        }.first { $0.meter == "usage.rows" }?.value
    }

    /// What a request's `recordUsage` runs, run directly on `connection`.
    func append(_ metering: Metering, _ meter: String, _ quantity: Int64, key: String, tenant: UUID, on connection: PostgresConnection) async throws {
        let statement = try metering.recordingStatement(meter, quantity: quantity, idempotencyKey: key, at: Date(), properties: [:], tenantID: tenant)
        _ = try await PreparedStatements.shared.rows(statement.sql, on: connection, logger: logger)
    }

    /// The old design moved one counter row per tenant and month in every metered write:
    /// a second writer queued on the first's row lock until it committed.
    @Test func aMeteredWriteDoesNotWaitForAnotherOfTheSameTenantAndMeter() async throws {
        let db = try await TestDatabase.create()
        let acme = try await db.createTenant("acme")
        let metering = Metering(registry: try ModuleRegistry([UsageFixture()]), logger: logger)
        try await db.withApp(maximumConnections: 2) { database in
            // Holds its record uncommitted until the second writer has committed.
            let (firstRecorded, recorded) = AsyncStream<Void>.makeStream()
            let (secondDone, done) = AsyncStream<Void>.makeStream()
            async let first: Void = database.withTenantTransaction(acme.id, logger: logger) { connection in
                try await append(metering, "usage.rows", 5, key: "first", tenant: acme.id, on: connection)
                recorded.yield()
                for await _ in secondDone { break }
            }
            for await _ in firstRecorded { break }
            try await database.withTenantTransaction(acme.id, logger: logger) { connection in
                try await connection.query("SET LOCAL lock_timeout = '3s'", logger: logger)
                try await append(metering, "usage.rows", 7, key: "second", tenant: acme.id, on: connection)
            }
            done.yield()
            try await first
        }
        #expect(try await rowsUsage(db, acme) == 12)
    }

    /// Folding moves what has committed and leaves what has not; the totals read the same
    /// before and after, and a quota counts pending usage.
    @Test func foldMovesCommittedPendingUsageAndTotalsReadTheSame() async throws {
        let db = try await TestDatabase.create()
        let acme = try await db.createTenant("acme")
        let metering = Metering(registry: try ModuleRegistry([UsageFixture()]), logger: logger)
        try await db.withApp(maximumConnections: 3) { database in
            for (index, rows) in [4, 6].enumerated() {
                try await database.withTenantTransaction(acme.id, logger: logger) { connection in
                    try await append(metering, "usage.rows", Int64(rows), key: "r\(index)", tenant: acme.id, on: connection)
                }
            }
            #expect(try await rowsUsage(db, acme) == 10)
            let (inFlightRecorded, recorded) = AsyncStream<Void>.makeStream()
            let (foldDone, folded) = AsyncStream<Void>.makeStream()
            async let inFlight: Void = database.withTenantTransaction(acme.id, logger: logger) { connection in
                try await append(metering, "usage.rows", 100, key: "late", tenant: acme.id, on: connection)
                recorded.yield()
                for await _ in foldDone { break }
            }
            for await _ in inFlightRecorded { break }
            let moved = try await database.withPlatformTransaction(logger: logger) { connection in
                try await Metering.fold(on: connection, logger: logger)
            }
            #expect(moved == 2)
            folded.yield()
            try await inFlight
            #expect(try await rowsUsage(db, acme) == 110)
            let (pending, events) = try await database.withPlatformTransaction(logger: logger) { connection in
                (try await count(connection, "SELECT count(*)::int FROM usage_pending"), try await count(connection, "SELECT count(*)::int FROM usage_events"))
            }
            #expect(pending == 1, "the record that had not committed waits for the next fold")
            #expect(events == 2)
            // A quota counts the pending record: 110 used, 5 more would pass 112.
            await #expect(throws: AtriumError.self) {
                try await database.withTenantTransaction(acme.id, logger: logger) { connection in
                    try await metering.record(
                        "usage.rows", quantity: 5, idempotencyKey: "over", at: Date(), properties: [:], tenantID: acme.id, quota: 112, on: connection)
                }
            }
            let again = try await database.withPlatformTransaction(logger: logger) { connection in
                try await Metering.fold(on: connection, logger: logger)
            }
            #expect(again == 1)
            // A key recorded and folded is a repeat; one pending beside its event (a retry
            // that raced the fold) counts once and the fold drops it.
            let repeated = try await database.withTenantTransaction(acme.id, logger: logger) { connection in
                try await metering.record("usage.rows", quantity: 4, idempotencyKey: "r0", at: Date(), properties: [:], tenantID: acme.id, on: connection)
            }
            #expect(!repeated)
            let copied = try await database.withTenantTransaction(acme.id, logger: logger) { connection in
                try await count(
                    connection,
                    """
                    WITH copied AS (
                        INSERT INTO usage_pending (tenant_id, meter, quantity, occurred_at, period, idempotency_key)
                        SELECT tenant_id, meter, quantity, occurred_at, period, idempotency_key FROM usage_events WHERE idempotency_key = 'r0'
                        RETURNING 1
                    ) SELECT count(*)::int FROM copied
                    """)
            }
            #expect(copied == 1)
            #expect(try await rowsUsage(db, acme) == 110)
            let raced = try await database.withPlatformTransaction(logger: logger) { connection in
                (try await Metering.fold(on: connection, logger: logger), try await count(connection, "SELECT count(*)::int FROM usage_pending"))
            }
            #expect(raced == (0, 0))
        }
        #expect(try await rowsUsage(db, acme) == 110)
        let reconciled = try await db.withApp { database in
            try await database.withTenantTransaction(acme.id, logger: logger) { connection in
                try await Reconciliation(metering: metering, logger: logger).run(period: try Metering.period(nil), on: connection)
            }
        }
        #expect(reconciled.differences.isEmpty)
    }

    /// The pending table keeps no key (a unique index and a foreign key cost a metered
    /// write a sixth of its throughput): a key recorded twice by requests is pending twice,
    /// and counted once, as first recorded, by the readers, the quota and the fold.
    @Test func aKeyPendingTwiceCountsOnceAsFirstRecorded() async throws {
        let db = try await TestDatabase.create()
        let acme = try await db.createTenant("acme")
        let metering = Metering(registry: try ModuleRegistry([UsageFixture()]), logger: logger)
        try await db.withApp { database in
            for (quantity, key) in [(Int64(3), "once"), (40, "once"), (5, "other")] {
                try await database.withTenantTransaction(acme.id, logger: logger) { connection in
                    try await append(metering, "usage.rows", quantity, key: key, tenant: acme.id, on: connection)
                }
            }
            let pending = try await database.withPlatformTransaction(logger: logger) { try await count($0, "SELECT count(*)::int FROM usage_pending") }
            #expect(pending == 3)
            #expect(try await rowsUsage(db, acme) == 8)
            let records = try await database.withTenantTransaction(acme.id, logger: logger) { connection in
                try await count(connection, "SELECT count(*)::int FROM usage_records WHERE idempotency_key = 'once' AND quantity = 3")
            }
            #expect(records == 1)
            // A quota sees 8 used: 4 more fit under 12, the first-recorded 3 counted once.
            try await database.withTenantTransaction(acme.id, logger: logger) { connection in
                try await metering.record(
                    "usage.rows", quantity: 4, idempotencyKey: "fits", at: Date(), properties: [:], tenantID: acme.id, quota: 12, on: connection)
            }
            let moved = try await database.withPlatformTransaction(logger: logger) { connection in
                (try await Metering.fold(on: connection, logger: logger), try await count(connection, "SELECT count(*)::int FROM usage_pending"),
                 try await count(connection, "SELECT quantity::int FROM usage_events WHERE idempotency_key = 'once'"))
            }
            #expect(moved == (2, 0, 3))
        }
        #expect(try await rowsUsage(db, acme) == 12)
    }

    /// A tenant's pending usage goes with it (a trigger, as there is no foreign key to
    /// cascade), and another tenant's stays.
    @Test func deletingATenantRemovesItsPendingUsage() async throws {
        let db = try await TestDatabase.create()
        let acme = try await db.createTenant("acme")
        let globex = try await db.createTenant("globex")
        let metering = Metering(registry: try ModuleRegistry([UsageFixture()]), logger: logger)
        try await db.withApp { database in
            for tenant in [acme, globex] {
                try await database.withTenantTransaction(tenant.id, logger: logger) { connection in
                    try await append(metering, "usage.rows", 2, key: "k", tenant: tenant.id, on: connection)
                }
            }
        }
        try await db.withOwner { owner in
            try await owner.query("DELETE FROM tenants WHERE id = \(acme.id)", logger: logger)
            // The deleting transaction's scope is its own again after the trigger.
            let scope = try await count(owner, "SELECT length(coalesce(current_setting('app.scope', true), ''))")
            #expect(scope == 0)
        }
        let (left, moved) = try await db.withApp { database in
            try await database.withPlatformTransaction(logger: logger) { connection in
                (try await count(connection, "SELECT count(*)::int FROM usage_pending WHERE tenant_id = \(acme.id)"),
                 try await Metering.fold(on: connection, logger: logger))
            }
        }
        #expect(left == 0)
        #expect(moved == 1)
        #expect(try await rowsUsage(db, globex) == 2)
    }

    /// On a request's connection the record goes in the write of the statement after it:
    /// a metered one-statement create is one round trip, committed by its `Sync`.
    @Test func aRecordTravelsWithTheNextStatementAndFailsItWhenItFails() async throws {
        let db = try await TestDatabase.create()
        let acme = try await db.createTenant("acme")
        try await db.withOwner { owner in
            try await owner.query("CREATE TABLE probe (tenant_id uuid NOT NULL, n int NOT NULL)", logger: logger)
            // Refuses the record of a large quantity, as a broken usage table would.
            try await owner.query("ALTER TABLE usage_pending ADD CONSTRAINT probe_small CHECK (quantity < 1000)", logger: logger)
        }
        let metering = Metering(registry: try ModuleRegistry([UsageFixture()]), logger: logger)
        try await PipelinedBeginTests().withPool(db) { pool in
            try await pool.withConnection { pooled in
                let connection = pooled.connection
                try await EventLoopTaskExecutor.run(on: connection.eventLoop) {
                    func transaction() -> (RequestTransaction, TenantTransaction) {
                        Self.requestTransaction(on: pooled, tenant: acme.id, metering: metering, logger: logger)
                    }
                    func end(_ request: RequestTransaction) { request.returnLease() }
                    func rows(_ table: String) async throws -> Int {
                        pooled.beginWithNextStatement()
                        _ = pooled.setLocallyWithBegin([("app.tenant_id", acme.id.uuidString)])
                        let counted = try await count(connection, "SELECT count(*)::int FROM \(unescaped: table)")
                        try await TransactionControl.commit(on: connection, logger: logger)
                        return counted
                    }

                    // Record, then the block's one statement: one write, one round trip.
                    var before = pool.counters.roundTrips
                    let (one, metered) = transaction()
                    try await metered.recordUsage("usage.rows", quantity: 3, idempotencyKey: "create-1")
                    // (An unnamed statement: a prepared one's first use prepares it in a write of its own.)
                    _ = try await metered.lastStatement { try await connection.query("INSERT INTO probe VALUES (\(acme.id), 1)", logger: logger) }
                    try await one.commit()
                    end(one)
                    #expect(pool.counters.roundTrips - before == 1)
                    #expect(try await rows("probe") == 1)
                    #expect(try await rows("usage_records") == 1)

                    // A block that only records: its COMMIT carries the record.
                    before = pool.counters.roundTrips
                    let (two, recordOnly) = transaction()
                    try await recordOnly.recordUsage("usage.rows", quantity: 4, idempotencyKey: "record-only")
                    try await two.commit()
                    end(two)
                    #expect(pool.counters.roundTrips - before == 1)
                    #expect(try await rows("usage_records") == 2)

                    // A refused record fails the statement it travelled with; nothing of the
                    // block is written, and the connection serves the next one.
                    let (three, refused) = transaction()
                    try await refused.recordUsage("usage.rows", quantity: 5000, idempotencyKey: "too-large")
                    do {
                        _ = try await refused.lastStatement { try await refused.query("INSERT INTO probe VALUES (\(acme.id), 2)") }
                        Issue.record("the statement behind a refused record succeeded")
                    } catch let error as PSQLError {
                        #expect(error.serverInfo?[.sqlState] == "23514")
                        #expect(error.serverInfo?[.constraintName] == "probe_small")
                    }
                    await three.rollback()
                    end(three)
                    #expect(try await rows("probe") == 1)
                    #expect(try await rows("usage_records") == 2)

                    // The same with a statement before the record: the transaction has begun.
                    let (four, later) = transaction()
                    try await later.query("INSERT INTO probe VALUES (\(acme.id), 3)")
                    try await later.recordUsage("usage.rows", quantity: 6000, idempotencyKey: "too-large-later")
                    await #expect(throws: PSQLError.self) { try await four.commit() }
                    await four.rollback()
                    end(four)
                    #expect(try await rows("probe") == 1)

                    // A block that fails after recording: the record is dropped with it.
                    let (five, doomed) = transaction()
                    try await doomed.recordUsage("usage.rows", quantity: 7, idempotencyKey: "doomed")
                    await five.rollback()
                    end(five)
                    #expect(try await rows("usage_records") == 2)
                    #expect(try await rows("probe") == 1)
                }
            }
        }
        #expect(try await rowsUsage(db, acme) == 7)

        // A request is not told whether its key was new, so its record does not look into
        // the recorded events: a key folded there already waits beside it, counted once.
        let folded = try await db.withApp { database in
            try await database.withPlatformTransaction(logger: logger) { try await Metering.fold(on: $0, logger: logger) }
        }
        #expect(folded == 2)
        try await PipelinedBeginTests().withPool(db) { pool in
            try await pool.withConnection { pooled in
                let connection = pooled.connection
                try await EventLoopTaskExecutor.run(on: connection.eventLoop) {
                    let (request, retried) = Self.requestTransaction(on: pooled, tenant: acme.id, metering: metering, logger: logger)
                    try await retried.recordUsage("usage.rows", quantity: 100, idempotencyKey: "create-1")
                    try await request.commit()
                    request.returnLease()
                }
            }
        }
        #expect(try await rowsUsage(db, acme) == 7)
        let (records, dropped) = try await db.withApp { database in
            try await database.withPlatformTransaction(logger: logger) { connection in
                (try await count(connection, "SELECT count(*)::int FROM usage_records"), try await Metering.fold(on: connection, logger: logger))
            }
        }
        #expect(records == 2)
        #expect(dropped == 0)
    }

    /// A request's first transaction on `pooled`, as the tenant middleware opens it: the
    /// `BEGIN` and the tenant's scope wait for the first statement, which may carry the commit.
    static func requestTransaction(on pooled: RequestConnection, tenant: UUID, metering: Metering, logger: Logger)
        -> (RequestTransaction, TenantTransaction)
    {
        let connection = pooled.connection
        pooled.beginWithNextStatement()
        _ = pooled.setLocallyWithBegin([("app.tenant_id", tenant.uuidString)])
        let request = RequestTransaction(connection: connection, logger: logger, lease: RequestLease(connection: connection, pipelined: pooled))
        var transaction = TenantTransaction(
            connection: connection, tenantID: tenant, principalID: nil, logger: logger, jobs: JobQueue(logger: logger), metering: metering, channels: [])
        transaction.gate = StatementGate(request: request)
        return (request, transaction)
    }
}
