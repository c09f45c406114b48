@testable import AtriumCore
import AtriumTesting
import Foundation
import Hummingbird
import HummingbirdTesting
import PostgresNIO
import Testing

@Suite("API calls counted in memory")
struct APICallCounterTests {
    @Test func monthStartsAgreeWithTheCalendar() throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = try #require(TimeZone(identifier: "UTC"))
        // Every 9 hours and 7 minutes over 130 years, leap days and centuries included.
        var time = Date(timeIntervalSince1970: -2_208_988_800)  // 1900-01-01
        while time < Date(timeIntervalSince1970: 1_893_456_000) {  // 2030-01-01
            let expected = try #require(calendar.date(from: calendar.dateComponents([.year, .month], from: time)))
            #expect(APICallCounter.month(of: time) == expected, "\(time)")
            time += 9 * 3_600 + 7 * 60
        }
    }

    /// Reserves and admits one call; false when the quota refuses it.
    static func call(_ counter: APICallCounter, _ tenant: Tenant, quota: Int64?, on connection: PostgresConnection) async throws -> Bool {
        let reservation = try await counter.reserve(tenantID: tenant.id, quota: quota, on: connection)
        do {
            try counter.admit(reservation)
            return true
        } catch let error as AtriumError where error.code == "quota_exceeded" {
            return false
        }
    }

    @Test func oneProcessAdmitsExactlyTheQuotaAndAFlushCountsOnce() async throws {
        let db = try await TestDatabase.create()
        let acme = try await db.createTenant("acme")
        let metering = Metering(registry: try ModuleRegistry([]), logger: TestDatabase.logger)
        try await db.withApp { database in
            let counter = APICallCounter(metering: metering, logger: TestDatabase.logger)
            let outcomes = try await database.client.withConnection { connection in
                var outcomes: [Bool] = []
                for _ in 0..<12 { outcomes.append(try await Self.call(counter, acme, quota: 7, on: connection)) }
                return outcomes
            }
            #expect(outcomes == Array(repeating: true, count: 7) + Array(repeating: false, count: 5))
            #expect(await counter.flush(database: database) == 7)
            #expect(await counter.flush(database: database) == 0)  // nothing new
            // A process started afresh finds the month handed out.
            let restarted = APICallCounter(metering: metering, logger: TestDatabase.logger)
            let (refused, unlimited) = try await database.client.withConnection { connection in
                let refused = try await Self.call(restarted, acme, quota: 7, on: connection) == false
                var unlimited = 0
                for _ in 0..<3 where try await Self.call(restarted, acme, quota: nil, on: connection) { unlimited += 1 }
                return (refused, unlimited)
            }
            #expect(refused && unlimited == 3)
            #expect(await restarted.flush(database: database) == 3)
            let (events, sum) = try await database.withTenantTransaction(acme.id, logger: TestDatabase.logger) { connection in
                try await connection.query(
                    "SELECT count(*)::int, sum(quantity)::int FROM usage_records WHERE meter = 'kernel.api_calls'", logger: TestDatabase.logger
                ).collect().first?.decode((Int, Int).self) ?? (0, 0)
            }
            #expect(events == 2)  // one event per flush, carrying the count
            #expect(sum == 10)
        }
    }

    @Test func processesShareTheQuotaByLeasesAndGiveBackWhatTheyDidNotUse() async throws {
        let db = try await TestDatabase.create()
        let acme = try await db.createTenant("acme")
        let metering = Metering(registry: try ModuleRegistry([]), logger: TestDatabase.logger)
        try await db.withApp { database in
            let (first, second) = (APICallCounter(metering: metering, logger: TestDatabase.logger),
                                   APICallCounter(metering: metering, logger: TestDatabase.logger))
            // Each takes a slice (a sixteenth of what is left: 6, then 5 of the 94 left).
            // Calls alternate until both are refused: together they admit the quota exactly.
            let (admittedFirst, admittedSecond) = try await database.client.withConnection { connection in
                var admitted = (0, 0)
                var open = (true, true)
                for _ in 0..<150 where open.0 || open.1 {  // bounded: a broken quota must fail, not spin
                    if open.0 { if try await Self.call(first, acme, quota: 100, on: connection) { admitted.0 += 1 } else { open.0 = false } }
                    if open.1 { if try await Self.call(second, acme, quota: 100, on: connection) { admitted.1 += 1 } else { open.1 = false } }
                }
                return admitted
            }
            #expect(admittedFirst + admittedSecond == 100)
            #expect(admittedFirst > 0 && admittedSecond > 0)

            // Next month: a process that stops gives its unused slice back, so another can
            // admit it; one killed with -9 does not, and the tenant is refused that much early.
            let next = Date(timeIntervalSince1970: 4_102_444_800)  // 2100-01-01
            let stopping = APICallCounter(metering: metering, logger: TestDatabase.logger)
            let killed = APICallCounter(metering: metering, logger: TestDatabase.logger)
            let survivor = APICallCounter(metering: metering, logger: TestDatabase.logger)
            let admittedAfter = try await database.client.withConnection { connection in
                try stopping.admit(try await stopping.reserve(tenantID: acme.id, quota: 100, at: next, on: connection))  // leases 6
                #expect(await stopping.returnUnused(database: database) == 5)
                try killed.admit(try await killed.reserve(tenantID: acme.id, quota: 100, at: next, on: connection))  // leases 6 of 99
                var admitted = 0
                for _ in 0..<150 {
                    let reservation = try await survivor.reserve(tenantID: acme.id, quota: 100, at: next, on: connection)
                    do { try survivor.admit(reservation) } catch { break }
                    admitted += 1
                }
                return admitted
            }
            #expect(admittedAfter == 100 - 1 - 6)  // the killed process's 5 unused calls are lost
        }
    }

    @Test func aFailedFlushKeepsTheCountsAndItsRetryCountsThemOnce() async throws {
        let db = try await TestDatabase.create()
        let acme = try await db.createTenant("acme")
        let registry = try ModuleRegistry([])
        try await db.withApp { database in
            let dependencies = ApplicationDependencies(
                database: database, registry: registry, authenticator: TestAuthenticator(), logger: TestDatabase.logger,
                expectedMigrations: try registry.allMigrations())
            let counter = dependencies.apiCalls
            let counted = try await database.client.withConnection { connection in
                var counted = 0
                for _ in 0..<3 where try await Self.call(counter, acme, quota: nil, on: connection) { counted += 1 }
                return counted
            }
            #expect(counted == 3)
            // The database refuses the write (as it would when down or read-only).
            try await db.withOwner { connection in
                try await connection.query("REVOKE INSERT ON usage_events FROM atrium_app", logger: TestDatabase.logger)
            }
            #expect(await counter.flush(database: database) == 0)
            #expect(counter.unrecorded == 3)
            #expect(counter.failure != nil)
            let app = Application(router: buildRouter(dependencies), logger: TestDatabase.logger)
            try await app.test(.router) { client in
                let ready = try await client.execute(uri: "/readyz", method: .get)
                #expect(json(ready)["checks"]?["api_call_counts"]?.string == "3 calls not recorded yet: the last flush failed")
            }
            try await db.withOwner { connection in
                try await connection.query("GRANT INSERT ON usage_events TO atrium_app", logger: TestDatabase.logger)
            }
            #expect(await counter.flush(database: database) == 3)
            #expect(await counter.flush(database: database) == 0)
            #expect(counter.failure == nil)
            let sum = try await database.withTenantTransaction(acme.id, logger: TestDatabase.logger) { connection in
                try await connection.query(
                    "SELECT sum(quantity)::int FROM usage_records WHERE meter = 'kernel.api_calls'", logger: TestDatabase.logger
                ).collect().first?.decode(Int?.self) ?? nil
            }
            #expect(sum == 3)
        }
    }
}
