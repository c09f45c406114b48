import AtriumCore
import AtriumTesting
import Foundation
import Logging
import PostgresNIO
import Synchronization
import Testing

/// A module whose job handlers are wired to a test's counters.
struct JobsFixture: AtriumModule {
    var id: String { "fixture" }
    var version: String { "1.0.0" }
    var requiredKernelVersion: String { "0.1" }
    let jobs: [JobDefinition]
    let schedules: [ScheduleDefinition]
    func routes(_ routes: ModuleRoutes) {}
}

final class Counter: Sendable {
    private let value = Mutex(0)
    func increment() -> Int { value.withLock { $0 += 1; return $0 } }
    var count: Int { value.withLock { $0 } }
}

struct JobFailure: Error, CustomStringConvertible {
    var description: String { "simulated failure" }
}

@Suite("Job queue")
struct JobQueueTests {
    let logger = TestDatabase.logger

    func worker(_ database: Database, _ module: JobsFixture, id: String = "w1", concurrency: Int = 4) throws -> JobWorker {
        JobWorker(database: database, registry: try ModuleRegistry([module]), configuration: .init(workerID: id, concurrency: concurrency), kit: .ephemeral(logger: logger), logger: logger)
    }

    func job(_ id: UUID, in database: Database) async throws -> JobQueue.Job? {
        try await database.withPlatformTransaction(logger: logger) { connection in
            try await JobQueue(logger: logger).list(limit: 1000, on: connection).first { $0.id == id }
        }
    }

    func enqueue(_ kind: String, tenant: Tenant? = nil, uniqueKey: String? = nil, maxAttempts: Int? = nil, in database: Database) async throws -> UUID? {
        try await database.withPlatformTransaction(logger: logger) { connection in
            try await JobQueue(logger: logger).enqueue(
                kind: kind, tenantID: tenant?.id, moduleID: tenant == nil ? nil : "fixture", uniqueKey: uniqueKey, maxAttempts: maxAttempts, on: connection)
        }
    }

    /// Makes a pending job runnable now, standing in for the passage of its backoff delay.
    func makeDue(_ id: UUID, in database: Database) async throws {
        try await database.withPlatformTransaction(logger: logger) { connection in
            try await connection.query("UPDATE jobs SET run_at = now() WHERE id = \(id)", logger: logger)
        }
    }

    @Test func succeedingJobRunsOnceAndIsMarkedSucceeded() async throws {
        let db = try await TestDatabase.create()
        let runs = Counter()
        let module = JobsFixture(jobs: [JobDefinition(kind: "fixture.work") { _ in _ = runs.increment() }], schedules: [])
        try await db.withApp { database in
            let id = try #require(try await enqueue("fixture.work", in: database))
            let worker = try worker(database, module)
            let observed1 = try await worker.runAvailableJobs()
            #expect(observed1 == 1)
            let observed2 = try await worker.runAvailableJobs()
            #expect(observed2 == 0)
            #expect(runs.count == 1)
            let observed3 = try await job(id, in: database)?.state
            #expect(observed3 == "succeeded")
        }
    }

    @Test func failingJobRetriesWithBackoffThenGoesToDeadLetter() async throws {
        let db = try await TestDatabase.create()
        let runs = Counter()
        let module = JobsFixture(
            jobs: [JobDefinition(kind: "fixture.flaky", maxAttempts: 3, backoff: .seconds(60)) { _ in
                _ = runs.increment()
                throw JobFailure()
            }], schedules: [])
        try await db.withApp { database in
            // Enqueued without a number of its own: the kind's declared 3 attempts hold.
            let id = try #require(try await enqueue("fixture.flaky", in: database))
            let worker = try worker(database, module)
            let observed4 = try await worker.runAvailableJobs()
            #expect(observed4 == 1)
            let afterFirst = try #require(try await job(id, in: database))
            #expect(afterFirst.state == "pending")
            #expect(afterFirst.lastError == "simulated failure")
            // Backoff: the retry is scheduled about a minute out (60 s ± 25% jitter), so nothing runs now.
            let delay = afterFirst.runAt.timeIntervalSinceNow
            #expect(delay > 40 && delay < 80)
            let observed5 = try await worker.runAvailableJobs()
            #expect(observed5 == 0)
            for _ in 0..<2 {
                try await makeDue(id, in: database)
                let observed6 = try await worker.runAvailableJobs()
                #expect(observed6 == 1)
            }
            let dead = try #require(try await job(id, in: database))
            #expect(dead.state == "dead")
            #expect(dead.attempts == 3)
            #expect(dead.maxAttempts == 3)
            #expect(runs.count == 3)
            // An operator can put it back in line.
            let retried = try await database.withPlatformTransaction(logger: logger) { try await JobQueue(logger: logger).retry(id, on: $0) }
            #expect(retried)
            let observed7 = try await job(id, in: database)?.state
            #expect(observed7 == "pending")
        }
    }

