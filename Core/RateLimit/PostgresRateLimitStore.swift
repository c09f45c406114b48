public import Foundation
public import Logging
import PostgresNIO

/// Limiter state in PostgreSQL (`ATRIUM_RATE_LIMIT_STORE=postgres`), so several
/// `atrium serve` processes enforce one limit. Each check is one short transaction:
/// the rules' rows are created if missing, locked in slot order (no deadlocks between
/// concurrent checks), evaluated by the same GCRA as the memory store, and updated.
public struct PostgresRateLimitStore: RateLimitStore {
    let database: Database
    let logger: Logger
    let clock: @Sendable () -> Date

    public init(database: Database, logger: Logger, clock: @escaping @Sendable () -> Date = { Date() }) {
        // Checked while a request holds its connection: from the shared pool.
        self.database = database.sharedPoolOnly
        self.logger = logger
        self.clock = clock
    }

    public func check(_ rules: [RateLimitRule], now: Date?) async throws -> RateLimitDecision {
        let time = (now ?? clock()).timeIntervalSince1970
        let slots = Array(Set(rules.map(\.slot))).sorted()
        let logger = logger
        return try await database.withPlatformTransaction(logger: logger) { connection in
            try await connection.query(
                """
                INSERT INTO rate_limit_state (slot, theoretical_arrival)
                SELECT unnest(\(slots)::text[]), 0 ORDER BY 1 ON CONFLICT (slot) DO NOTHING
                """, logger: logger)
            var arrivals: [String: Double] = [:]
            let rows = try await connection.query(
                "SELECT slot, theoretical_arrival FROM rate_limit_state WHERE slot = ANY(\(slots)) ORDER BY slot FOR UPDATE", logger: logger)
            for try await (slot, arrival) in rows.decode((String, Double).self) where arrival > 0 { arrivals[slot] = arrival }
            let (decision, updates) = GCRA.evaluate(rules, arrivals: arrivals, at: time)
            if !updates.isEmpty {
                let keys = Array(updates.keys), values = keys.map { updates[$0] ?? time }
                try await connection.query(
                    """
                    UPDATE rate_limit_state s SET theoretical_arrival = u.arrival
                    FROM unnest(\(keys)::text[], \(values)::float8[]) AS u(slot, arrival) WHERE s.slot = u.slot
                    """, logger: logger)
            }
            // Rows whose quota is whole again hold no information; drop a few now and then.
            if Int.random(in: 0..<1000) == 0 {
                try await connection.query(
                    """
                    DELETE FROM rate_limit_state WHERE slot IN (
                        SELECT slot FROM rate_limit_state WHERE theoretical_arrival < \(time) ORDER BY slot LIMIT 1000 FOR UPDATE SKIP LOCKED)
                    """, logger: logger)
            }
            return decision
        }
    }

    /// Refuses every spend of `rule` until `until`, and refills its quota from empty
    /// after (the state is as if the whole quota had been spent at `until`): for a
    /// service that said to come back later (HTTP 429 with `Retry-After`), so that no
    /// process calls before then, nor bursts at once after. A hold never shortens one
    /// already longer.
    public func hold(_ rule: RateLimitRule, until: Date) async throws {
        let arrival = until.timeIntervalSince1970 + Double(rule.policy.windowSeconds)
        let logger = logger
        try await database.withPlatformTransaction(logger: logger) { connection in
            try await connection.query(
                """
                INSERT INTO rate_limit_state (slot, theoretical_arrival) VALUES (\(rule.slot), \(arrival))
                ON CONFLICT (slot) DO UPDATE SET theoretical_arrival = greatest(rate_limit_state.theoretical_arrival, excluded.theoretical_arrival)
                """, logger: logger)
        }
    }
}
