public import Foundation
public import Logging
public import PostgresNIO
import HTTPTypes
public import ServiceLifecycle
import Synchronization

/// Counts authenticated API calls (`kernel.api_calls`) in memory and records them in
/// aggregate, so that a request writes nothing and no tenant's requests queue on its
/// monthly counter row.
///
/// Every second (and on graceful stop) each tenant's calls of that second become one
/// usage event whose quantity is the count, with an idempotency key of this process and
/// flush: a flush that fails keeps its key and is retried, so a retry never counts
/// twice and `atrium billing reconcile` keeps agreeing. A process killed with -9 loses
/// the calls it had not flushed: at most one flush interval of its own API-call counts.
///
/// The plan's `api_calls_per_month` is enforced against the counter as this process last
/// read it plus the calls it has not flushed yet, so one process admits exactly the quota.
/// With several processes, each sees the others' calls once they are flushed and the
/// counter re-read (at most `refreshInterval` old), so over-admission is bounded by the
/// calls the *other* processes admit within about two flush intervals.
public final class APICallCounter: Sendable {
    public static let meter = "kernel.api_calls"

    struct Key: Hashable {
        var tenantID: UUID
        /// The first day of the month (UTC) the calls fall in.
        var period: Date
    }

    struct Batch {
        var idempotencyKey: String
        var quantity: Int64
        var at: Date
    }

    struct Tally {
        var pending: Int64 = 0
        var firstPendingAt: Date?
        /// Taken out of `pending` by a flush that has not succeeded yet (retried as it is).
        var inFlight: Batch?
        /// The month's counter as last read, and when.
        var recorded: Int64?
        var recordedAt: ContinuousClock.Instant?
    }

    let tallies = Mutex<[Key: Tally]>([:])
    let sequence = Atomic<Int>(0)
    let processID = SecureRandom.hex(bytes: 6)
    let metering: Metering
    let logger: Logger
    /// How stale the counter may be before a call under a quota re-reads it.
    public let refreshInterval: Duration
    let lastFailure = Mutex<String?>(nil)

    public init(metering: Metering, logger: Logger, refreshInterval: Duration = .seconds(1)) {
        self.metering = metering
        self.logger = logger
        self.refreshInterval = refreshInterval
    }

    /// Counts one call of the tenant; with `quota`, refuses it with 429 `quota_exceeded`
    /// when the month's calls would pass it. `readCounter` reads the month's counter in
    /// the caller's transaction when this process's copy is missing or stale.
    public func admit(
        tenantID: UUID, quota: Int64?, at time: Date = Date(), readCounter: (Date) async throws -> Int64
    ) async throws {
        let key = Key(tenantID: tenantID, period: Self.month(of: time))
        guard let quota else {
            tallies.withLock { tallies in Self.add(to: &tallies[key, default: Tally()], at: time) }
            return
        }
        let now = ContinuousClock.now
        let fresh = tallies.withLock { tallies in
            tallies[key].flatMap { tally in tally.recordedAt.map { now - $0 < refreshInterval } } ?? false
        }
        if !fresh {
            let value = try await readCounter(key.period)
            tallies.withLock { tallies in
                tallies[key, default: Tally()].recorded = value
                tallies[key, default: Tally()].recordedAt = now
            }
        }
        let admitted = tallies.withLock { tallies -> Bool in
            var tally = tallies[key, default: Tally()]
            defer { tallies[key] = tally }
            let used = (tally.recorded ?? 0) + tally.pending + (tally.inFlight?.quantity ?? 0)
            guard used < quota else { return false }
            Self.add(to: &tally, at: time)
            return true
        }
        guard admitted else {
            var error = AtriumError(
                status: .tooManyRequests, code: "quota_exceeded", title: "Quota exceeded",
                detail: "The plan's monthly quota of \(quota) for \(Self.meter) is used up; upgrade the plan or wait for the next month.")
            error.extensions = ["meter": .string(Self.meter), "quota": .number(Double(quota))]
            throw error
        }
    }

