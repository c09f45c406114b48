import AtriumCore
import Foundation
import Testing

@Suite("GCRA rate limiter")
struct GCRALimiterTests {
    let hourly = Plan.RateLimit(name: "hourly", limit: 50, windowSeconds: 3600)
    let daily = Plan.RateLimit(name: "daily", limit: 200, windowSeconds: 86400)

    @Test func admitsTheQuotaAsABurstThenRefusesWithRetryAfter() async throws {
        let limiter = MemoryRateLimitStore()
        let start = Date(timeIntervalSince1970: 1_000_000)
        var last: RateLimitDecision?
        for _ in 0..<50 {
            last = try await limiter.check(key: "tenant-a", policies: [hourly, daily], now: start)
            #expect(last?.allowed == true)
        }
        #expect(last?.policies.first?.remaining == 0)
        #expect(last?.policyHeader == #""hourly";q=50;w=3600, "daily";q=200;w=86400"#)
        let refused = try await limiter.check(key: "tenant-a", policies: [hourly, daily], now: start)
        #expect(refused.allowed == false)
        #expect(refused.violated == ["hourly"])
        #expect(refused.retryAfter == 72)  // one request refills every 3600/50 = 72 s
        // A refused request does not count against the daily policy.
        #expect(refused.policies.last?.remaining == 150)
        // Recovery after Retry-After.
        let later = try await limiter.check(key: "tenant-a", policies: [hourly, daily], now: start.addingTimeInterval(72))
        #expect(later.allowed == true)
        #expect(later.stateHeader.hasPrefix(#""hourly";r=0;t=3600"#))
        // Keys are independent.
        let other = try await limiter.check(key: "tenant-b", policies: [hourly], now: start)
        #expect(other.allowed == true)
    }

    @Test func remainingRefillsSmoothly() async throws {
        let limiter = MemoryRateLimitStore()
        let start = Date(timeIntervalSince1970: 2_000_000)
        for _ in 0..<10 { _ = try await limiter.check(key: "k", policies: [hourly], now: start) }
        let after = try await limiter.check(key: "k", policies: [hourly], now: start.addingTimeInterval(720))
        // 10 used, 10 × 72 s refilled, this one used: 49 left.
        #expect(after.policies.first?.remaining == 49)
    }
}
