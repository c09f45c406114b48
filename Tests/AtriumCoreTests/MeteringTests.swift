import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import PostgresNIO
import Testing

struct UsageFixture: AtriumModule {
    var id: String { "usage" }
    var version: String { "1.0.0" }
    var requiredKernelVersion: String { "0.1" }
    var meters: [MeterDefinition] {
        [
            .init("usage.rows", aggregation: .sum, unit: "row"), .init("usage.peak", aggregation: .max, unit: "user"),
            .init("usage.accounts", aggregation: .uniqueCount, unit: "account"), .init("usage.storage", aggregation: .latest, unit: "byte"),
        ]
    }
    func routes(_ routes: ModuleRoutes) {}
}

@Suite("Metered usage")
struct MeteringTests {
    let logger = TestDatabase.logger

    func usage(_ db: TestDatabase, _ tenant: Tenant, modules: [any AtriumModule]) async throws -> [String: Int64] {
        let metering = Metering(registry: try ModuleRegistry(modules), logger: logger)
        return try await db.withApp { database in
            try await database.withTenantTransaction(tenant.id, logger: logger) { connection in
                try await metering.usage(period: try Metering.period(nil), on: connection)
            }
        }.reduce(into: [String: Int64]()) { $0[$1.meter] = $1.value }
    }

    @Test func aggregationsRollbackAndIdempotency() async throws {
        let db = try await TestDatabase.create()
        let acme = try await db.createTenant("acme")
        let metering = Metering(registry: try ModuleRegistry([UsageFixture()]), logger: logger)
        try await db.withApp { database in
            try await database.withTenantTransaction(acme.id, logger: logger) { connection in
                for (index, rows) in [5, 7].enumerated() {
                    try await metering.record("usage.rows", quantity: Int64(rows), idempotencyKey: "import-\(index)", at: Date(), properties: [:], tenantID: acme.id, on: connection)
                }
                for (index, peak) in [3, 9, 4].enumerated() {
                    try await metering.record("usage.peak", quantity: Int64(peak), idempotencyKey: "peak-\(index)", at: Date(), properties: [:], tenantID: acme.id, on: connection)
                }
                for (index, account) in ["a", "b", "a"].enumerated() {
                    try await metering.record("usage.accounts", quantity: 1, idempotencyKey: "acct-\(index)", at: Date(), properties: ["unique_key": .string(account)], tenantID: acme.id, on: connection)
                }
                try await metering.record("usage.storage", quantity: 100, idempotencyKey: "s1", at: Date().addingTimeInterval(-60), properties: [:], tenantID: acme.id, on: connection)
                try await metering.record("usage.storage", quantity: 80, idempotencyKey: "s2", at: Date(), properties: [:], tenantID: acme.id, on: connection)
                // The same key again records nothing.
                let repeated = try await metering.record("usage.rows", quantity: 1000, idempotencyKey: "import-0", at: Date(), properties: [:], tenantID: acme.id, on: connection)
                #expect(repeated == false)
            }
            // A rolled-back business write records no usage.
            await #expect(throws: AtriumError.self) {
                try await database.withTenantTransaction(acme.id, logger: logger) { connection in
                    try await metering.record("usage.rows", quantity: 50, idempotencyKey: "doomed", at: Date(), properties: [:], tenantID: acme.id, on: connection)
                    throw AtriumError.validation(field: "x", "fails after recording")
                }
            }
        }
        let totals = try await usage(db, acme, modules: [UsageFixture()])
        #expect(totals["usage.rows"] == 12)
        #expect(totals["usage.peak"] == 9)
        #expect(totals["usage.accounts"] == 2)
        #expect(totals["usage.storage"] == 80)
        #expect(totals["kernel.api_calls"] == 0)
    }

    @Test func concurrentRetriesWithOneKeyRecordOnce() async throws {
        let db = try await TestDatabase.create()
        let acme = try await db.createTenant("acme")
        let metering = Metering(registry: try ModuleRegistry([UsageFixture()]), logger: logger)
        let recorded = try await db.withApp(maximumConnections: 8) { database in
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        try await database.withTenantTransaction(acme.id, logger: logger) { connection in
                            try await metering.record("usage.rows", quantity: 3, idempotencyKey: "retry-me", at: Date(), properties: [:], tenantID: acme.id, on: connection)
                        }
                    }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
        }
        #expect(recorded == 1)
        #expect(try await usage(db, acme, modules: [UsageFixture()])["usage.rows"] == 3)
    }

    @Test func modulesRecordInTheirTransactionAndAdminsReadUsage() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme", modules: ["notes"])
        try await withTestApp(db) { client, _ in
            let headers: HTTPFields = [.authorization: TestAuthenticator.header(acme, "notes.write", "kernel.billing.read"), .contentType: "application/json"]
            for title in ["a", "b", "c"] {
                _ = try await client.execute(uri: "/v1/tenants/acme/notes/notes", method: .post, headers: headers, body: ByteBuffer(string: #"{"title":"\#(title)"}"#))
            }
            _ = try await client.execute(uri: "/v1/tenants/acme/notes/notes", method: .post, headers: headers, body: ByteBuffer(string: #"{"title":""}"#))
            let report = json(try await client.execute(uri: "/v1/tenants/acme/billing/usage", method: .get, headers: headers))
            let notes = report["data"]?.array?.first { $0["meter"]?.string == "notes.created" }
            #expect(notes?["value"] == 3)
            #expect(notes?["aggregation"]?.string == "count")
            let bad = try await client.execute(uri: "/v1/tenants/acme/billing/usage?period=2026-13", method: .get, headers: headers)
            #expect(bad.status == .unprocessableContent)
            let denied = try await client.execute(uri: "/v1/tenants/acme/billing/usage", method: .get, headers: [.authorization: TestAuthenticator.header(acme, "notes.read")])
            #expect(denied.status == .forbidden)
        }
    }
}
