import AtriumCore
import AtriumTesting
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
                // Unauthenticated requests do not spend the tenant's quota: sent while it is
                // full, they leave both of its requests to the authenticated caller.
                for _ in 0..<3 {
                    #expect(try await client.execute(uri: "/v1/tenants/acme/notes/notes", method: .get).status == .unauthorized)
                }
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
                // Calls refused before they are admitted (bad credentials) take nothing.
                for _ in 0..<3 {
                    let refused = try await client.execute(uri: "/v1/tenants/acme/notes/notes", method: .get, headers: [.authorization: "Bearer wrong"])
                    #expect(refused.status == .unauthorized)
                }
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
            #expect(await dependencies.apiCalls.flush(database: database) == 5)
        }
        let calls = try await db.withOwner { connection in
            try await connection.withTenantTransaction(acme.id, logger: TestDatabase.logger) { connection in
                try await connection.query(
                    "SELECT sum(quantity)::int FROM usage_records WHERE meter = 'kernel.api_calls'", logger: TestDatabase.logger
                ).collect().first?.decode(Int.self)
            }
        }
        #expect(calls == 5)  // the admitted calls, recorded in aggregate
    }
}

@Suite("Rate limits per principal, on sign-in, and shared through PostgreSQL")
struct RateLimitScopeTests {
    @Test func eachPrincipalHasItsOwnLimitWithinTheTenants() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme", modules: ["notes"])
        let catalog = try PlanCatalog.parse("""
            plans:
              free:
                rate_limits:
                  tenant-minute: { limit: 5, window: 60 }
                principal_rate_limits:
                  user-minute: { limit: 2, window: 60 }
            """, path: "plans.yaml")
        let clock = ManualClock()
        try await db.withApp { database in
            let registry = try ModuleRegistry([NotesModule()])
            let dependencies = ApplicationDependencies(
                database: database, registry: registry, authenticator: TestAuthenticator(), plans: catalog,
                limiter: MemoryRateLimitStore(clock: { clock.read() }), logger: TestDatabase.logger, expectedMigrations: try registry.allMigrations())
            let app = Application(router: buildRouter(dependencies), logger: TestDatabase.logger)
            try await app.test(.router) { client in
                let (ann, bob, cat) = (UUID(), UUID(), UUID())
                func call(_ principal: UUID) async throws -> TestResponse {
                    try await client.execute(
                        uri: "/v1/tenants/acme/notes/notes", method: .get,
                        headers: [.authorization: TestAuthenticator.header(acme, principal: principal, "notes.read")])
                }
                let first = try await call(ann)
                #expect(first.headers[HTTPField.Name("RateLimit-Policy")!] == #""tenant-minute";q=5;w=60, "user-minute";q=2;w=60"#)
                #expect(first.headers[HTTPField.Name("RateLimit")!] == #""tenant-minute";r=4;t=12, "user-minute";r=1;t=30"#)
                #expect(try await call(ann).status == .ok)
                let annLimited = try await call(ann)
                #expect(annLimited.status == .tooManyRequests)
                #expect(json(annLimited)["violated_policies"] == ["user-minute"])
                // Bob has his own allowance, until the tenant's is spent (ann 2 + bob 2 + cat 1 = 5).
                #expect(try await call(bob).status == .ok)
                #expect(try await call(bob).status == .ok)
                #expect(try await call(cat).status == .ok)
                let tenantLimited = try await call(cat)
                #expect(tenantLimited.status == .tooManyRequests)
                #expect(json(tenantLimited)["violated_policies"] == ["tenant-minute"])
                #expect(tenantLimited.headers[.retryAfter] == "12")
            }
        }
    }

    @Test func signInIsLimitedPerAddressAndPerAccount() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme")
        _ = try await db.createUser("ann@acme.test", password: "correct horse battery", roles: ["owner"], in: acme)
        let catalog = try PlanCatalog.parse("""
            auth_rate_limits:
              per_ip:
                ip-hour: { limit: 6, window: 3600 }
              per_account:
                account-hour: { limit: 3, window: 3600 }
            plans:
              free: {}
            """, path: "plans.yaml")
        try await withIdentityApp(db, plans: catalog) { client, _ in
            func login(_ email: String) async throws -> TestResponse {
                try await client.post("/v1/tenants/acme/auth/login", json: #"{"email":"\#(email)","password":"correct horse battery"}"#)
            }
            let first = try await login("ann@acme.test")
            #expect(first.status == .ok)
            #expect(first.headers[HTTPField.Name("RateLimit-Policy")!] == #""ip-hour";q=6;w=3600"#)
            #expect(try await login("ann@acme.test").status == .ok)
            #expect(try await login("ann@acme.test").status == .ok)
            // The account's three attempts an hour are used, even with the right password. (Hour-long
            // windows: Argon2 logins on a loaded machine can take seconds, and a minute's window
            // would refill an attempt meanwhile.)
            let account = try await login("ann@acme.test")
            #expect(account.status == .tooManyRequests)
            #expect(json(account)["violated_policies"] == ["account-hour"])
            // A full refill of one attempt takes 1,200 s; less has passed since the first attempt.
            #expect(account.headers[.retryAfter].flatMap(Int.init).map { (1...1_200).contains($0) } == true)
            // Other accounts from the same address, until the address's six are used.
            #expect(try await login("bob@acme.test").status == .unauthorized)
            #expect(try await login("cat@acme.test").status == .unauthorized)
            let address = try await login("dan@acme.test")
            #expect(address.status == .tooManyRequests)
            #expect(json(address)["violated_policies"] == ["ip-hour"])
            // Every sign-in route counts against the address: password-reset mail too.
            let reset = try await client.post("/v1/tenants/acme/auth/forgot-password", json: #"{"email":"eve@acme.test"}"#)
            #expect(reset.status == .tooManyRequests)
        }
    }

    @Test func twoPostgresStoresShareOneLimit() async throws {
        let db = try await TestDatabase.create()
        let policy = Plan.RateLimit(name: "hourly", limit: 10, windowSeconds: 3600)
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let admitted = try await db.withApp(maximumConnections: 4) { first in
            try await db.withApp(maximumConnections: 4) { second in
                let stores = [PostgresRateLimitStore(database: first, logger: TestDatabase.logger), PostgresRateLimitStore(database: second, logger: TestDatabase.logger)]
                // 30 concurrent requests alternating between the two stores.
                return try await withThrowingTaskGroup(of: Bool.self) { group in
                    for index in 0..<30 {
                        group.addTask { try await stores[index % 2].check(key: "tenant:x", policies: [policy], now: start).allowed }
                    }
                    return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
                }
            }
        }
        #expect(admitted == 10)
        // State refills with time exactly as in memory: one request per 360 s.
        let later = try await db.withApp { database in
            try await PostgresRateLimitStore(database: database, logger: TestDatabase.logger)
                .check(key: "tenant:x", policies: [policy], now: start.addingTimeInterval(360))
        }
        #expect(later.allowed)
        #expect(later.policies.first?.remaining == 0)
    }

    /// A hold (a service's Retry-After) refuses every store's spends until it ends, then
    /// the quota refills from empty; a shorter hold does not shorten it.
    @Test func aHoldRefusesEverySpendUntilItEndsThenRefillsFromEmpty() async throws {
        let db = try await TestDatabase.create()
        let policy = Plan.RateLimit(name: "weight", limit: 10, windowSeconds: 60)
        let rule = RateLimitRule(key: "host:x", policy: policy)
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        try await db.withApp { database in
            let (first, second) = (PostgresRateLimitStore(database: database, logger: TestDatabase.logger),
                                   PostgresRateLimitStore(database: database, logger: TestDatabase.logger))
            #expect(try await first.check([rule], now: start).allowed)
            try await first.hold(rule, until: start.addingTimeInterval(30))
            try await first.hold(rule, until: start.addingTimeInterval(5))
            let held = try await second.check([rule], now: start.addingTimeInterval(1))
            #expect(!held.allowed)
            #expect(held.retryAfter == 35, "30 s of hold, then one request's refill (6 s) less the second waited")
            #expect(try await second.check([rule], now: start.addingTimeInterval(35)).allowed == false)
            let after = try await second.check([rule], now: start.addingTimeInterval(36))
            #expect(after.allowed && after.policies.first?.remaining == 0, "one request's worth refilled, no burst")
        }
    }
}

