@testable import AtriumCore
import Foundation
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

    @Test func oneProcessAdmitsExactlyTheQuotaAndAFlushCountsOnce() async throws {
        let db = try await TestDatabase.create()
        let acme = try await db.createTenant("acme")
        let metering = Metering(registry: try ModuleRegistry([]), logger: TestDatabase.logger)
        try await db.withApp { database in
            let counter = APICallCounter(metering: metering, logger: TestDatabase.logger)
            var admitted = 0
            var refused = 0
            for _ in 0..<12 {
                do {
                    try await counter.admit(tenantID: acme.id, quota: 7) { _ in 0 }
                    admitted += 1
                } catch let error as AtriumError {
                    #expect(error.code == "quota_exceeded")
                    refused += 1
                }
            }
            #expect((admitted, refused) == (7, 5))
            #expect(await counter.flush(database: database) == 7)
            #expect(await counter.flush(database: database) == 0)  // nothing new
            // After the flush the counter, not the memory, holds the month: still full.
            await #expect(throws: AtriumError.self) { try await counter.admit(tenantID: acme.id, quota: 7) { _ in 7 } }
            for _ in 0..<3 { try await counter.admit(tenantID: acme.id, quota: nil) { _ in 0 } }
            #expect(await counter.flush(database: database) == 3)
            let (events, sum) = try await database.withTenantTransaction(acme.id, logger: TestDatabase.logger) { connection in
                try await connection.query(
                    "SELECT count(*)::int, sum(quantity)::int FROM usage_events WHERE meter = 'kernel.api_calls'", logger: TestDatabase.logger
                ).collect().first?.decode((Int, Int).self) ?? (0, 0)
            }
            #expect(events == 2)  // one event per flush, carrying the count
            #expect(sum == 10)
        }
    }
}
