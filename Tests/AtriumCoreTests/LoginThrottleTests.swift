import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Login throttling and client addresses")
struct LoginThrottleTests {
    @Test func delaysGrowThenTheAccountLocksAndSuccessResets() async {
        var policy = LoginThrottle.Policy()
        policy.freeFailures = 2
        policy.accountLockAfter = 5
        let throttle = LoginThrottle(policy: policy)
        let start = Date(timeIntervalSince1970: 1_000_000)
        #expect(await throttle.wait(account: "a", ip: nil, now: start) == nil)
        await throttle.recordFailure(account: "a", ip: "192.0.2.1", now: start)
        await throttle.recordFailure(account: "a", ip: "192.0.2.1", now: start)
        #expect(await throttle.wait(account: "a", ip: nil, now: start) == 1)  // third attempt waits 1 s
        #expect(await throttle.wait(account: "a", ip: nil, now: start.addingTimeInterval(1)) == nil)
        await throttle.recordFailure(account: "a", ip: nil, now: start.addingTimeInterval(1))
        #expect(await throttle.wait(account: "a", ip: nil, now: start.addingTimeInterval(1)) == 2)  // then 2 s
        await throttle.recordFailure(account: "a", ip: nil, now: start.addingTimeInterval(10))
        await throttle.recordFailure(account: "a", ip: nil, now: start.addingTimeInterval(20))
        #expect(await throttle.wait(account: "a", ip: nil, now: start.addingTimeInterval(21)) == 899)  // locked 15 min
        #expect(await throttle.wait(account: "b", ip: nil, now: start) == nil)  // other accounts unaffected
        await throttle.recordSuccess(account: "a")
        #expect(await throttle.wait(account: "a", ip: nil, now: start.addingTimeInterval(21)) == nil)
        // Failures are forgotten after the window.
        await throttle.recordFailure(account: "c", ip: nil, now: start)
        await throttle.recordFailure(account: "c", ip: nil, now: start)
        #expect(await throttle.wait(account: "c", ip: nil, now: start.addingTimeInterval(16 * 60)) == nil)
    }

    @Test func anAddressFailingOnManyAccountsIsLocked() async {
        var policy = LoginThrottle.Policy()
        policy.ipLockAfter = 3
        let throttle = LoginThrottle(policy: policy)
        let now = Date()
        for index in 0..<3 { await throttle.recordFailure(account: "user\(index)", ip: "198.51.100.7", now: now) }
        #expect(await throttle.wait(account: "fresh", ip: "198.51.100.7", now: now) != nil)
        #expect(await throttle.wait(account: "fresh", ip: "198.51.100.8", now: now) == nil)
    }

    @Test func forwardedForIsBelievedOnlyFromTrustedProxies() {
        let proxies = TrustedProxies(["10.0.0.0/8", "::1"])
        #expect(proxies.clientIP(peer: "10.1.2.3", forwardedFor: "203.0.113.9, 10.0.0.5") == "203.0.113.9")
        #expect(proxies.clientIP(peer: "::1", forwardedFor: "203.0.113.9") == "203.0.113.9")
        #expect(proxies.clientIP(peer: "198.51.100.1", forwardedFor: "203.0.113.9") == "198.51.100.1")
        // A client cannot choose its address by prepending to the header.
        #expect(proxies.clientIP(peer: "10.1.2.3", forwardedFor: "1.2.3.4, 203.0.113.9") == "203.0.113.9")
        #expect(TrustedProxies([]).clientIP(peer: "10.1.2.3", forwardedFor: "203.0.113.9") == "10.1.2.3")
    }

    @Test func loginAnswers429WithRetryAfterEvenForTheRightPassword() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme")
        _ = try await db.createUser("user@acme.test", password: "right-password", roles: ["member"], in: acme)
        try await db.withApp(maximumConnections: 8) { database in
            let registry = try ModuleRegistry([NotesModule()])
            var policy = LoginThrottle.Policy()
            policy.freeFailures = 2
            policy.baseDelay = 30
            let identity = try await Identity.prepare(
                database: database, registry: registry, masterKey: .generate(), hasher: testHasher, throttle: policy, logger: TestDatabase.logger)
            let app = Application(
                router: buildRouter(ApplicationDependencies(
                    database: database, registry: registry, identity: identity, logger: TestDatabase.logger, expectedMigrations: try registry.allMigrations())),
                logger: TestDatabase.logger)
            try await app.test(.router) { client in
                for _ in 0..<2 {
                    let failed = try await client.post("/v1/tenants/acme/auth/login", json: #"{"email":"user@acme.test","password":"wrong-password"}"#)
                    #expect(failed.status == .unauthorized)
                }
                let throttled = try await client.post("/v1/tenants/acme/auth/login", json: #"{"email":"USER@acme.test","password":"right-password"}"#)
                #expect(throttled.status == .tooManyRequests)
                #expect(json(throttled)["code"]?.string == "too_many_attempts")
                #expect(Int(throttled.headers[.retryAfter] ?? "") ?? 0 >= 29)
                let otherUser = try await client.post("/v1/tenants/acme/auth/login", json: #"{"email":"other@acme.test","password":"wrong-password"}"#)
                #expect(otherUser.status == .unauthorized)
            }
        }
    }
}