@Suite("Per-IP limits on modules' public routes")
struct PublicRateLimitTests {
    /// Nobody is signed in on a module's public routes, so the catalog's
    /// `public_rate_limits` apply per client IP.
    @Test func publicRoutesAreLimitedPerClientIP() async throws {
        let db = try await TestDatabase.create(modules: [GuestbookModule()])
        _ = try await db.createTenant("acme", modules: ["guestbook"])
        let catalog = try PlanCatalog.parse("""
            public_rate_limits:
              per_ip:
                public-burst: { limit: 2, window: 60 }
            plans:
              free:
                modules: [guestbook]
            """, path: "plans.yaml")
        try await withTestApplication(db, modules: [GuestbookModule()], plans: catalog) { client, _ in
            let uri = "/v1/public/acme/guestbook/confirm?token=forged"
            for _ in 0..<2 {
                let answer = try await client.execute(uri: uri, method: .get)
                #expect(answer.status == .forbidden, "the link is checked while the limit allows")
            }
            let limited = try await client.execute(uri: uri, method: .get)
            #expect(limited.status == .tooManyRequests)
            #expect(json(limited)["violated_policies"] == ["public-burst"])
            // The authenticated routes of the same tenant are not limited by it.
            #expect(try await client.execute(uri: "/v1/tenants/acme/guestbook/events", method: .get).status == .unauthorized)
        }
    }
}
