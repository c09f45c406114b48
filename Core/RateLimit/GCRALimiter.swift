public import Foundation

/// Rate limiting by the generic cell rate algorithm: one timestamp per key and policy,
/// smooth refill, bursts up to the policy's quota.
///
/// A request is admitted only when every policy admits it, and then counts against all
/// of them; a refused request counts against none. Decisions carry what the IETF
/// `RateLimit` / `RateLimit-Policy` fields report.
public actor GCRALimiter {
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

    public struct Decision: Sendable, Equatable {
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

    private var arrivals: [String: TimeInterval] = [:]
    private var checks = 0
    let clock: @Sendable () -> Date

    /// `clock` is the time source; tests pass one they can advance.
    public init(clock: @escaping @Sendable () -> Date = { Date() }) {
        self.clock = clock
    }

    public func check(key: String, policies: [Plan.RateLimit], now: Date? = nil) -> Decision {
        let time = (now ?? clock()).timeIntervalSince1970
        struct Evaluation {
            var policy: Plan.RateLimit
            var slot: String
            var interval: TimeInterval
            var theoretical: TimeInterval
            var next: TimeInterval
            var allowAt: TimeInterval
        }
        let evaluations = policies.map { policy in
            let window = Double(policy.windowSeconds)
            let interval = window / Double(policy.limit)
            let slot = "\(key)|\(policy.name)|\(policy.limit)/\(policy.windowSeconds)"
            let theoretical = max(arrivals[slot] ?? time, time)
            return Evaluation(policy: policy, slot: slot, interval: interval, theoretical: theoretical, next: theoretical + interval,
                              allowAt: theoretical + interval - window)
        }
        let violated = evaluations.filter { time < $0.allowAt }
        let allowed = violated.isEmpty
        // Admitted: every policy counts the request. Refused: none does.
        let states = evaluations.map { evaluation in
            let used = allowed ? evaluation.next : evaluation.theoretical
            let window = Double(evaluation.policy.windowSeconds)
            let remaining = Int64(((window - (used - time)) / evaluation.interval).rounded(.down))
            return PolicyState(
                name: evaluation.policy.name, quota: evaluation.policy.limit, window: evaluation.policy.windowSeconds,
                remaining: max(0, min(evaluation.policy.limit, remaining)), reset: Int64((used - time).rounded(.up)))
        }
        if allowed {
            for evaluation in evaluations { arrivals[evaluation.slot] = evaluation.next }
        }
        let retryAfter = violated.map { $0.allowAt - time }.max() ?? 0
        prune(now: time)
        return Decision(
            allowed: allowed, policies: states, retryAfter: allowed ? nil : max(1, Int64(retryAfter.rounded(.up))), violated: violated.map(\.policy.name))
    }

    /// Drops keys whose quota is whole again, every so often, so memory follows active keys.
    private func prune(now: TimeInterval) {
        checks += 1
        guard checks % 10_000 == 0 else { return }
        arrivals = arrivals.filter { $0.value > now }
    }
}
