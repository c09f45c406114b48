public import Foundation
import HTTPTypes
import Logging
import PostgresNIO
import Synchronization

/// A module's bulk import: CSV or NDJSON files of its entities, uploaded
/// (`POST <module>/imports`, stored in 1 MiB chunks and run by the `<module>.import.run`
/// job) or read from a local file by a CLI command, staged with COPY and landed with one
/// set-based statement per import, with progress and every rejected row (line, reason)
/// kept on the import.
///
/// A module declares it once, mounts its routes and lists its job:
/// `let imports = BulkImport(module: "x", entities: [...], meter: "x.rows_imported")`,
/// `imports.register(routes, owned: "x.records", requiring: "x.records.import")`,
/// and `imports.job` in `jobs`.
public struct BulkImport: Sendable {
    public let moduleID: String
    public let entities: [ImportEntity]
    /// The module's meter counting rows written, recorded once per import; nil for none.
    public let meter: String?

    /// Where the routes are mounted under the module, `imports` unless said otherwise
    /// (`market/imports`); the CLI's remote mode posts there too.
    public let path: String
    /// The record the rows land in, when the path names one (`portfolios/{id}/…`).
    public let parent: ImportParent?
    /// The import job's kind: `<module>.import.run`, or the one given when a module has
    /// more than one import.
    public let jobKind: String

    /// `kind` names the job when the module declares more than one `BulkImport` (each
    /// needs its own); `parent` lands every row of an import in one record the path
    /// names.
    public init(
        module: String, entities: [ImportEntity], meter: String? = nil, path: String = "imports", parent: ImportParent? = nil, kind: String? = nil
    ) {
        self.moduleID = module
        self.path = path
        self.entities = entities
        self.meter = meter
        self.parent = parent
        self.jobKind = kind ?? "\(module).import.run"
    }
    static let chunkBytes = 1 << 20
    /// The largest file an import accepts.
    static let maximumBytes: Int64 = 4 << 30

    func entity(named name: String) -> ImportEntity? {
        entities.first { $0.name == name }
    }

    var entityNames: String {
        entities.map(\.name).joined(separator: ", ")
    }

    struct JobPayload: Codable, Sendable {
        var importId: UUID
    }
}

/// An import as the API shows it.
public struct ImportStatus: Codable, Sendable {
    public var id: UUID
    /// The module's entity (`contacts`).
    public var entity: String
    public var format: String
    public var mode: String
    public var errorPolicy: String
    /// uploading, queued, running, succeeded or failed.
    public var state: String
    public var bytes: Int64
    public var rowsRead: Int64
    public var rowsWritten: Int64
    public var rowsUnchanged: Int64
    public var rowsRejected: Int64
    public var failure: String?
    /// The first rejected rows; all of them are at `errors_url` (a path from the server root) as CSV.
    public var firstErrors: [ImportRowError]
    public var errorsUrl: String
    public var createdAt: Date
    public var finishedAt: Date?
}

/// A rejected row of an import.
public struct ImportRowError: Codable, Sendable {
    public var line: Int64
    public var reason: String
}

extension BulkImport {
    /// Creates the import row (state `uploading`) and returns its id.
    func create(
        settings: ImportSettings, ownerID: UUID, seesAll: Bool, tenantID: UUID, on connection: PostgresConnection, logger: Logger
    ) async throws -> UUID {
        let mapping = String(decoding: try JSONEncoder().encode(settings.mapping), as: UTF8.self)
        let inserted = try await connection.query(
            """
            INSERT INTO imports (tenant_id, owner_id, module, entity, format, mode, error_policy, mapping, sees_all, parent_id)
            VALUES (\(tenantID), \(ownerID), \(moduleID), \(settings.entity), \(settings.format.rawValue), \(settings.mode.rawValue),
                    \(settings.errorPolicy.rawValue), \(mapping)::jsonb, \(seesAll), \(settings.parentID))
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
                    "INSERT INTO import_chunks (tenant_id, import_id, position, data) VALUES (\(tenantID), \(importID), \(index), \(Data(data)))",
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
                    "SELECT data FROM import_chunks WHERE import_id = \(importID) AND position = \(index)", logger: logger
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
    public var job: JobDefinition {
        let imports = self
        return JobDefinition(kind: jobKind, maxAttempts: 3, lease: .seconds(60)) { context in
            guard let tenantID = context.tenantID else { return }
            let payload = try context.decodePayload(JobPayload.self)
            let logger = context.logger
            // The job does not yet know whose import it is, so it reads the row with the
            // module's full view; everything after runs as that user.
            let found = try await context.database.withTenantTransaction(tenantID, logger: logger) { connection in
                try await connection.scopeToAllOwners(logger: logger)
                return try await connection.query(
                    """
                    SELECT owner_id, entity, format, mode, error_policy, mapping::text, sees_all, state, parent_id
                    FROM imports WHERE id = \(payload.importId) AND module = \(imports.moduleID) AND state IN ('queued', 'running')
                    """, logger: logger
                ).collect().first?.decode((UUID, String, String, String, String, String, Bool, String, UUID?).self)
            }
            guard let (owner, entity, format, mode, policy, mappingText, manager, state, parentID) = found else { return }
            guard
                let settings = ImportSettings(
                    entity: entity, format: format, mode: mode, errorPolicy: policy, mappingJSON: mappingText, parentID: parentID),
                let definition = imports.entity(named: settings.entity)
            else {
                throw ImportRunner.Failure(description: "the import's stored settings cannot be read")
            }
            if state == "running" {
                logger.warning("restarting an import whose previous run stopped", metadata: ["import.id": "\(payload.importId.uuidString.lowercased())"])
            }
            let runner = ImportRunner(
                importID: payload.importId, tenantID: tenantID, ownerID: owner, seesAll: manager, settings: settings, entity: definition,
                imports: imports, database: context.database, metering: context.metering, logger: logger)
            do {
                _ = try await runner.run(source: BulkImport.chunks(importID: payload.importId, tenantID: tenantID, principal: owner, database: context.database, logger: logger))
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
    init?(entity: String, format: String, mode: String, errorPolicy: String, mappingJSON: String, parentID: UUID? = nil) {
        guard let format = Format(rawValue: format), let mode = Mode(rawValue: mode),
            let policy = ErrorPolicy(rawValue: errorPolicy),
            let mapping = try? JSONDecoder().decode([String: String].self, from: Data(mappingJSON.utf8))
        else { return nil }
        self.init(entity: entity, format: format, mode: mode, errorPolicy: policy, mapping: mapping, parentID: parentID)
    }
}
