@testable import AtriumCore
import Foundation
import Testing

@Suite("Verified access tokens in memory")
struct VerifiedTokenCacheTests {
    static func claims(expiring at: Date) -> AccessTokenClaims {
        AccessTokenClaims(userID: UUID(), tenantID: UUID(), sessionID: UUID(), issuedAt: at.addingTimeInterval(-60), lifetime: 60)
    }

    @Test func aTokenIsAnsweredUntilItExpiresAndNotAfter() {
        let cache = VerifiedTokenCache()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let claims = Self.claims(expiring: now.addingTimeInterval(30))
        cache.remember("token-a", claims: claims, now: now)
        #expect(cache.claims(of: "token-a", now: now) == claims)
        #expect(cache.claims(of: "token-b", now: now) == nil)
        #expect(cache.claims(of: "token-a", now: now.addingTimeInterval(30)) == nil)  // expired: verify again (and fail)
        #expect(cache.count == 0)
    }

    @Test func memoryStaysWithinItsBound() {
        let cache = VerifiedTokenCache(capacity: 32, shardCount: 4)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        for index in 0..<1_000 {
            cache.remember("token-\(index)", claims: Self.claims(expiring: now.addingTimeInterval(600)), now: now)
            #expect(cache.count <= 32)
        }
        // A full shard drops its expired tokens first, keeping the live ones.
        let small = VerifiedTokenCache(capacity: 2, shardCount: 1)
        small.remember("old", claims: Self.claims(expiring: now.addingTimeInterval(1)), now: now)
        small.remember("live", claims: Self.claims(expiring: now.addingTimeInterval(600)), now: now)
        small.remember("new", claims: Self.claims(expiring: now.addingTimeInterval(600)), now: now.addingTimeInterval(5))
        #expect(small.claims(of: "live", now: now.addingTimeInterval(5)) != nil)
        #expect(small.claims(of: "new", now: now.addingTimeInterval(5)) != nil)
    }
}
