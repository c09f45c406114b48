public import Foundation

/// Slows down password guessing, per account and per client IP, on by default.
///
/// After a few free failures each further attempt on an account must wait twice as long
/// as the last (1 s, 2 s, 4 s, … up to a minute); after ten failures the account is
/// locked for 15 minutes. An IP that fails fifty times in 15 minutes is locked as well.
/// A correct password does not bypass a wait, so the answer reveals nothing. State is
/// kept per process (shared limits across servers arrive with the rate limiter).
public actor LoginThrottle {
    public struct Policy: Sendable {
        public var freeFailures = 3
        public var baseDelay: TimeInterval = 1
        public var maxDelay: TimeInterval = 60
        public var accountLockAfter = 10
        public var ipLockAfter = 50
        public var lockDuration: TimeInterval = 15 * 60
        /// Failures older than this are forgotten.
        public var window: TimeInterval = 15 * 60
        public init() {}
    }

    struct Entry {
        var failures = 0
        var lastFailure = Date.distantPast
        var lockedUntil: Date?
    }

    let policy: Policy
    private var accounts: [String: Entry] = [:]
    private var addresses: [String: Entry] = [:]

    public init(policy: Policy = Policy()) {
        self.policy = policy
    }

    /// How long the caller must wait before this attempt may be judged, or nil to go ahead.
    public func wait(account: String, ip: String?, now: Date = Date()) -> TimeInterval? {
        var longest: TimeInterval = 0
        if let entry = live(accounts[account], now: now) {
            if let locked = entry.lockedUntil, locked > now { longest = max(longest, locked.timeIntervalSince(now)) }
            if entry.failures >= policy.freeFailures {
                let delay = min(policy.maxDelay, policy.baseDelay * pow(2, Double(entry.failures - policy.freeFailures)))
                let ready = entry.lastFailure.addingTimeInterval(delay)
                if ready > now { longest = max(longest, ready.timeIntervalSince(now)) }
            }
        }
        if let ip, let entry = live(addresses[ip], now: now), let locked = entry.lockedUntil, locked > now {
            longest = max(longest, locked.timeIntervalSince(now))
        }
        return longest > 0 ? longest : nil
    }

    public func recordFailure(account: String, ip: String?, now: Date = Date()) {
        prune(now: now)
        accounts[account] = bump(live(accounts[account], now: now) ?? Entry(), lockAfter: policy.accountLockAfter, now: now)
        if let ip { addresses[ip] = bump(live(addresses[ip], now: now) ?? Entry(), lockAfter: policy.ipLockAfter, now: now) }
    }

    public func recordSuccess(account: String) {
        accounts[account] = nil
    }

    private func bump(_ entry: Entry, lockAfter: Int, now: Date) -> Entry {
        var entry = entry
        entry.failures += 1
        entry.lastFailure = now
        if entry.failures >= lockAfter { entry.lockedUntil = now.addingTimeInterval(policy.lockDuration) }
        return entry
    }

    private func live(_ entry: Entry?, now: Date) -> Entry? {
        guard let entry else { return nil }
        if let locked = entry.lockedUntil, locked > now { return entry }
        return now.timeIntervalSince(entry.lastFailure) < policy.window ? entry : nil
    }

    /// Keeps memory bounded under a spray of distinct accounts or addresses.
    private func prune(now: Date) {
        if accounts.count > 50_000 { accounts = accounts.filter { live($0.value, now: now) != nil } }
        if addresses.count > 50_000 { addresses = addresses.filter { live($0.value, now: now) != nil } }
    }
}
