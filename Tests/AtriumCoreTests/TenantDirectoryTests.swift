import AtriumCore
import AtriumTesting
import Foundation
import PostgresNIO
import Testing

@Suite("Tenants from memory, kept fresh by LISTEN")
struct TenantDirectoryTests {
    /// Waits (bounded) until `condition` holds; false when it never did.
    func eventually(_ condition: () async throws -> Bool) async rethrows -> Bool {
        for _ in 0..<300 {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    /// `eventually` where a failed check counts as "not yet": right after a backend is
    /// killed, the shared pool may hand out its dead connection once (under load it did).
    func eventuallyRiding(_ condition: () async throws -> Bool) async -> Bool {
        await eventually { (try? await condition()) == true }
    }

    func suspend(_ db: TestDatabase, _ slug: String, _ status: String) async throws {
        try await described("setting \(slug) \(status)") {
            try await db.withOwner { connection in
                try await connection.query("UPDATE tenants SET status = \(status) WHERE slug = \(slug)", logger: TestDatabase.logger)
            }
        }
    }

    func superuser(_ db: TestDatabase, _ sql: String) async throws {
        try await described(sql) {
            try await withPostgresConnection(db.superuser, logger: TestDatabase.logger) { connection in
                try await connection.query(PostgresQuery(unsafeSQL: sql), logger: TestDatabase.logger)
            }
        }
    }

    /// Runs `body`, naming the step and PostgreSQL's message when it fails (PSQLError's
    /// own description hides the message).
    @discardableResult
    func described<T>(_ step: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PSQLError {
            throw TestFailure("\(step): \(String(reflecting: error))")
        }
    }

    /// A loop of full runs once hung in this test (before the listener was stopped and
    /// waited for inside the pool's lifetime): the time limit makes such a hang a failure.
    @Test(.timeLimit(.minutes(2))) func changesReachTheCacheAndALostListenerServesNothingStale() async throws {
        let db = try await TestDatabase.create()
        _ = try await db.createTenant("acme", modules: [])
        try await db.withApp(maximumConnections: 4) { database in
            let directory = TenantDirectory(logger: TestDatabase.logger)
            let listener = Task { try await TenantDirectory.Listener(directory: directory, database: database, retryDelay: .milliseconds(100)).run() }
            // The listener holds one of the pool's connections: it is stopped and waited for
            // before the pool shuts down, whatever the checks below do.
            do {
                try await checkCacheAndLostListener(db, directory, database)
            } catch {
                await stop(listener)
                throw error
            }
            await stop(listener)
        }
    }

    /// Cancels the listener and waits (bounded) for it to end: a listener that ignored
    /// cancellation would keep its connection and hold up the pool's shutdown.
    private func stop(_ listener: Task<Void, any Error>) async {
        listener.cancel()
        let ended = Counter()
        Task { _ = await listener.result; _ = ended.increment() }
        let stopped = await eventually { ended.count == 1 }
        #expect(stopped, "the tenant listener did not end when cancelled")
    }

    private func checkCacheAndLostListener(_ db: TestDatabase, _ directory: TenantDirectory, _ database: Database) async throws {
        #expect(await eventually { directory.isListening })
        #expect(try await directory.tenant(slug: "acme", database: database)?.tenant.status == .active)

        // A committed change is seen through the cache.
        try await suspend(db, "acme", "suspended")
        #expect(try await eventually { try await directory.tenant(slug: "acme", database: database)?.tenant.status == .suspended })

        // With the trigger off, a change sends no notification: the cached entry is what
        // is served (so the cache really is one).
        try await superuser(db, "ALTER TABLE tenants DISABLE TRIGGER tenants_notify")
        try await suspend(db, "acme", "active")
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await directory.tenant(slug: "acme", database: database)?.tenant.status == .suspended)

        // The listening connection is killed: the cache is emptied, so the change above,
        // which no notification announced, is served once the connection is gone.
        try await superuser(db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'")
        #expect(await eventuallyRiding { try await directory.tenant(slug: "acme", database: database)?.tenant.status == .active })
        #expect(await eventually { directory.isListening })  // and it listens again
        try await superuser(db, "ALTER TABLE tenants ENABLE TRIGGER tenants_notify")
        _ = try await directory.tenant(slug: "acme", database: database)
        try await suspend(db, "acme", "suspended")
        #expect(try await eventually { try await directory.tenant(slug: "acme", database: database)?.tenant.status == .suspended })
    }
}