    /// A handler told to come back later (`JobRetryLater`) runs again after the delay it
    /// names, however many times: the waits do not count as attempts.
    @Test func aJobToldToComeBackLaterWaitsWithoutUsingItsAttempts() async throws {
        let db = try await TestDatabase.create()
        let runs = Counter()
        let module = JobsFixture(
            jobs: [JobDefinition(kind: "fixture.busy", maxAttempts: 2) { _ in
                if runs.increment() <= 3 { throw JobRetryLater(after: .seconds(120), reason: "the service said Retry-After: 120") }
            }], schedules: [])
        try await db.withApp { database in
            let id = try #require(try await enqueue("fixture.busy", in: database))
            let worker = try worker(database, module)
            for _ in 0..<3 {
                #expect(try await worker.runAvailableJobs() == 1)
                let waiting = try #require(try await job(id, in: database))
                #expect(waiting.state == "pending")
                #expect(waiting.attempts == 0)
                #expect(waiting.lastError == "the service said Retry-After: 120")
                let delay = waiting.runAt.timeIntervalSinceNow
                #expect(delay > 110 && delay < 130, "the delay it named, no jitter")
                #expect(try await worker.runAvailableJobs() == 0)
                try await makeDue(id, in: database)
            }
            #expect(try await worker.runAvailableJobs() == 1)
            #expect(try await job(id, in: database)?.state == "succeeded", "more waits than its two attempts, and still alive")
        }
    }

    /// A job enqueued with a number of attempts of its own keeps it over its kind's.
    @Test func anExplicitNumberOfAttemptsWinsOverTheDeclaredOne() async throws {
        let db = try await TestDatabase.create()
        let module = JobsFixture(jobs: [JobDefinition(kind: "fixture.flaky", maxAttempts: 3, backoff: .seconds(60)) { _ in throw JobFailure() }], schedules: [])
        try await db.withApp { database in
            let id = try #require(try await enqueue("fixture.flaky", maxAttempts: 1, in: database))
            #expect(try await job(id, in: database)?.maxAttempts == 1)
            _ = try await worker(database, module).runAvailableJobs()
            #expect(try await job(id, in: database)?.state == "dead")
        }
    }

