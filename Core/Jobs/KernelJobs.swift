import Logging
import PostgresNIO

/// The kernel's own housekeeping jobs, run by every worker.
enum KernelJobs {
    /// Finished jobs are kept this long for inspection, then removed; dead jobs stay
    /// until an operator retries or cancels them.
    static let retentionDays = 7

    static func definitions(mailer: Mailer?) -> [JobDefinition] {
        [
            // The mail outbox: messages are enqueued in the transaction that decided to send them.
            JobDefinition(kind: "kernel.mail.send", maxAttempts: 8, backoff: .seconds(30)) { context in
                guard let mailer else { throw MailError("no mailer is configured for this worker") }
                try await mailer.send(try context.decodePayload(MailMessage.self))
            },
            // Usage recorded by requests waits in usage_pending (readers add it in); this
            // moves it into the month's counters so that the pending rows stay few.
            JobDefinition(kind: "kernel.usage.fold", maxAttempts: 3) { context in
                let moved = try await context.database.withPlatformTransaction(logger: context.logger) { connection in
                    try await Metering.fold(on: connection, logger: context.logger)
                }
                context.logger.debug("folded pending usage", metadata: ["usage.events": "\(moved)"])
            },
            JobDefinition(kind: "kernel.jobs.prune", maxAttempts: 3) { context in
                try await context.database.withPlatformTransaction(logger: context.logger) { connection in
                    let deleted = try await connection.query(
                        """
                        WITH pruned AS (
                            DELETE FROM jobs
                            WHERE state IN ('succeeded', 'canceled') AND finished_at < now() - make_interval(days => \(retentionDays)::int)
                            RETURNING 1
                        ) SELECT count(*)::int FROM pruned
                        """, logger: context.logger
                    ).collect().first?.decode(Int.self) ?? 0
                    context.logger.info("pruned finished jobs", metadata: ["jobs.deleted": "\(deleted)"])
                    try await connection.query(
                        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => \(TenantRequest.idempotencyWindow))",
                        logger: context.logger)
                }
            }
        ]
    }

    static var schedules: [ScheduleDefinition] {
        [
            ScheduleDefinition(name: "kernel.jobs.prune", kind: "kernel.jobs.prune", every: .seconds(3600), perTenant: false),
            ScheduleDefinition(name: "kernel.usage.fold", kind: "kernel.usage.fold", every: .seconds(60), perTenant: false),
        ]
    }
}
