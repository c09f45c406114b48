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
/// The plan's `api_calls_per_month` is enforced by leasing: a process takes a slice of
/// the month's allowance in one statement of its own (`atrium_lease_api_calls`, migration
/// 0013), admits calls from it in memory, and gives back what is left when it stops. The
/// slices handed out never pass the quota, so all processes together never admit more
/// than it, and one process admits exactly the quota. What a process holds unused, another
/// cannot have: a tenant may be refused early by at most the slices other processes hold
/// (a sixteenth of what is left each, at most `leaseSize`), or by the slice of a process
/// killed with -9, which is never given back.
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
        /// Leased calls not admitted yet.
        var allowance: Int64 = 0
        /// The lease under way, which every call that finds no allowance waits for.
        var lease: Task<Int64, any Error>?
        /// A lease found the month handed out; calls are refused without asking again until then.
        var exhaustedUntil: ContinuousClock.Instant?
    }

    /// One call's place under the quota, from `reserve` until `admit` or `release`.
    public struct Reservation: Sendable {
        enum State: Sendable {
            case unlimited
            case leased
            case exhausted(quota: Int64)
        }
        let key: Key
        let time: Date
        let state: State
    }

    let tallies = Mutex<[Key: Tally]>([:])
    let sequence = Atomic<Int>(0)
    let processID = SecureRandom.hex(bytes: 6)
    let metering: Metering
    let logger: Logger
    /// The most calls one lease takes.
    public let leaseSize: Int64
    /// How long a month found handed out is refused before a lease is tried again (another
    /// process may have stopped and given its slice back, or the plan changed).
    public let refreshInterval: Duration
    let lastFailure = Mutex<String?>(nil)

    public init(metering: Metering, logger: Logger, leaseSize: Int64 = 1_000, refreshInterval: Duration = .seconds(1)) {
        self.metering = metering
        self.logger = logger
        self.leaseSize = max(1, leaseSize)
        self.refreshInterval = refreshInterval
    }

    /// Sets one call of the tenant aside under `quota` before its credentials are
    /// checked, so that a lease, when one is needed, runs on `connection` as a statement
    /// of its own before the request's transaction begins (and never waits for a second
    /// pooled connection). Follow with `admit` once the call is authenticated, or
    /// `release` when it is not.
    public func reserve(tenantID: UUID, quota: Int64?, at time: Date = Date(), on connection: PostgresConnection) async throws -> Reservation {
        let key = Key(tenantID: tenantID, period: Self.month(of: time))
        guard let quota else { return Reservation(key: key, time: time, state: .unlimited) }
        enum Step {
            case reserved
            case exhausted
            case wait(Task<Int64, any Error>)
        }
        while true {
            let now = ContinuousClock.now
            let step = tallies.withLock { tallies -> Step in
                var tally = tallies[key, default: Tally()]
                defer { tallies[key] = tally }
                if tally.allowance > 0 {
                    tally.allowance -= 1
                    return .reserved
                }
                if let until = tally.exhaustedUntil, now < until { return .exhausted }
                if let lease = tally.lease { return .wait(lease) }
                let (size, logger) = (leaseSize, logger)
                let lease = Task {
                    try await Self.lease(tenantID: tenantID, period: key.period, quota: quota, most: size, on: connection, logger: logger)
                }
                tally.lease = lease
                return .wait(lease)
            }
            switch step {
            case .reserved:
                return Reservation(key: key, time: time, state: .leased)
            case .exhausted:
                return Reservation(key: key, time: time, state: .exhausted(quota: quota))
            case .wait(let lease):
                let granted: Int64
                do {
                    granted = try await lease.value
                } catch {
                    tallies.withLock { tallies in if tallies[key]?.lease == lease { tallies[key]?.lease = nil } }
                    throw error
                }
                let done = ContinuousClock.now
                tallies.withLock { tallies in
                    guard tallies[key]?.lease == lease else { return }  // another waiter took it in
                    tallies[key]?.lease = nil
                    tallies[key]?.allowance += granted
                    tallies[key]?.exhaustedUntil = granted == 0 ? done + refreshInterval : nil
                }
            }
        }
    }

    /// Counts the reserved call; 429 `quota_exceeded` when the month's quota is used up.
    public func admit(_ reservation: Reservation) throws {
        if case .exhausted(let quota) = reservation.state {
            var error = AtriumError(
                status: .tooManyRequests, code: "quota_exceeded", title: "Quota exceeded",
                detail: "The plan's monthly quota of \(quota) for \(Self.meter) is used up; upgrade the plan or wait for the next month.")
            error.extensions = ["meter": .string(Self.meter), "quota": .number(Double(quota))]
            throw error
        }
        tallies.withLock { tallies in Self.add(to: &tallies[reservation.key, default: Tally()], at: reservation.time) }
    }

    /// Gives a reserved call that was not admitted (bad credentials, rate limited) back.
    public func release(_ reservation: Reservation) {
        guard case .leased = reservation.state else { return }
        tallies.withLock { tallies in tallies[reservation.key, default: Tally()].allowance += 1 }
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
                try await database.withTenantTransaction(key.tenantID, logger: logger) { connection in
                    try await metering.record(
                        Self.meter, quantity: batch.quantity, idempotencyKey: batch.idempotencyKey, at: batch.at, properties: [:],
                        tenantID: key.tenantID, on: connection)
                }
                let month = Self.month(of: Date())
                tallies.withLock { tallies in
                    tallies[key]?.inFlight = nil
                    if let tally = tallies[key], tally.pending == 0, tally.inFlight == nil, key.period < month {
                        tallies[key] = nil  // a past month, fully recorded (its unused allowance expired with it)
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

    /// Gives the allowance this process leased and did not use back to the month, so
    /// that other processes can admit it; a stopping server's last step.
    @discardableResult
    public func returnUnused(database: Database) async -> Int64 {
        let unused = tallies.withLock { tallies -> [(Key, Int64)] in
            var unused: [(Key, Int64)] = []
            for (key, tally) in tallies where tally.allowance > 0 {
                unused.append((key, tally.allowance))
                tallies[key]?.allowance = 0
            }
            return unused
        }
        var returned: Int64 = 0
        for (key, calls) in unused {
            do {
                try await database.withTenantTransaction(key.tenantID, logger: logger) { connection in
                    try await connection.query(
                        """
                        UPDATE api_call_allowances SET granted = greatest(granted - \(calls), 0)
                        WHERE tenant_id = \(key.tenantID) AND period = (\(key.period)::timestamptz AT TIME ZONE 'UTC')::date
                        """, logger: logger)
                }
                returned += calls
            } catch {
                logger.warning(
                    "unused API-call allowance not given back; the tenant may be refused that much early this month",
                    metadata: ["tenant.id": "\(key.tenantID.uuidString.lowercased())", "calls": "\(calls)", "error": "\(String(reflecting: error))"])
            }
        }
        return returned
    }

    /// Leases up to `most` calls of the tenant's month under `quota`, in a transaction of
    /// its own on `connection` (which must not be in one); returns how many were granted.
    static func lease(tenantID: UUID, period: Date, quota: Int64, most: Int64, on connection: PostgresConnection, logger: Logger) async throws -> Int64 {
        try await connection.query(
            "SELECT atrium_lease_api_calls(\(tenantID), (\(period)::timestamptz AT TIME ZONE 'UTC')::date, \(quota), \(most))",
            logger: logger
        ).collect().first?.decode(Int64.self) ?? 0
    }

    static func add(to tally: inout Tally, at time: Date) {
        tally.pending += 1
        if tally.firstPendingAt == nil { tally.firstPendingAt = time }
    }

    /// The first instant of `time`'s month in UTC, by arithmetic (`CivilDate`): it runs on
    /// every request, where a `Calendar` costs more than the rest of the request path together.
    public static func month(of time: Date) -> Date {
        let days = Int((time.timeIntervalSince1970 / 86_400).rounded(.down))
        let day = CivilDate.of(daysSince1970: days).day
        return Date(timeIntervalSince1970: Double(days - (day - 1)) * 86_400)
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
            await counter.returnUnused(database: database)
        }
    }
}
