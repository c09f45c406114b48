public import Foundation
public import Logging
public import PostgresNIO

/// Applies the kernel's and the modules' migrations as the owner role.
///
/// Each migration runs in its own transaction and is recorded with a SHA-256 checksum
/// of its text. A session advisory lock serialises concurrent starts, so two servers
/// starting together apply each migration once. An applied migration whose text has
/// changed stops start-up: history is never rewritten silently.
public struct Migrator: Sendable {
    /// The state of one migration, for `atrium migrate status`.
    public struct Status: Sendable, Codable {
        public var owner: String
        public var version: Int
        public var file: String
        public var state: String
        public var appliedAt: Date?
    }

    static let lockKey: Int64 = 0x4154_5249_554D  // "ATRIUM"

    /// Migrations in application order: the kernel's, then each module's after its dependencies.
    public let migrations: [Migration]
    let logger: Logger

    public init(migrations: [Migration], logger: Logger) {
        self.migrations = migrations
        self.logger = logger
    }

    /// Applies every pending migration; returns the ones applied.
    @discardableResult
    public func migrate(_ connection: PostgresConnection) async throws -> [Migration] {
        try await withLock(connection) {
            let applied = try await verifiedHistory(connection)
            var done: [Migration] = []
            for migration in migrations where applied[key(migration)] == nil {
                logger.info("applying migration", metadata: ["migration.owner": "\(migration.owner)", "migration.file": "\(migration.fileName)"])
                let checksum = try await self.checksum(of: migration, on: connection)
                do {
                    try await connection.withUnwrappedTransaction(logger: logger) { transaction in
                        for statement in SQLScript.statements(in: migration.sql) {
                            try await transaction.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                        }
                        try await transaction.query(
                            """
                            INSERT INTO atrium_migrations (owner, version, file, checksum)
                            VALUES (\(migration.owner), \(migration.version), \(migration.fileName), \(checksum))
                            """, logger: logger)
                    }
                } catch let error as PSQLError {
                    throw ConfigurationError(
                        "migration \(migration.fileName) of \(migration.owner) failed: \(error.serverInfo?[.message] ?? "\(error.code)")")
                }
                done.append(migration)
            }
            return done
        }
    }

    /// Each known migration with whether it is applied, plus applied ones the binary does not know.
    public func status(_ connection: PostgresConnection) async throws -> [Status] {
        try await ensureHistoryTable(connection)
        let rows = try await connection.query(
            "SELECT owner, version, file, checksum, applied_at FROM atrium_migrations ORDER BY applied_at, owner, version",
            logger: logger)
        var applied: [String: (file: String, checksum: String, at: Date)] = [:]
        for try await (owner, version, file, checksum, at) in rows.decode((String, Int, String, String, Date).self) {
            applied["\(owner)/\(version)"] = (file, checksum, at)
        }
        var result: [Status] = []
        for migration in migrations {
            if let record = applied.removeValue(forKey: key(migration)) {
                let current = try await checksum(of: migration, on: connection)
                result.append(.init(owner: migration.owner, version: migration.version, file: migration.fileName,
                                    state: current == record.checksum ? "applied" : "changed", appliedAt: record.at))
            } else {
                result.append(.init(owner: migration.owner, version: migration.version, file: migration.fileName, state: "pending", appliedAt: nil))
            }
        }
        for (key, record) in applied.sorted(by: { $0.key < $1.key }) {
            let parts = key.split(separator: "/")
            result.append(.init(owner: String(parts[0]), version: Int(parts[1]) ?? 0, file: record.file, state: "unknown", appliedAt: record.at))
        }
        return result
    }

    /// Whether every known migration is applied unchanged (for `/readyz`).
    public func isCurrent(_ connection: PostgresConnection) async throws -> Bool {
        try await status(connection).allSatisfy { $0.state == "applied" || $0.state == "unknown" }
    }

    // MARK: - Internals

    private func key(_ migration: Migration) -> String { "\(migration.owner)/\(migration.version)" }

    private func ensureHistoryTable(_ connection: PostgresConnection) async throws {
        try await connection.query(
            """
            CREATE TABLE IF NOT EXISTS atrium_migrations (
                owner text NOT NULL,
                version integer NOT NULL,
                file text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (owner, version)
            )
            """, logger: logger)
    }

    /// The applied history, after checking that no applied file has changed.
    private func verifiedHistory(_ connection: PostgresConnection) async throws -> [String: String] {
        try await ensureHistoryTable(connection)
        let rows = try await connection.query("SELECT owner, version, checksum FROM atrium_migrations", logger: logger)
        var applied: [String: String] = [:]
        for try await (owner, version, checksum) in rows.decode((String, Int, String).self) {
            applied["\(owner)/\(version)"] = checksum
        }
        for migration in migrations {
            guard let recorded = applied[key(migration)] else { continue }
            if try await checksum(of: migration, on: connection) != recorded {
                throw ConfigurationError(
                    "migration \(migration.fileName) of \(migration.owner) was changed after it was applied "
                        + "(checksum differs); restore the file and add a new migration instead")
            }
        }
        return applied
    }

    private func checksum(of migration: Migration, on connection: PostgresConnection) async throws -> String {
        let rows = try await connection.query("SELECT encode(sha256(convert_to(\(migration.sql), 'UTF8')), 'hex')", logger: logger)
        for try await checksum in rows.decode(String.self) { return checksum }
        throw ConfigurationError("PostgreSQL returned no checksum")
    }

    private func withLock<Result: Sendable>(_ connection: PostgresConnection, _ body: () async throws -> Result) async throws -> Result {
        try await connection.query("SELECT pg_advisory_lock(\(Self.lockKey))", logger: logger)
        do {
            let result = try await body()
            try await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger)
            return result
        } catch {
            _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger)
            throw error
        }
    }
}
