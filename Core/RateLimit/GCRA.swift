public import Foundation

/// One limit to check: a policy applied to a key (a tenant, a principal, an IP, an account).
public struct RateLimitRule: Sendable, Equatable {
    public var key: String
    public var policy: Plan.RateLimit
    /// How much of the quota the request uses: 1 for a request, more for a costly call
    /// (an exchange's endpoints weigh 1 to 50 of a 1,200-per-minute budget).
    public var cost: Int64

    public init(key: String, policy: Plan.RateLimit, cost: Int64 = 1) {
        self.key = key
        self.policy = policy
        self.cost = cost
    }

    /// Where the rule's state lives; a changed quota or window starts afresh.
    var slot: String { "\(key)|\(policy.name)|\(policy.limit)/\(policy.windowSeconds)" }
}

/// The outcome of checking a request against its rules.
public struct RateLimitDecision: Sendable, Equatable {
    /// One policy's view of a decision.
    public struct PolicyState: Sendable, Equatable {
        public var name: String
        public var quota: Int64
        public var window: Int64
        /// Requests left in the window.
        public var remaining: Int64
        /// Seconds until the quota is whole again.
        public var reset: Int64
    }

    public var allowed: Bool
    public var policies: [PolicyState]
    /// Seconds to wait before retrying, when refused.
    public var retryAfter: Int64?
    /// Policies that refused the request.
    public var violated: [String]

    /// `RateLimit-Policy` per draft-ietf-httpapi-ratelimit-headers-10.
    public var policyHeader: String {
        policies.map { "\"\($0.name)\";q=\($0.quota);w=\($0.window)" }.joined(separator: ", ")
    }

    /// `RateLimit` per draft-ietf-httpapi-ratelimit-headers-10.
    public var stateHeader: String {
        policies.map { "\"\($0.name)\";r=\($0.remaining);t=\($0.reset)" }.joined(separator: ", ")
    }
}

/// The generic cell rate algorithm, as a pure function over stored state: one
/// theoretical arrival time (TAT) per rule, smooth refill, bursts up to the quota.
///
/// A request is admitted only when every rule admits it, and then counts against all
/// of them; a refused request counts against none. Stores (memory, PostgreSQL) only
/// keep the TATs and apply `updates` atomically.
public enum GCRA {
    public static func evaluate(
        _ rules: [RateLimitRule], arrivals: [String: Double], at time: Double
    ) -> (decision: RateLimitDecision, updates: [String: Double]) {
        struct Evaluation {
            var rule: RateLimitRule
            var interval: Double
            var theoretical: Double
            var next: Double { theoretical + interval }
            var allowAt: Double { next - Double(rule.policy.windowSeconds) }
        }
        let evaluations = rules.map { rule in
            // A request of cost n takes n cells at once; a cost beyond the quota could
            // never pass, so it counts as the whole quota and waits for a full window.
            let cells = Double(min(max(rule.cost, 1), rule.policy.limit))
            let interval = Double(rule.policy.windowSeconds) / Double(rule.policy.limit)
            return Evaluation(rule: rule, interval: interval * cells, theoretical: max(arrivals[rule.slot] ?? time, time))
        }
        let violated = evaluations.filter { time < $0.allowAt }
        let allowed = violated.isEmpty
        let states = evaluations.map { evaluation in
            let used = allowed ? evaluation.next : evaluation.theoretical
            let window = Double(evaluation.rule.policy.windowSeconds)
            let cellInterval = window / Double(evaluation.rule.policy.limit)
            let remaining = Int64(((window - (used - time)) / cellInterval).rounded(.down))
            return RateLimitDecision.PolicyState(
                name: evaluation.rule.policy.name, quota: evaluation.rule.policy.limit, window: evaluation.rule.policy.windowSeconds,
                remaining: max(0, min(evaluation.rule.policy.limit, remaining)), reset: Int64((used - time).rounded(.up)))
        }
        var updates: [String: Double] = [:]
        if allowed {
            for evaluation in evaluations { updates[evaluation.rule.slot] = evaluation.next }
        }
        let retryAfter = violated.map { $0.allowAt - time }.max() ?? 0
        let decision = RateLimitDecision(
            allowed: allowed, policies: states, retryAfter: allowed ? nil : max(1, Int64(retryAfter.rounded(.up))),
            violated: violated.map(\.rule.policy.name))
        return (decision, updates)
    }
}

/// Where limiter state lives. `check` reads the rules' state, decides and records the
/// request in one atomic step.
public protocol RateLimitStore: Sendable {
    func check(_ rules: [RateLimitRule], now: Date?) async throws -> RateLimitDecision
}

extension RateLimitStore {
    /// Checks `policies` for one key.
    public func check(key: String, policies: [Plan.RateLimit], now: Date? = nil) async throws -> RateLimitDecision {
        try await check(policies.map { RateLimitRule(key: key, policy: $0) }, now: now)
    }
}
