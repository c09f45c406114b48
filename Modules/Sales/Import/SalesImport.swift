import AtriumCore
import Foundation
import HTTPTypes
import Logging
import PostgresNIO
import Synchronization

/// Imports as records: created with their file (stored in 1 MiB chunks), run by the
/// `sales.import.run` job or in process by the CLI, read back with their progress and
/// rejected rows.
public enum SalesImport {
    /// Rows written by imports, metered per tenant.
    public static let meter = "sales.rows_imported"
    static let jobKind = "sales.import.run"
    static let chunkBytes = 1 << 20
    /// The largest file an import accepts.
    static let maximumBytes: Int64 = 4 << 30

    struct JobPayload: Codable, Sendable {
        var importId: UUID
    }

    /// An import as the API shows it.
    struct Status: Codable, Sendable {
        var id: UUID
        /// contacts, companies, products or deals.
        var entity: String
        var format: String
        var mode: String
        var errorPolicy: String
        /// uploading, queued, running, done or failed.
        var state: String
        var bytes: Int64
        var rowsRead: Int64
        var rowsWritten: Int64
        var rowsUnchanged: Int64
        var rowsRejected: Int64
        var failure: String?
        /// The first rejected rows; all of them are at `errors_url` (a path from the server root) as CSV.
        var firstErrors: [RowError]
        var errorsUrl: String
        var createdAt: Date
        var finishedAt: Date?
    }

    struct RowError: Codable, Sendable {
        var line: Int64
        var reason: String
    }

    /// Creates the import row (state `uploading`) and returns its id.
    static func create(
        settings: ImportSettings, ownerID: UUID, seesAll: Bool, tenantID: UUID, on connection: PostgresConnection, logger: Logger
    ) async throws -> UUID {
        let mapping = String(decoding: try JSONEncoder().encode(settings.mapping), as: UTF8.self)
        let inserted = try await connection.query(
            """
            INSERT INTO sales_imports (tenant_id, owner_id, entity, format, mode, error_policy, mapping, sees_all)
            VALUES (\(tenantID), \(ownerID), \(settings.entity.rawValue), \(settings.format.rawValue), \(settings.mode.rawValue),
                    \(settings.errorPolicy.rawValue), \(mapping)::jsonb, \(seesAll))
            RETURNING id
            """, logger: logger
        ).collect().first?.decode(UUID.self)
        guard let inserted else { throw AtriumError.internalError() }
        return inserted
    }

    /// Stores the file's chunks as they stream in; returns the size.
    static func store(
        _ body: some AsyncSequence<[UInt8], any Error>, importID: UUID, tenantID: UUID, principal: UUID, database: Database, logger: Logger
    ) async throws -> Int64 {
        var pending: [UInt8] = []
        var position = 0
        var total: Int64 = 0
        func flush() async throws {
            guard !pending.isEmpty else { return }
            let (data, index) = (pending, position)
            try await database.withTenantTransaction(tenantID, principal: principal, logger: logger) { connection in
                try await connection.query(
                    "INSERT INTO sales_import_chunks (tenant_id, import_id, position, data) VALUES (\(tenantID), \(importID), \(index), \(Data(data)))",
                    logger: logger)
            }
            position += 1
            pending.removeAll(keepingCapacity: true)
        }
        for try await bytes in body {
            total += Int64(bytes.count)
            guard total <= maximumBytes else { throw AtriumError(status: .contentTooLarge, code: "payload_too_large", title: "File too large",
                                                                 detail: "Imports take files up to \(maximumBytes >> 30) GiB.") }
            pending.append(contentsOf: bytes)
            if pending.count >= chunkBytes { try await flush() }
        }
        try await flush()
        return total
    }

    /// The stored file, one chunk at a time (read on its own connection), pulled as the
    /// import consumes it so no more than one chunk is held.
    static func chunks(importID: UUID, tenantID: UUID, principal: UUID, database: Database, logger: Logger) -> AsyncThrowingStream<[UInt8], any Error> {
        let position = Mutex(0)
        return AsyncThrowingStream {
            let index = position.withLock { value in
                defer { value += 1 }
                return value
            }
            let data = try await database.withTenantTransaction(tenantID, principal: principal, logger: logger) { connection in
                try await connection.query(
                    "SELECT data FROM sales_import_chunks WHERE import_id = \(importID) AND position = \(index)", logger: logger
                ).collect().first?.decode(Data.self)
            }
            return data.map { [UInt8]($0) }
        }
    }

    /// The import job: runs a queued import as the user who created it.
    ///
    /// An import found `running` is one whose worker died (its lease ran out, or the
    /// job was retried with `atrium jobs retry`): nothing of it landed, since an import
    /// lands in one transaction, so it starts over from its stored file. A short lease,
    /// kept alive while the import works, brings that restart within a minute of a
    /// crash rather than at the end of a long one.
    static var job: JobDefinition {
        JobDefinition(kind: jobKind, maxAttempts: 3, lease: .seconds(60)) { context in
            guard let tenantID = context.tenantID else { return }
            let payload = try context.decodePayload(JobPayload.self)
            let logger = context.logger
            // The job does not yet know whose import it is, so it reads the row with the
            // module's full view; everything after runs as that user.
            let found = try await context.database.withTenantTransaction(tenantID, logger: logger) { connection in
                try await connection.scopeToAllOwners(logger: logger)
                return try await connection.query(
                    """
                    SELECT owner_id, entity, format, mode, error_policy, mapping::text, sees_all, state
                    FROM sales_imports WHERE id = \(payload.importId) AND state IN ('queued', 'running')
                    """, logger: logger
                ).collect().first?.decode((UUID, String, String, String, String, String, Bool, String).self)
            }
            guard let (owner, entity, format, mode, policy, mappingText, manager, state) = found else { return }
            guard let settings = ImportSettings(entity: entity, format: format, mode: mode, errorPolicy: policy, mappingJSON: mappingText) else {
                throw ImportRunner.Failure(description: "the import's stored settings cannot be read")
            }
            if state == "running" {
                logger.warning("restarting an import whose previous run stopped", metadata: ["import.id": "\(payload.importId.uuidString.lowercased())"])
            }
            let runner = ImportRunner(
                importID: payload.importId, tenantID: tenantID, ownerID: owner, seesAll: manager, settings: settings, database: context.database,
                metering: context.metering, logger: logger)
            do {
                _ = try await runner.run(source: chunks(importID: payload.importId, tenantID: tenantID, principal: owner, database: context.database, logger: logger))
            } catch is ImportRunner.Failure {
                // Recorded on the import (state failed, with the reason); nothing to retry.
            } catch is ImportRunner.AlreadyRunning {
                // Another live worker holds this import and will finish it.
            }
        }
    }
}

extension ImportSettings {
    /// Settings as stored on the import row.
    init?(entity: String, format: String, mode: String, errorPolicy: String, mappingJSON: String) {
        guard let entity = ImportEntity.Name(rawValue: entity), let format = Format(rawValue: format), let mode = Mode(rawValue: mode),
            let policy = ErrorPolicy(rawValue: errorPolicy),
            let mapping = try? JSONDecoder().decode([String: String].self, from: Data(mappingJSON.utf8))
        else { return nil }
        self.init(entity: entity, format: format, mode: mode, errorPolicy: policy, mapping: mapping)
    }
}
