import Foundation
public import Logging
import Synchronization
import PostgresNIO
public import ServiceLifecycle

/// Runs queued jobs and fires schedules; any number of workers may share one database.
///
/// A worker claims ready jobs with `FOR UPDATE SKIP LOCKED` under a lease. A job whose
/// worker died is claimed again once its lease expires. A failed job is retried with
/// exponential backoff and jitter, and after its last attempt moves to the `dead`
/// state for an operator to inspect and retry. On graceful shutdown the worker stops
/// claiming and lets the jobs it holds finish.
public struct JobWorker: Service {
    public struct Configuration: Sendable {
        public var workerID: String
        public var concurrency: Int
        public var pollInterval: Duration
        public init(workerID: String = JobWorker.defaultWorkerID(), concurrency: Int = 4, pollInterval: Duration = .seconds(1)) {
            self.workerID = workerID
            self.concurrency = concurrency
            self.pollInterval = pollInterval
        }
    }

    let database: Database
    let metering: Metering
    let channels: Set<String>
    let definitions: [String: JobDefinition]
    let schedules: [(schedule: ScheduleDefinition, moduleID: String?)]
    let configuration: Configuration
    let kit: ModuleKit
    let logger: Logger
    private let claims = ClaimSwitch()

    public init(
        database: Database, registry: ModuleRegistry, mailer: Mailer? = nil, kernelJobs: [JobDefinition] = [],
        kernelSchedules: [ScheduleDefinition] = [], configuration: Configuration, kit: ModuleKit, logger: Logger
    ) {
        self.kit = kit
        self.database = database
        self.metering = Metering(registry: registry, logger: logger)
        channels = registry.channels
        var definitions: [String: JobDefinition] = [:]
        for job in KernelJobs.definitions(mailer: mailer) + kernelJobs + registry.jobDefinitions { definitions[job.kind] = job }
        self.definitions = definitions
        self.schedules = (KernelJobs.schedules + kernelSchedules).map { ($0, nil) }
            + registry.modules.flatMap { module in module.schedules.map { ($0, Optional(module.id)) } }
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "worker.id"] = .string(configuration.workerID)
        self.logger = logger
    }

    public static func defaultWorkerID() -> String {
        "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier):\(UUID().uuidString.prefix(8).lowercased())"
    }

    /// Claims jobs as slots free: a slow job holds its own slot, never the others', so one
    /// long exchange sync does not idle the worker's other `concurrency - 1` slots.
    public func run() async throws {
        try await synchronizeSchedules()
        logger.info("job worker started", metadata: ["worker.concurrency": "\(configuration.concurrency)", "worker.kinds": "\(definitions.count)"])
        let running = RunningJobs()
        // One element per job that ended: wakes the loop when every slot was taken.
        let (freed, slotFreed) = AsyncStream.makeStream(of: Void.self)
        await withDiscardingTaskGroup { group in
            var iterator = freed.makeAsyncIterator()
            while !Task.isShuttingDownGracefully && !Task.isCancelled && claims.isOn {
                let free = configuration.concurrency - running.count
                if free <= 0 {
                    _ = await iterator.next()
                    continue
                }
                var claimed: [Claimed] = []
                do {
                    try await fireDueSchedules()
                    claimed = try await claim(limit: free)
                } catch {
                    logger.error("job worker iteration failed", metadata: ["error": "\(String(reflecting: error))"])
                }
                for job in claimed {
                    running.started()
                    group.addTask {
                        await self.execute(job)
                        running.ended()
                        slotFreed.yield()
                    }
                }
                if claimed.isEmpty {
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: configuration.pollInterval) }
                }
            }
            // The group waits for the jobs still running: a graceful stop lets them finish.
        }
        slotFreed.finish()
        logger.info("job worker stopped")
    }

    /// Stops claiming jobs; the jobs running go on, and `run` returns once they have
    /// ended. A server calls it as soon as its graceful stop begins, though the worker's own
    /// turn to stop comes after the HTTP server has drained: a job enqueued by a request
    /// in that drain waits, queued, for the next worker instead of prolonging the stop.
    public func stopClaiming() {
        claims.turnOff()
    }

    // MARK: - Jobs

    /// A job claimed by this worker.
    struct Claimed: Sendable {
        var id: UUID
        var tenantID: UUID?
        var kind: String
        var moduleID: String?
        var payload: String
        var attempts: Int
        var maxAttempts: Int
    }

    /// Claims up to `concurrency` ready jobs, runs them concurrently and records each
    /// outcome; returns how many it claimed.
    @discardableResult
    public func runAvailableJobs() async throws -> Int {
        let claimed = try await claim(limit: configuration.concurrency)
        await withTaskGroup(of: Void.self) { group in
            for job in claimed {
                group.addTask { await self.execute(job) }
            }
        }
        return claimed.count
    }

    func claim(limit: Int) async throws -> [Claimed] {
        let kinds = definitions.keys.sorted()
        guard !kinds.isEmpty else { return [] }
        let leases = kinds.map { kind in Int(definitions[kind].map { $0.lease.components.seconds } ?? 300) }
        let attempts = kinds.map { kind in definitions[kind]?.maxAttempts ?? 5 }
        let workerID = configuration.workerID
        return try await database.withPlatformTransaction(logger: logger) { connection in
            let rows = try await connection.query(
                """
                WITH ready AS (
                    SELECT id FROM jobs
                    WHERE kind = ANY(\(kinds))
                      AND ((state = 'pending' AND run_at <= now()) OR (state = 'running' AND lease_expires_at < now()))
                    ORDER BY run_at
                    LIMIT \(limit)
                    FOR UPDATE SKIP LOCKED
                ), leases AS (
                    SELECT kind, lease, max_attempts FROM unnest(\(kinds)::text[], \(leases)::int[], \(attempts)::int[]) AS l(kind, lease, max_attempts)
                )
                UPDATE jobs SET state = 'running', attempts = jobs.attempts + 1, locked_by = \(workerID),
                    max_attempts = coalesce(jobs.max_attempts, leases.max_attempts),
                    lease_expires_at = now() + make_interval(secs => leases.lease), updated_at = now()
                FROM ready, leases
                WHERE jobs.id = ready.id AND leases.kind = jobs.kind
                RETURNING jobs.id, jobs.tenant_id, jobs.kind, jobs.module_id, jobs.payload::text, jobs.attempts, jobs.max_attempts
                """, logger: logger)
            var claimed: [Claimed] = []
            for try await row in rows.decode((UUID, UUID?, String, String?, String, Int, Int).self) {
                claimed.append(Claimed(id: row.0, tenantID: row.1, kind: row.2, moduleID: row.3, payload: row.4, attempts: row.5, maxAttempts: row.6))
            }
            return claimed
        }
    }

    func execute(_ job: Claimed) async {
        var logger = self.logger
        logger[metadataKey: "job.id"] = .string(job.id.uuidString.lowercased())
        logger[metadataKey: "job.kind"] = .string(job.kind)
        if let tenantID = job.tenantID { logger[metadataKey: "tenant.id"] = .string(tenantID.uuidString.lowercased()) }
        guard let definition = definitions[job.kind] else { return }
        do {
            if job.attempts > job.maxAttempts {
                // The previous holder's lease ran out on its last attempt.
                try await finish(job, state: "dead", error: "lease expired on the final attempt", logger: logger)
                return
            }
            if let tenantID = job.tenantID, let moduleID = job.moduleID, try await !moduleEnabled(moduleID, tenantID: tenantID, logger: logger) {
                try await finish(job, state: "canceled", error: "module '\(moduleID)' is not enabled for this tenant", logger: logger)
                return
            }
            let context = JobContext(
                jobID: job.id, kind: job.kind, tenantID: job.tenantID, payload: Data(job.payload.utf8), attempt: job.attempts, logger: logger,
                database: database, metering: metering, channels: channels, module: kit.context(for: String(job.kind.prefix { $0 != "." })))
            do {
                guard try await runKeepingLease(definition, context, job, logger: logger) else { return }
                try await finish(job, state: "succeeded", error: nil, logger: logger)
                logger.debug("job succeeded")
            } catch let later as JobRetryLater {
                // Told when to come back (an outside service's Retry-After): not a failure,
                // so the attempt is given back and the job never dies of waiting.
                logger.notice("job waits as told", metadata: ["reason": "\(later.reason)", "job.retry_in": "\(later.delay)"])
                try await reschedule(job, after: later.delay, error: later.reason, refundingAttempt: true, logger: logger)
            } catch {
                let message = String(describing: error)
                if job.attempts >= job.maxAttempts {
                    logger.error("job failed for the last time; moved to dead letter", metadata: ["error": "\(message)", "job.attempts": "\(job.attempts)"])
                    try await finish(job, state: "dead", error: message, logger: logger)
                } else {
                    let delay = definition.retryDelay(afterAttempt: job.attempts)
                    logger.warning("job failed; will retry", metadata: ["error": "\(message)", "job.attempts": "\(job.attempts)", "job.retry_in": "\(delay)"])
                    try await reschedule(job, after: delay, error: message, logger: logger)
                }
            }
        } catch {
            // Recording the outcome failed (database gone); the lease will expire and the job runs again.
            logger.error("cannot record job outcome", metadata: ["error": "\(String(reflecting: error))"])
        }
    }

    /// The lease of a job that is no longer this worker's: another worker may run it now.
    struct LeaseLost: Error, CustomStringConvertible {
        var reason: String
        var description: String { "the job's lease was lost (\(reason)); its handler was cancelled" }
    }

    /// Runs the job's handler while its lease is renewed beside it. Returns false when the
    /// lease was lost: the handler was cancelled, and the outcome is not this worker's to
    /// record. The handler's own error is thrown.
    private func runKeepingLease(_ definition: JobDefinition, _ context: JobContext, _ job: Claimed, logger: Logger) async throws -> Bool {
        enum Ended: Sendable {
            case handler
            case leaseLost(LeaseLost)
            /// Renewal was cancelled (the worker's task was): wait for the handler.
            case renewalStopped
        }
        let lease = definition.lease
        return try await withThrowingTaskGroup(of: Ended.self) { group in
            group.addTask {
                try await definition.handler(context)
                return .handler
            }
            // A job that outlives a third of its lease gets the lease extended, so only a
            // worker that really died (or lost its lease) loses its job to another.
            group.addTask {
                do {
                    try await self.keepLease(of: job, lease: lease, logger: logger)
                } catch let lost as LeaseLost {
                    return .leaseLost(lost)
                }
                return .renewalStopped
            }
            defer { group.cancelAll() }
            while let ended = try await group.next() {
                switch ended {
                case .handler:
                    return true
                case .renewalStopped:
                    continue
                case .leaseLost(let lost):
                    logger.error("job lease lost; cancelling its handler", metadata: ["error": "\(lost.reason)"])
                    group.cancelAll()
                    // The handler's cancellation (or its end) is not this worker's outcome.
                    while (try? await group.next()) != nil {}
                    return false
                }
            }
            return true
        }
    }

    /// Renews the job's lease every third of it until cancelled. Throws `LeaseLost` when
    /// the job is no longer this worker's (another took it, an operator cancelled it), or
    /// when renewals failed until the lease ran out.
    func keepLease(of job: Claimed, lease: Duration, logger: Logger) async throws {
        let workerID = configuration.workerID
        let seconds = Double(lease.components.seconds) + Double(lease.components.attoseconds) / 1e18
        var heldUntil = ContinuousClock.now + lease
        while true {
            do {
                try await Task.sleep(for: lease / 3)
            } catch {
                return  // cancelled: the handler ended
            }
            do {
                let renewed = try await database.withPlatformTransaction(logger: logger) { connection in
                    try await connection.query(
                        """
                        UPDATE jobs SET lease_expires_at = now() + make_interval(secs => \(seconds)), updated_at = now()
                        WHERE id = \(job.id) AND state = 'running' AND locked_by = \(workerID)
                        RETURNING 1
                        """, logger: logger
                    ).collect().count == 1
                }
                guard renewed else { throw LeaseLost(reason: "the job is no longer running under this worker") }
                heldUntil = ContinuousClock.now + lease
            } catch let lost as LeaseLost {
                throw lost
            } catch {
                if Task.isCancelled { return }
                logger.warning("cannot renew job lease; retrying", metadata: ["error": "\(String(reflecting: error))"])
                if ContinuousClock.now >= heldUntil { throw LeaseLost(reason: "renewals failed until the lease ran out") }
            }
        }
    }

    private func moduleEnabled(_ moduleID: String, tenantID: UUID, logger: Logger) async throws -> Bool {
        try await database.withTenantTransaction(tenantID, logger: logger) { connection in
            try await ModuleEnablement(logger: logger).isEnabled(moduleID, on: connection)
        }
    }

    private func finish(_ job: Claimed, state: String, error: String?, logger: Logger) async throws {
        let workerID = configuration.workerID
        try await database.withPlatformTransaction(logger: logger) { connection in
            try await connection.query(
                """
                UPDATE jobs SET state = \(state), last_error = \(error), finished_at = now(), updated_at = now(),
                    locked_by = NULL, lease_expires_at = NULL
                WHERE id = \(job.id) AND state = 'running' AND locked_by = \(workerID)
                """, logger: logger)
        }
    }

    private func reschedule(_ job: Claimed, after delay: Duration, error: String, refundingAttempt: Bool = false, logger: Logger) async throws {
        let workerID = configuration.workerID
        let milliseconds = Int(delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000)
        try await database.withPlatformTransaction(logger: logger) { connection in
            try await connection.query(
                """
                UPDATE jobs SET state = 'pending', last_error = \(error), run_at = now() + make_interval(secs => \(Double(milliseconds) / 1000)),
                    attempts = attempts - \(refundingAttempt ? 1 : 0), updated_at = now(), locked_by = NULL, lease_expires_at = NULL
                WHERE id = \(job.id) AND state = 'running' AND locked_by = \(workerID)
                """, logger: logger)
        }
    }

    // MARK: - Schedules

    /// Records the declared schedules, keeping each one's next slot across restarts.
    public func synchronizeSchedules() async throws {
        let schedules = self.schedules
        try await database.withTransaction(logger: logger) { connection in
            for (schedule, moduleID) in schedules {
                try await connection.query(
                    """
                    INSERT INTO job_schedules (name, kind, module_id, interval_seconds, per_tenant, next_run_at)
                    VALUES (\(schedule.name), \(schedule.kind), \(moduleID), \(Int(schedule.interval.components.seconds)), \(schedule.perTenant), now())
                    ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, module_id = excluded.module_id,
                        interval_seconds = excluded.interval_seconds, per_tenant = excluded.per_tenant
                    """, logger: logger)
            }
        }
    }

    /// Enqueues the jobs of every schedule whose slot has come, once per slot however many
    /// workers run: the schedule row is locked and advanced in the same transaction.
    @discardableResult
    public func fireDueSchedules() async throws -> Int {
        let names = schedules.map(\.schedule.name)
        guard !names.isEmpty else { return 0 }
        let queue = JobQueue(logger: logger)
        return try await database.withPlatformTransaction(logger: logger) { connection in
            let due = try await connection.query(
                """
                SELECT name, kind, module_id, interval_seconds, per_tenant, extract(epoch FROM next_run_at)::float8
                FROM job_schedules WHERE name = ANY(\(names)) AND next_run_at <= now()
                FOR UPDATE SKIP LOCKED
                """, logger: logger
            ).collect()
            var enqueued = 0
            for row in due {
                let (name, kind, moduleID, interval, perTenant, slot) = try row.decode((String, String, String?, Int, Bool, Double).self)
                let key = "schedule:\(name):\(Int(slot))"
                if perTenant {
                    let tenants = try await connection.query(
                        """
                        SELECT t.id FROM tenants t
                        WHERE t.status = 'active'
                          AND (\(moduleID)::text IS NULL OR EXISTS (
                              SELECT 1 FROM tenant_modules m WHERE m.tenant_id = t.id AND m.module_id = \(moduleID)))
                        """, logger: logger
                    ).collect()
                    for tenant in tenants {
                        let tenantID = try tenant.decode(UUID.self)
                        if try await queue.enqueue(kind: kind, tenantID: tenantID, moduleID: moduleID, uniqueKey: key, on: connection) != nil {
                            enqueued += 1
                        }
                    }
                } else if try await queue.enqueue(kind: kind, tenantID: nil, moduleID: moduleID, uniqueKey: key, on: connection) != nil {
                    enqueued += 1
                }
                try await connection.query(
                    """
                    UPDATE job_schedules SET last_run_at = now(),
                        next_run_at = next_run_at + make_interval(secs => \(interval))
                            * (floor(extract(epoch FROM now() - next_run_at) / \(interval)) + 1)
                    WHERE name = \(name)
                    """, logger: logger)
            }
            return enqueued
        }
    }
}

/// How many of a worker's slots hold a job: counted up by the loop that claims, down by
/// the job's own task as it ends.
private final class RunningJobs: Sendable {
    private let value = Atomic<Int>(0)
    var count: Int { value.load(ordering: .relaxed) }
    func started() { value.add(1, ordering: .relaxed) }
    func ended() { value.subtract(1, ordering: .relaxed) }
}

/// Whether a worker still claims jobs.
private final class ClaimSwitch: Sendable {
    private let on = Atomic<Bool>(true)
    var isOn: Bool { on.load(ordering: .relaxed) }
    func turnOff() { on.store(false, ordering: .relaxed) }
}
