public import Foundation

/// Limiter state in this process: the default, and the fastest. Each `atrium serve`
/// process then limits on its own; see `PostgresRateLimitStore` to share limits.
public actor MemoryRateLimitStore: RateLimitStore {
    private var arrivals: [String: Double] = [:]
    private var checks = 0
    let clock: @Sendable () -> Date

    /// `clock` is the time source; tests pass one they can advance.
    public init(clock: @escaping @Sendable () -> Date = { Date() }) {
        self.clock = clock
    }

    public func check(_ rules: [RateLimitRule], now: Date?) -> RateLimitDecision {
        let time = (now ?? clock()).timeIntervalSince1970
        var known: [String: Double] = [:]
        for rule in rules { known[rule.slot] = arrivals[rule.slot] }
        let (decision, updates) = GCRA.evaluate(rules, arrivals: known, at: time)
        arrivals.merge(updates) { $1 }
        prune(now: time)
        return decision
    }

    /// Drops keys whose quota is whole again, every so often, so memory follows active keys.
    private func prune(now: Double) {
        checks += 1
        guard checks % 10_000 == 0 else { return }
        arrivals = arrivals.filter { $0.value > now }
    }
}
