import AtriumCore
import Foundation
import Testing

@Suite("GCRA rate limiter")
struct GCRALimiterTests {
    let hourly = Plan.RateLimit(name: "hourly", limit: 50, windowSeconds: 3600)
    let daily = Plan.RateLimit(name: "daily", limit: 200, windowSeconds: 86400)

    /// A weighted request takes its cost at once, and is refused whole (taking nothing)
    /// when the cost does not fit.
    @Test func aCostlyRequestSpendsItsWeight() async throws {
        let limiter = MemoryRateLimitStore()
        let start = Date(timeIntervalSince1970: 1_000_000)
        let weight = Plan.RateLimit(name: "weight", limit: 10, windowSeconds: 10)
        func spend(_ cost: Int64, at offset: TimeInterval = 0) -> RateLimitDecision {
            limiter.check([RateLimitRule(key: "exchange", policy: weight, cost: cost)], now: start.addingTimeInterval(offset))
        }
        #expect(spend(4).policies.first?.remaining == 6)
        #expect(spend(4).policies.first?.remaining == 2)
        let refused = spend(4)
        #expect(!refused.allowed)
        #expect(refused.retryAfter == 2)  // two more cells, one a second
        #expect(refused.policies.first?.remaining == 2, "a refused spend takes nothing")
        #expect(spend(2).allowed, "a cost that fits passes")
        #expect(spend(4, at: 4).allowed)
    }

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

    /// A tenant's limit and each principal's, checked together from many tasks at once:
    /// the keys land in different shards, and a check is still all or nothing — a call a
    /// principal's limit refuses takes nothing from the tenant's.
    @Test func checksOverSeveralKeysAreAllOrNothingUnderConcurrency() async throws {
        let limiter = MemoryRateLimitStore()
        let tenant = Plan.RateLimit(name: "tenant", limit: 40, windowSeconds: 3600)
        let principal = Plan.RateLimit(name: "principal", limit: 5, windowSeconds: 3600)
        let start = Date(timeIntervalSince1970: 3_000_000)
        let principals = (0..<12).map { "principal:\($0)" }
        let allowed = await withTaskGroup(of: (String, Bool).self) { group in
            for key in principals {
                for _ in 0..<6 {
                    group.addTask {
                        let rules = [RateLimitRule(key: "tenant:acme", policy: tenant), RateLimitRule(key: key, policy: principal)]
                        return (key, limiter.check(rules, now: start).allowed)
                    }
                }
            }
            return await group.reduce(into: [String: Int]()) { counts, outcome in if outcome.1 { counts[outcome.0, default: 0] += 1 } }
        }
        #expect(allowed.values.reduce(0, +) == 40)  // 60 principal slots, the tenant's 40 all used
        #expect(allowed.values.allSatisfy { $0 <= 5 })
        let after = limiter.check([RateLimitRule(key: "tenant:acme", policy: tenant)], now: start)
        #expect(after.allowed == false)
    }
}

