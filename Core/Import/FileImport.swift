public import Foundation
public import Logging
import PostgresNIO
import Synchronization

/// An import of a local file, run in this process (a module's `atrium <module> import`
/// command): the same pipeline and records as an uploaded import, without storing the
/// file first.
public struct FileImport: Sendable {
    public struct Summary: Sendable {
        public var importID: UUID
        public var owner: String
        public var rowsRead: Int64
        public var rowsWritten: Int64
        public var rowsUnchanged: Int64
        public var rowsRejected: Int64
        public var firstErrors: [(line: Int64, reason: String)]
        /// Why the import failed (all_or_nothing with rejections, or a bad file); nil on success.
        public var failure: String?
    }

    /// Progress as bytes of the file read and rows seen.
    public struct Progress: Sendable {
        public var bytesRead: Int64
        public var totalBytes: Int64
        public var rows: Int64
    }

    public let imports: BulkImport
    public let file: URL
    public let tenantID: UUID
    /// The user who will own the imported rows; nil: the tenant's first owner.
    public let ownerEmail: String?
    public let entity: String
    public let format: String
    public let mode: String
    public let errorPolicy: String
    public let mapping: [String: String]
    /// The record the rows land in (`ImportParent`), when the import has one.
    public let parentID: UUID?

    public init(
        _ imports: BulkImport, file: URL, tenantID: UUID, ownerEmail: String?, entity: String, format: String? = nil, mode: String = "upsert",
        errorPolicy: String = "skip_invalid", mapping: [String: String] = [:], parentID: UUID? = nil
    ) {
        self.parentID = parentID
        self.imports = imports
        self.file = file
        self.tenantID = tenantID
        self.ownerEmail = ownerEmail
        self.entity = entity
        self.format = format ?? (file.pathExtension.lowercased() == "ndjson" || file.pathExtension.lowercased() == "jsonl" ? "ndjson" : "csv")
        self.mode = mode
        self.errorPolicy = errorPolicy
        self.mapping = mapping
    }

    public func run(
        database: Database, metering: Metering, logger: Logger, onProgress: @escaping @Sendable (Progress) -> Void
    ) async throws -> Summary {
        guard let settings = ImportSettings(entity: entity, format: format, mode: mode, errorPolicy: errorPolicy, mappingJSON: "{}"),
            let definition = imports.entity(named: entity)
        else {
            throw AtriumError.validation(
                field: "entity",
                "entity must be one of \(imports.entityNames); format csv or ndjson; mode upsert or insert; error policy skip_invalid or all_or_nothing")
        }
        var withMapping = settings
        withMapping.mapping = mapping
        withMapping.parentID = parentID
        let handle: FileHandle
        do {
            handle = try FileHandle(forReadingFrom: file)
        } catch {
            throw ConfigurationError("cannot read \(file.path()): \(error.localizedDescription)")
        }
        let total = Int64((try? FileManager.default.attributesOfItem(atPath: file.path())[.size] as? NSNumber)?.int64Value ?? 0)
        let (tenantID, ownerEmail, logger) = (tenantID, ownerEmail, logger)
        let users = UserStore(logger: logger)
        let owner = try await database.withTenantTransaction(tenantID, logger: logger) { connection -> User? in
            if let ownerEmail { return try await users.find(email: ownerEmail, on: connection).flatMap { $0.status == "active" ? $0 : nil } }
            return try await users.list(on: connection).filter { $0.status == "active" && $0.roles.contains("owner") }.min { $0.createdAt < $1.createdAt }
        }
        guard let owner else {
            throw ConfigurationError(ownerEmail.map { "no active user \($0) in this tenant" } ?? "the tenant has no active owner; pass --owner EMAIL")
        }
        let (ownerID, ownerName) = (owner.id, owner.email)
        let importID = try await database.withTenantTransaction(tenantID, principal: ownerID, logger: logger) { connection in
            try await imports.create(
                settings: withMapping, ownerID: ownerID, seesAll: true, tenantID: tenantID, on: connection, logger: logger)
        }
        let bytesRead = Atomic<Int64>(0)
        // Pulled one chunk at a time, so the file is never read ahead of the import.
        let source = AsyncThrowingStream<[UInt8], any Error> {
            guard let data = try handle.read(upToCount: BulkImport.chunkBytes), !data.isEmpty else { return nil }
            bytesRead.add(Int64(data.count), ordering: .relaxed)
            return [UInt8](data)
        }
        let runner = ImportRunner(
            importID: importID, tenantID: tenantID, ownerID: ownerID, seesAll: true, settings: withMapping, entity: definition, imports: imports,
            database: database, metering: metering, logger: logger)
        var summary = Summary(
            importID: importID, owner: ownerName, rowsRead: 0, rowsWritten: 0, rowsUnchanged: 0, rowsRejected: 0, firstErrors: [], failure: nil)
        do {
            let result = try await runner.run(source: source) { progress in
                onProgress(Progress(bytesRead: bytesRead.load(ordering: .relaxed), totalBytes: total, rows: progress.rowsRead))
            }
            (summary.rowsRead, summary.rowsWritten, summary.rowsUnchanged, summary.rowsRejected) =
                (result.rowsRead, result.rowsWritten, result.rowsUnchanged, result.rowsRejected)
        } catch let failure as ImportRunner.Failure {
            summary.failure = failure.description
        }
        try? handle.close()
        let recorded = try await database.withTenantTransaction(tenantID, principal: ownerID, logger: logger) { connection in
            let counts = try await connection.query(
                "SELECT rows_read, rows_rejected FROM imports WHERE id = \(importID)", logger: logger
            ).collect().first?.decode((Int64, Int64).self)
            let errors = try await connection.query(
                "SELECT line, reason FROM import_errors WHERE import_id = \(importID) ORDER BY line LIMIT 5", logger: logger
            ).collect().map { try $0.decode((Int64, String).self) }
            return (counts, errors)
        }
        if summary.failure != nil, let counts = recorded.0 { (summary.rowsRead, summary.rowsRejected) = counts }
        summary.firstErrors = recorded.1.map { (line: $0.0, reason: $0.1) }
        return summary
    }
}