    /// One slow job holds one slot: the worker claims the next jobs as the other slots
    /// free, not when its whole batch has ended.
    @Test(.timeLimit(.minutes(2))) func aSlowJobHoldsOnlyItsOwnSlot() async throws {
        let db = try await TestDatabase.create()
        let quick = Counter()
        let release = Mutex(false)
        let module = JobsFixture(
            jobs: [
                JobDefinition(kind: "fixture.slow") { _ in
                    while !release.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(20)) }
                },
                JobDefinition(kind: "fixture.quick") { _ in _ = quick.increment() },
            ], schedules: [])
        try await db.withApp(maximumConnections: 6) { database in
            let slow = try #require(try await enqueue("fixture.slow", in: database))
            // Claimed in the order they were enqueued: the slow one and a quick one first.
            for _ in 0..<4 { _ = try await enqueue("fixture.quick", in: database) }
            let worker = JobWorker(
                database: database, registry: try ModuleRegistry([module]),
                configuration: .init(workerID: "slots", concurrency: 2, pollInterval: .milliseconds(50)), kit: .ephemeral(logger: logger), logger: logger)
            let running = Task { try await worker.run() }
            let allQuickRan = await eventually(timeout: .seconds(30)) { quick.count == 4 }
            #expect(allQuickRan, "only \(quick.count) of 4 quick jobs ran while the slow one held its slot")
            #expect(try await job(slow, in: database)?.state == "running")
            release.withLock { $0 = true }
            #expect(try await eventually { try await job(slow, in: database)?.state == "succeeded" })
            running.cancel()
            _ = await running.result
        }
    }

    /// A job whose lease is no longer its worker's (an operator cancelled it here) has its
    /// handler cancelled at the next renewal, and its outcome is left alone.
    @Test(.timeLimit(.minutes(2))) func aLostLeaseCancelsTheHandler() async throws {
        let db = try await TestDatabase.create()
        let started = Counter()
        let cancelled = Counter()
        let module = JobsFixture(
            jobs: [JobDefinition(kind: "fixture.endless", lease: .seconds(3)) { _ in
                _ = started.increment()
                do {
                    while true { try await Task.sleep(for: .milliseconds(20)) }
                } catch {
                    _ = cancelled.increment()
                    throw error
                }
            }], schedules: [])
        try await db.withApp(maximumConnections: 6) { database in
            let id = try #require(try await enqueue("fixture.endless", in: database))
            let worker = try worker(database, module)
            let running = Task { try await worker.runAvailableJobs() }
            #expect(await eventually { started.count == 1 })
            let cancelledByOperator = try await database.withPlatformTransaction(logger: logger) { try await JobQueue(logger: logger).cancel(id, on: $0) }
            #expect(cancelledByOperator)
            #expect(await eventually(timeout: .seconds(20)) { cancelled.count == 1 }, "the handler ran on after its lease was lost")
            _ = try await running.value
            let after = try #require(try await job(id, in: database))
            #expect(after.state == "canceled")
            #expect(after.lastError == "canceled by operator")
        }
    }

    @Test func backoffDoublesWithJitterAndIsCapped() {
        let definition = JobDefinition(kind: "k", backoff: .seconds(2), maxBackoff: .seconds(60)) { _ in }
        #expect(definition.retryDelay(afterAttempt: 1, random: 0) == .seconds(2))
        #expect(definition.retryDelay(afterAttempt: 3, random: 0) == .seconds(8))
        #expect(definition.retryDelay(afterAttempt: 3, random: 1) == .seconds(10))
        #expect(definition.retryDelay(afterAttempt: 3, random: -1) == .seconds(6))
        #expect(definition.retryDelay(afterAttempt: 20, random: 0) == .seconds(60))
    }

    @Test func jobOfAWorkerThatDiedRunsAgainAfterItsLeaseExpires() async throws {
        let db = try await TestDatabase.create()
        let runs = Counter()
        let module = JobsFixture(jobs: [JobDefinition(kind: "fixture.lease", lease: .seconds(1)) { _ in _ = runs.increment() }], schedules: [])
        try await db.withApp { database in
            let id = try #require(try await enqueue("fixture.lease", in: database))
            // A worker claims the job and dies before finishing it.
            let dying = try worker(database, module, id: "dying")
            let claimedByDying = try await database.withPlatformTransaction(logger: logger) { connection in
                try await connection.query(
                    """
                    UPDATE jobs SET state = 'running', attempts = 1, locked_by = 'dying', lease_expires_at = now() + interval '1 hour'
                    WHERE id = \(id) RETURNING 1
                    """, logger: logger
                ).collect().count
            }
            #expect(claimedByDying == 1)
            _ = dying
            let survivor = try worker(database, module, id: "survivor")
            let observed8 = try await survivor.runAvailableJobs()
            #expect(observed8 == 0)  // lease still held
            // Time passes: the dead worker's lease runs out (moved, not waited for, so a
            // loaded machine cannot make the first check see it expired).
            try await database.withPlatformTransaction(logger: logger) { connection in
                try await connection.query("UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = \(id)", logger: logger)
            }
            let observed9 = try await survivor.runAvailableJobs()
            #expect(observed9 == 1)
            #expect(runs.count == 1)
            let finished = try #require(try await job(id, in: database))
            #expect(finished.state == "succeeded")
            #expect(finished.attempts == 2)
        }
    }

    @Test func uniqueKeyKeepsOneWaitingJob() async throws {
        let db = try await TestDatabase.create()
        let module = JobsFixture(jobs: [JobDefinition(kind: "fixture.sync") { _ in }], schedules: [])
        try await db.withApp { database in
            let first = try await enqueue("fixture.sync", uniqueKey: "account-1", in: database)
            let duplicate = try await enqueue("fixture.sync", uniqueKey: "account-1", in: database)
            let other = try await enqueue("fixture.sync", uniqueKey: "account-2", in: database)
            #expect(first != nil)
            #expect(duplicate == nil)
            #expect(other != nil)
            // Once the first has run, the key is free again.
            let observed10 = try await worker(database, module).runAvailableJobs()
            #expect(observed10 == 2)
            let observed11 = try await enqueue("fixture.sync", uniqueKey: "account-1", in: database)
            #expect(observed11 != nil)
        }
    }

    @Test func jobEnqueuedInARolledBackTransactionDoesNotExist() async throws {
        let db = try await TestDatabase.create()
        let tenant = try await db.createTenant("acme")
        try await db.withApp { database in
            await #expect(throws: JobFailure.self) {
                try await database.withTenantTransaction(tenant.id, logger: logger) { connection in
                    try await JobQueue(logger: logger).enqueue(kind: "fixture.work", tenantID: tenant.id, on: connection)
                    throw JobFailure()
                }
            }
            let count = try await database.withPlatformTransaction(logger: logger) { connection in
                try await connection.query("SELECT count(*)::int FROM jobs", logger: logger).collect().first?.decode(Int.self)
            }
            #expect(count == 0)
        }
    }

    @Test func tenantJobOfADisabledModuleIsSkipped() async throws {
        let db = try await TestDatabase.create()
        let enabled = try await db.createTenant("on", modules: ["fixture"])
        let disabled = try await db.createTenant("off")
        let runs = Counter()
        let module = JobsFixture(jobs: [JobDefinition(kind: "fixture.tenant") { _ in _ = runs.increment() }], schedules: [])
        try await db.withApp { database in
            let runID = try #require(try await enqueue("fixture.tenant", tenant: enabled, in: database))
            let skipID = try #require(try await enqueue("fixture.tenant", tenant: disabled, in: database))
            let observed12 = try await worker(database, module).runAvailableJobs()
            #expect(observed12 == 2)
            #expect(runs.count == 1)
            let observed13 = try await job(runID, in: database)?.state
            #expect(observed13 == "succeeded")
            let skipped = try await job(skipID, in: database)
            #expect(skipped?.state == "canceled")
            #expect(skipped?.lastError?.contains("not enabled") == true)
        }
    }

    @Test func scheduleFiresOncePerSlotAcrossWorkersAndOnlyForActiveEnabledTenants() async throws {
        let db = try await TestDatabase.create()
        _ = try await db.createTenant("with", modules: ["fixture"])
        _ = try await db.createTenant("without")
        // A suspended tenant with the module enabled gets no scheduled job either.
        _ = try await db.createTenant("suspended", modules: ["fixture"])
        let suspended = try await db.withOwner {
            try await TenantStore(logger: logger).update(slug: "suspended", status: .suspended, on: $0)
        }
        #expect(suspended?.status == .suspended)
        let module = JobsFixture(
            jobs: [JobDefinition(kind: "fixture.nightly") { _ in }, JobDefinition(kind: "fixture.platform") { _ in }],
            schedules: [
                ScheduleDefinition(name: "fixture.nightly", kind: "fixture.nightly", every: .seconds(3600), perTenant: true),
                ScheduleDefinition(name: "fixture.platform", kind: "fixture.platform", every: .seconds(3600), perTenant: false),
            ])
        try await db.withApp(maximumConnections: 6) { database in
            let workers = try (0..<3).map { try worker(database, module, id: "w\($0)") }
            try await workers[0].synchronizeSchedules()
            let fired = try await withThrowingTaskGroup(of: Int.self) { group in
                for worker in workers { group.addTask { try await worker.fireDueSchedules() } }
                return try await group.reduce(0, +)
            }
            #expect(fired == 4)  // one per enabled tenant, one platform job, and the kernel's prune and usage-fold jobs
            let observed14 = try await workers[1].fireDueSchedules()
            #expect(observed14 == 0)  // the next slot is an hour away
            let kinds = try await database.withPlatformTransaction(logger: logger) { connection in
                try await JobQueue(logger: logger).list(on: connection).map(\.kind).sorted()
            }
            #expect(kinds == ["fixture.nightly", "fixture.platform", "kernel.jobs.prune", "kernel.usage.fold"])
            let next = try await database.client.query(
                "SELECT min(next_run_at) > now() + interval '59 minutes' FROM job_schedules WHERE name <> 'kernel.usage.fold'", logger: logger
            ).collect().first?.decode(Bool.self)
            #expect(next == true)
        }
    }

    @Test func workerServiceRunsJobsUntilShutdown() async throws {
        let db = try await TestDatabase.create()
        let runs = Counter()
        let module = JobsFixture(jobs: [JobDefinition(kind: "fixture.background") { _ in _ = runs.increment() }], schedules: [])
        try await db.withApp { database in
            for _ in 0..<5 { _ = try await enqueue("fixture.background", in: database) }
            let worker = JobWorker(
                database: database, registry: try ModuleRegistry([module]),
                configuration: .init(workerID: "service", concurrency: 2, pollInterval: .milliseconds(50)), kit: .ephemeral(logger: logger), logger: logger)
            let task = Task { try await worker.run() }
            // A generous bound (the loop ends as soon as all five ran): on a loaded 2-core
            // machine ten seconds once saw only four.
            let deadline = ContinuousClock.now + .seconds(60)
            while runs.count < 5 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            task.cancel()
            // The worker stops on cancellation, and with nothing but that.
            if case .failure(let error) = await task.result { #expect(error is CancellationError, "\(error)") }
            #expect(runs.count == 5)
        }
    }

    @Test func longJobKeepsItsLeaseSoNoOtherWorkerTakesIt() async throws {
        let db = try await TestDatabase.create()
        let runs = Counter()
        let module = JobsFixture(
            // The job outlives its lease by half; the heartbeat (every lease/3) must keep it.
            // The lease leaves 8 s of slack for a loaded machine's scheduling delays (2.7 s
            // and then 4 s were each once not enough in a full run on two cores).
            jobs: [JobDefinition(kind: "fixture.long", lease: .seconds(12)) { _ in
                _ = runs.increment()
                try await Task.sleep(for: .seconds(18))
            }], schedules: [])
        try await db.withApp(maximumConnections: 6) { database in
            let id = try #require(try await enqueue("fixture.long", in: database))
            let first = try worker(database, module, id: "first")
            let second = try worker(database, module, id: "second")
            let finished = Counter()
            let running = Task {
                defer { _ = finished.increment() }
                return try await first.runAvailableJobs()
            }
            // The second worker tries to claim the job for as long as the first runs it.
            var stolen = 0
            while finished.count == 0 {
                try await Task.sleep(for: .milliseconds(250))
                stolen += try await second.runAvailableJobs()
            }
            _ = try await running.value
            #expect(stolen == 0)
            #expect(runs.count == 1)
            #expect(try await job(id, in: database)?.state == "succeeded")
        }
    }

    @Test func pruneRemovesOldFinishedJobsAndKeepsDeadOnes() async throws {
        let db = try await TestDatabase.create()
        let module = JobsFixture(jobs: [], schedules: [])
        try await db.withApp { database in
            try await database.withPlatformTransaction(logger: logger) { connection in
                try await connection.query(
                    """
                    INSERT INTO jobs (kind, state, finished_at) VALUES
                        ('fixture.old', 'succeeded', now() - interval '8 days'),
                        ('fixture.recent', 'succeeded', now() - interval '1 day'),
                        ('fixture.dead', 'dead', now() - interval '30 days'),
                        ('kernel.jobs.prune', 'pending', NULL)
                    """, logger: logger)
            }
            #expect(try await worker(database, module).runAvailableJobs() == 1)
            let kinds = try await database.withPlatformTransaction(logger: logger) { connection in
                try await JobQueue(logger: logger).list(on: connection).map(\.kind).sorted()
            }
            #expect(kinds == ["fixture.dead", "fixture.recent", "kernel.jobs.prune"])
        }
    }
}