    /// Records every tenant's unflushed calls; returns how many calls were recorded.
    /// Batches that fail stay in flight, keeping their idempotency key, for the next flush.
    @discardableResult
    public func flush(database: Database) async -> Int64 {
        let batches = tallies.withLock { tallies -> [(Key, Batch)] in
            var batches: [(Key, Batch)] = []
            for (key, var tally) in tallies {
                if tally.inFlight == nil, tally.pending > 0 {
                    let number = sequence.wrappingAdd(1, ordering: .relaxed).newValue
                    tally.inFlight = Batch(
                        idempotencyKey: "api:\(processID):\(number)", quantity: tally.pending, at: tally.firstPendingAt ?? key.period)
                    tally.pending = 0
                    tally.firstPendingAt = nil
                    tallies[key] = tally
                }
                if let batch = tally.inFlight { batches.append((key, batch)) }
            }
            return batches
        }
        var recorded: Int64 = 0
        for (key, batch) in batches {
            do {
                let counter = try await database.withTenantTransaction(key.tenantID, logger: logger) { connection in
                    try await metering.record(
                        Self.meter, quantity: batch.quantity, idempotencyKey: batch.idempotencyKey, at: batch.at, properties: [:],
                        tenantID: key.tenantID, on: connection)
                    return try await Self.readCounter(period: key.period, on: connection, logger: logger)
                }
                let now = ContinuousClock.now
                tallies.withLock { tallies in
                    tallies[key]?.inFlight = nil
                    tallies[key]?.recorded = counter
                    tallies[key]?.recordedAt = now
                    if let tally = tallies[key], tally.pending == 0, tally.inFlight == nil, key.period < Self.month(of: Date()) {
                        tallies[key] = nil  // a past month, fully recorded
                    }
                }
                recorded += batch.quantity
                lastFailure.withLock { $0 = nil }
            } catch {
                lastFailure.withLock { $0 = "\(error)" }
                logger.warning(
                    "API-call counts not recorded yet; kept for the next flush",
                    metadata: ["tenant.id": "\(key.tenantID.uuidString.lowercased())", "calls": "\(batch.quantity)", "error": "\(String(reflecting: error))"])
            }
        }
        return recorded
    }

    /// Calls counted but not yet recorded, across tenants.
    public var unrecorded: Int64 {
        tallies.withLock { $0.values.reduce(0) { $0 + $1.pending + ($1.inFlight?.quantity ?? 0) } }
    }

    /// Why the last flush failed, while it has not succeeded since; `/readyz` reports it.
    public var failure: String? { lastFailure.withLock { $0 } }

    /// The month's `kernel.api_calls` counter; `connection` is in the tenant's transaction.
    public static func readCounter(period: Date, on connection: PostgresConnection, logger: Logger) async throws -> Int64 {
        try await connection.query(
            "SELECT quantity FROM usage_counters WHERE meter = \(meter) AND period = (\(period)::timestamptz AT TIME ZONE 'UTC')::date",
            logger: logger
        ).collect().first?.decode(Int64.self) ?? 0
    }

    static func add(to tally: inout Tally, at time: Date) {
        tally.pending += 1
        if tally.firstPendingAt == nil { tally.firstPendingAt = time }
    }

    /// The first instant of `time`'s month in UTC, by arithmetic (days from civil dates,
    /// H. Hinnant's algorithm): it runs on every request, where a `Calendar` costs more
    /// than the rest of the request path together.
    public static func month(of time: Date) -> Date {
        let days = Int64((time.timeIntervalSince1970 / 86_400).rounded(.down))
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let dayOfMonth = dayOfYear - (153 * monthIndex + 2) / 5  // 0-based
        return Date(timeIntervalSince1970: Double(days - dayOfMonth) * 86_400)
    }
}

extension APICallCounter {
    /// Flushes an `APICallCounter` every `interval`, and once more on graceful stop after
    /// the HTTP server (listed after it) has drained.
    public struct Flusher: Service {
        let counter: APICallCounter
        let database: Database
        let interval: Duration

        public init(counter: APICallCounter, database: Database, interval: Duration = .seconds(1)) {
            self.counter = counter
            self.database = database
            self.interval = interval
        }

        public func run() async throws {
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
                await counter.flush(database: database)
            }
            // Last calls of a stopping server: a few tries, then they are lost (and logged).
            for _ in 0..<3 where counter.unrecorded > 0 {
                await counter.flush(database: database)
            }
            if counter.unrecorded > 0 {
                counter.logger.error("API-call counts lost on stop", metadata: ["calls": "\(counter.unrecorded)"])
            }
        }
    }
}
