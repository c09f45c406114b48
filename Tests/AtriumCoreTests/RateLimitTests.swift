import AtriumCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Synchronization
import PostgresNIO
import Testing

/// A clock the test moves by hand.
final class ManualClock: Sendable {
    private let now = Mutex(Date(timeIntervalSince1970: 1_700_000_000))
    func read() -> Date { now.withLock { $0 } }
    func advance(_ seconds: TimeInterval) { now.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

@Suite("Plan rate limits on tenant routes")
struct RateLimitTests {
    @Test func limitedRequestsGet429WithHeadersAndRecoverAfterRetryAfter() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme", modules: ["notes"])
        let catalog = try PlanCatalog.parse("""
            plans:
              free:
                rate_limits:
                  burst: { limit: 2, window: 2 }
            """, path: "plans.yaml")
        let clock = ManualClock()
        try await db.withApp { database in
            let registry = try ModuleRegistry([NotesModule()])
            let dependencies = ApplicationDependencies(
                database: database, registry: registry, authenticator: TestAuthenticator(), plans: catalog,
                limiter: MemoryRateLimitStore(clock: { clock.read() }), logger: TestDatabase.logger,
                expectedMigrations: try registry.allMigrations())
            let app = Application(router: buildRouter(dependencies), logger: TestDatabase.logger)
            try await app.test(.router) { client in
                let headers: HTTPFields = [.authorization: TestAuthenticator.header(acme, "notes.read")]
                let first = try await client.execute(uri: "/v1/tenants/acme/notes/notes", method: .get, headers: headers)
                #expect(first.status == .ok)
                #expect(first.headers[HTTPField.Name("RateLimit-Policy")!] == #""burst";q=2;w=2"#)
                #expect(first.headers[HTTPField.Name("RateLimit")!] == #""burst";r=1;t=1"#)
                #expect(try await client.execute(uri: "/v1/tenants/acme/notes/notes", method: .get, headers: headers).status == .ok)
                let limited = try await client.execute(uri: "/v1/tenants/acme/notes/notes", method: .get, headers: headers)
                #expect(limited.status == .tooManyRequests)
                #expect(limited.headers[.retryAfter] == "1")
                #expect(limited.headers[HTTPField.Name("RateLimit")!] == #""burst";r=0;t=2"#)
                #expect(json(limited)["code"]?.string == "rate_limited")
                #expect(json(limited)["violated_policies"] == ["burst"])
                // Unauthenticated requests do not spend the tenant's quota.
                #expect(try await client.execute(uri: "/v1/tenants/acme/notes/notes", method: .get).status == .unauthorized)
                clock.advance(1)
                #expect(try await client.execute(uri: "/v1/tenants/acme/notes/notes", method: .get, headers: headers).status == .ok)
            }
        }
    }
}

@Suite("Monthly API-call quota")
struct APICallQuotaTests {
    @Test func concurrentCallsNeverTakeMoreThanTheQuota() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme", modules: ["notes"])
        let catalog = try PlanCatalog.parse("plans:\n  free:\n    quotas: { api_calls_per_month: 5 }\n", path: "plans.yaml")
        try await db.withApp(maximumConnections: 10) { database in
            let registry = try ModuleRegistry([NotesModule()])
            let dependencies = ApplicationDependencies(
                database: database, registry: registry, authenticator: TestAuthenticator(), plans: catalog, logger: TestDatabase.logger,
                expectedMigrations: try registry.allMigrations())
            let app = Application(router: buildRouter(dependencies), logger: TestDatabase.logger)
            try await app.test(.router) { client in
                let headers: HTTPFields = [.authorization: TestAuthenticator.header(acme, "notes.read", "kernel.billing.read")]
                let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                    for _ in 0..<12 {
                        group.addTask { try await client.execute(uri: "/v1/tenants/acme/notes/notes", method: .get, headers: headers).status }
                    }
                    return try await group.reduce(into: [HTTPResponse.Status]()) { $0.append($1) }
                }
                #expect(statuses.filter { $0 == .ok }.count == 5)
                #expect(statuses.filter { $0 == .tooManyRequests }.count == 7)
                let over = try await client.execute(uri: "/v1/tenants/acme/notes/notes", method: .get, headers: headers)
                #expect(json(over)["code"]?.string == "quota_exceeded")
            }
        }
        let calls = try await db.withOwner { connection in
            try await connection.withTenantTransaction(acme.id, logger: TestDatabase.logger) { connection in
                try await connection.query(
                    "SELECT count(*)::int FROM usage_events WHERE meter = 'kernel.api_calls'", logger: TestDatabase.logger
                ).collect().first?.decode(Int.self)
            }
        }
        #expect(calls == 5)
    }
}
