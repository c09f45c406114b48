public import Foundation
public import Logging
public import PostgresNIO

/// Puts jobs on the PostgreSQL queue and reads it for operators.
///
/// Enqueueing takes the caller's connection, so a job enqueued inside a business
/// transaction exists exactly when that transaction commits.
public struct JobQueue: Sendable {
    /// A queued job as operators see it.
    public struct Job: Sendable, Codable, Equatable {
        public var id: UUID
        public var tenantID: UUID?
        public var kind: String
        public var state: String
        public var attempts: Int
        /// nil until a worker first claims it: then its kind's declared `maxAttempts`
        /// (unless the job was enqueued with a number of its own).
        public var maxAttempts: Int?
        public var runAt: Date
        public var uniqueKey: String?
        public var lastError: String?
        public var createdAt: Date
        public var finishedAt: Date?
    }

    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    /// Enqueues a job; with a `uniqueKey`, returns nil when an equal job is already
    /// waiting or running. Without `maxAttempts` the job gets as many attempts as its
    /// kind's `JobDefinition` declares.
    @discardableResult
    public func enqueue(
        kind: String, tenantID: UUID?, moduleID: String? = nil, payload: Data = Data("{}".utf8),
        runAt: Date? = nil, uniqueKey: String? = nil, maxAttempts: Int? = nil, on connection: PostgresConnection
    ) async throws -> UUID? {
        let json = String(decoding: payload, as: UTF8.self)
        let rows = try await connection.query(
            """
            INSERT INTO jobs (tenant_id, kind, module_id, payload, run_at, unique_key, max_attempts)
            VALUES (\(tenantID), \(kind), \(moduleID), \(json)::jsonb, coalesce(\(runAt), now()), \(uniqueKey), \(maxAttempts))
            ON CONFLICT DO NOTHING
            RETURNING id
            """, logger: logger)
        for try await id in rows.decode(UUID.self) {
            logger.debug("job enqueued", metadata: ["job.id": "\(id.uuidString.lowercased())", "job.kind": "\(kind)"])
            return id
        }
        return nil
    }

    /// Enqueues a job whose payload is `payload` encoded as JSON.
    @discardableResult
    public func enqueue(
        kind: String, tenantID: UUID?, moduleID: String? = nil, payload: some Encodable, runAt: Date? = nil,
        uniqueKey: String? = nil, maxAttempts: Int? = nil, on connection: PostgresConnection
    ) async throws -> UUID? {
        try await enqueue(
            kind: kind, tenantID: tenantID, moduleID: moduleID, payload: AtriumJSON.encoder.encode(payload), runAt: runAt,
            uniqueKey: uniqueKey, maxAttempts: maxAttempts, on: connection)
    }

    /// Jobs, newest first; `connection` must be in platform scope to see every tenant's.
    public func list(state: String? = nil, limit: Int = 50, on connection: PostgresConnection) async throws -> [Job] {
        let rows = try await connection.query(
            """
            SELECT id, tenant_id, kind, state, attempts, max_attempts, run_at, unique_key, last_error, created_at, finished_at
            FROM jobs WHERE (\(state)::text IS NULL OR state = \(state)) ORDER BY created_at DESC LIMIT \(limit)
            """, logger: logger)
        var jobs: [Job] = []
        for try await row in rows.decode((UUID, UUID?, String, String, Int, Int?, Date, String?, String?, Date, Date?).self) {
            jobs.append(Job(id: row.0, tenantID: row.1, kind: row.2, state: row.3, attempts: row.4, maxAttempts: row.5, runAt: row.6,
                            uniqueKey: row.7, lastError: row.8, createdAt: row.9, finishedAt: row.10))
        }
        return jobs
    }

    /// Puts a dead or canceled job back in line with fresh attempts.
    public func retry(_ id: UUID, on connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query(
            """
            UPDATE jobs SET state = 'pending', attempts = 0, run_at = now(), last_error = NULL, finished_at = NULL,
                locked_by = NULL, lease_expires_at = NULL, updated_at = now()
            WHERE id = \(id) AND state IN ('dead', 'canceled') RETURNING 1
            """, logger: logger)
        for try await _ in rows { return true }
        return false
    }

    /// Cancels a job that has not finished; a running job's result is then discarded.
    public func cancel(_ id: UUID, on connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query(
            """
            UPDATE jobs SET state = 'canceled', finished_at = now(), updated_at = now(), last_error = 'canceled by operator'
            WHERE id = \(id) AND state IN ('pending', 'running') RETURNING 1
            """, logger: logger)
        for try await _ in rows { return true }
        return false
    }
}
