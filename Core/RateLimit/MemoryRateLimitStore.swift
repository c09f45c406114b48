public import Foundation
import Synchronization

/// Limiter state in this process: the default, and the fastest. Each `atrium serve`
/// process then limits on its own; see `PostgresRateLimitStore` to share limits.
///
/// The state is spread over shards by key, each behind its own lock, so requests of
/// different tenants seldom wait for each other and none hops through a shared actor.
/// A check that spans several keys (a tenant's and a principal's limit) takes the
/// shards it needs in index order (no deadlock), reads every key, decides, and writes
/// back before it lets go: it is all or nothing, as GCRA over several rules must be.
public final class MemoryRateLimitStore: RateLimitStore {
    final class Shard: Sendable {
        struct State {
            var arrivals: [String: Double] = [:]
            var checks = 0
        }
        let state = Mutex(State())
    }

    let shards: [Shard]
    let clock: @Sendable () -> Date

    /// `clock` is the time source; tests pass one they can advance.
    public init(clock: @escaping @Sendable () -> Date = { Date() }, shardCount: Int = 16) {
        self.clock = clock
        self.shards = (0..<max(1, shardCount)).map { _ in Shard() }
    }

    public func check(_ rules: [RateLimitRule], now: Date?) -> RateLimitDecision {
        let time = (now ?? clock()).timeIntervalSince1970
        var slots: [Int: [String]] = [:]
        for rule in rules { slots[shardIndex(of: rule.slot), default: []].append(rule.slot) }
        return evaluate(rules, shards: slots.keys.sorted()[...], slots: slots, known: [:], at: time).decision
    }

    /// Holds the lock of `shards.first` while the rest are taken and the rules decided;
    /// reads its keys on the way in, writes their new values on the way out.
    private func evaluate(
        _ rules: [RateLimitRule], shards order: ArraySlice<Int>, slots: [Int: [String]], known: [String: Double], at time: Double
    ) -> (decision: RateLimitDecision, updates: [String: Double]) {
        guard let index = order.first else { return GCRA.evaluate(rules, arrivals: known, at: time) }
        return shards[index].state.withLock { state in
            var known = known
            let mine = slots[index] ?? []
            for slot in mine { known[slot] = state.arrivals[slot] }
            let result = evaluate(rules, shards: order.dropFirst(), slots: slots, known: known, at: time)
            for slot in mine { if let value = result.updates[slot] { state.arrivals[slot] = value } }
            // Drops keys whose quota is whole again, every so often, so memory follows active keys.
            state.checks += 1
            if state.checks % 10_000 == 0 { state.arrivals = state.arrivals.filter { $0.value > time } }
            return result
        }
    }

    private func shardIndex(of slot: String) -> Int {
        Int(UInt(bitPattern: slot.hashValue) % UInt(shards.count))
    }
}
