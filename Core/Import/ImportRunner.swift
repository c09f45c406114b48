import Foundation
import Logging
import NIOCore
import PostgresNIO

/// What an import is asked to do.
struct ImportSettings: Codable, Sendable {
    enum Format: String, Codable, Sendable { case csv, ndjson }
    enum Mode: String, Codable, Sendable { case upsert, insert }
    enum ErrorPolicy: String, Codable, Sendable {
        case allOrNothing = "all_or_nothing"
        case skipInvalid = "skip_invalid"
    }

    /// The name of one of the module's `ImportEntity`s.
    var entity: String
    var format: Format
    var mode: Mode
    var errorPolicy: ErrorPolicy
    /// Target field → source column (CSV header or NDJSON key); unmapped fields are read
    /// from the column of the same name.
    var mapping: [String: String]
    /// The record the rows land in (`ImportParent`).
    var parentID: UUID? = nil
}

/// Where an import stands, as `GET <module>/imports/{id}` and the CLI report it.
struct ImportProgress: Sendable, Equatable {
    var rowsRead: Int64 = 0
    var rowsWritten: Int64 = 0
    var rowsUnchanged: Int64 = 0
    var rowsRejected: Int64 = 0
}

/// Runs one import: parses the source as it streams, checks each row, streams the
/// valid rows through `COPY` into a temporary staging table, and lands them with one
/// set-based statement — never a statement per row.
///
/// Everything the import writes (records, usage, its own final state) commits in one
/// transaction; with `all_or_nothing` any rejected row rolls all of it back. Rejected
/// rows (line and reason) and progress are written on a second connection as the
/// import runs, so they survive a rollback and can be watched while it works. Memory
/// holds one chunk of the source, one COPY buffer and one batch of rejections.
struct ImportRunner: Sendable {
    let importID: UUID
    let tenantID: UUID
    let ownerID: UUID
    /// The importer may see (and so update) every record, not only its own.
    let seesAll: Bool
    let settings: ImportSettings
    let entity: ImportEntity
    let imports: BulkImport
    let database: Database
    let metering: Metering
    let logger: Logger

    /// The longest value an imported field may hold: below what a btree index entry
    /// takes, so no value can fail the landing statement (and with it every other row).
    static let maximumValueBytes = 2_000

    /// Whether PostgreSQL would refuse `value` whatever the field: NUL, or too long to index.
    static func unstorable(_ value: String) -> Bool {
        value.utf8.count > maximumValueBytes || InputDomain.containsNUL(value)
    }

    /// Rows between progress updates.
    static let progressEvery = 50_000
    static let copyBufferBytes = 1 << 18
    static let rejectionBatch = 1_000

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Another runner holds the import (and will finish it).
    struct AlreadyRunning: Error {}

    /// Imports `source` (chunks of the file, in order) and returns the final counts.
    /// `onProgress` is told the counts as they move.
    func run(
        source: some AsyncSequence<[UInt8], any Error> & Sendable, onProgress: @escaping @Sendable (ImportProgress) async -> Void = { _ in }
    ) async throws -> ImportProgress {
        do {
            // Behind the request path: another tenant's reads keep their latency while this runs.
            let result = try await database.withBackgroundConnection(logger: logger) { connection in
                try await connection.withTenantTransaction(tenantID, principal: ownerID, logger: logger) { connection in
                    try await importAll(on: connection, source: source, onProgress: onProgress)
                }
            }
            await onProgress(result)
            logger.info("import finished", metadata: [
                "import.id": "\(importID.uuidString.lowercased())", "import.written": "\(result.rowsWritten)", "import.rejected": "\(result.rowsRejected)",
            ])
            return result
        } catch let error as AlreadyRunning {
            throw error
        } catch {
            let reason = Self.reason(for: error)
            if !(error is Failure) && !(error is AtriumError) {
                logger.error("import stopped by an error", metadata: ["import.id": "\(importID.uuidString.lowercased())", "error": "\(String(reflecting: error))"])
            }
            try? await fail(reason)
            throw Failure(description: reason)
        }
    }

    /// The import's transaction: lock, stage, check, land, meter, finish.
    private func importAll(
        on connection: PostgresConnection, source: some AsyncSequence<[UInt8], any Error> & Sendable,
        onProgress: @escaping @Sendable (ImportProgress) async -> Void
    ) async throws -> ImportProgress {
        // One runner per import: the lock lives as long as this transaction, so a
        // runner that died (its transaction rolled back) leaves it free to take.
        let locked = try await connection.query(
            "SELECT pg_try_advisory_xact_lock(hashtextextended(\("import:" + importID.uuidString.lowercased()), 0))", logger: logger
        ).collect().first?.decode(Bool.self) ?? false
        guard locked else { throw AlreadyRunning() }
        try await start()
        try await connection.scopeToAllOwners(logger: logger)
        try await connection.query(
            """
            CREATE TEMP TABLE \(unescaped: ImportLanding.stage) (line bigint NOT NULL, \(unescaped: entity.fields.map { "\($0) text" }.joined(separator: ", ")))
            ON COMMIT DROP
            """, logger: logger)
        let clock = ContinuousClock()
        let stagingStarted = clock.now
        var progress = try await stage(entity: entity, source: source, connection: connection, onProgress: onProgress)
        let stagingTook = clock.now - stagingStarted
        if settings.errorPolicy == .allOrNothing && progress.rowsRejected > 0 {
            throw Failure(description: "\(progress.rowsRejected) row(s) rejected; nothing was imported (error policy all_or_nothing)")
        }
        let parent = imports.parent.flatMap { parent in settings.parentID.map { (column: parent.column, id: $0) } }
        let rejections = ImportRejections(
            entity: entity, tenantID: tenantID, importID: importID, ownerID: ownerID, seesAll: seesAll, parent: parent, logger: logger)
        let checksStarted = clock.now
        let rejectedOnLanding = try await rejections.reject(mode: settings.mode, on: connection)
        let checksTook = clock.now - checksStarted
        progress.rowsRejected += rejectedOnLanding
        if settings.errorPolicy == .allOrNothing && rejectedOnLanding > 0 {
            try await copyOutRejections(from: connection)
            throw Failure(description: "\(rejectedOnLanding) row(s) rejected; nothing was imported (error policy all_or_nothing)")
        }
        if rejectedOnLanding > 0 { try await rejections.keepRejections(on: connection) }
        let staged = progress.rowsRead - progress.rowsRejected
        let landingStarted = clock.now
        let landing = ImportLanding(tenantID: tenantID, ownerID: ownerID, seesAll: seesAll, upsert: settings.mode == .upsert, parentID: settings.parentID)
        progress.rowsWritten = try await connection.query(entity.land(landing), logger: logger).collect().first?.decode(Int64.self) ?? 0
        if let verify = entity.verify,
            let reason = try await connection.query(verify(landing), logger: logger).collect().first?.decode(String?.self)
        {
            throw Failure(description: "nothing was imported: \(reason)")
        }
        logger.info("import phases", metadata: [
            "import.id": "\(importID.uuidString.lowercased())", "import.staging": "\(stagingTook)", "import.checks": "\(checksTook)",
            "import.landing": "\(clock.now - landingStarted)",
        ])
        progress.rowsUnchanged = max(0, staged - progress.rowsWritten)
        if progress.rowsWritten > 0, let meter = imports.meter {
            try await metering.record(
                meter, quantity: progress.rowsWritten, idempotencyKey: "\(imports.moduleID)-import:\(importID.uuidString.lowercased())", at: Date(),
                properties: ["entity": .string(settings.entity)], tenantID: tenantID, on: connection)
        }
        try await connection.query(
            """
            UPDATE imports SET state = 'succeeded', rows_read = \(progress.rowsRead), rows_written = \(progress.rowsWritten),
                rows_unchanged = \(progress.rowsUnchanged), rows_rejected = \(progress.rowsRejected), finished_at = now()
            WHERE id = \(importID)
            """, logger: logger)
        try await connection.query("DELETE FROM import_chunks WHERE import_id = \(importID)", logger: logger)
        return progress
    }

    /// What the import's `failure` tells its owner: our own reasons as they are, a value
    /// the database refused by its field, and nothing of the driver's text.
    static func reason(for error: any Error) -> String {
        if let failure = error as? Failure { return failure.description }
        if let problem = (error as? AtriumError) ?? DatabaseProblems.problem(for: error) {
            let fields = problem.fieldErrors.map { "\($0.field) \($0.message)" }.joined(separator: "; ")
            return "a row was refused: " + (fields.isEmpty ? problem.detail ?? problem.code : fields)
        }
        return "the import stopped on an internal error (logged on the server); run it again"
    }

    // MARK: - Staging

    /// Parses and checks every row, streaming the valid ones into the staging table.
    private func stage(
        entity: ImportEntity, source: some AsyncSequence<[UInt8], any Error> & Sendable, connection: PostgresConnection,
        onProgress: @escaping @Sendable (ImportProgress) async -> Void
    ) async throws -> ImportProgress {
        var progress = ImportProgress()
        var rejections: [(Int64, String)] = []
        var buffer = ByteBuffer()
        var header: [Int?]?
        var csv = CSVReader()
        var ndjson = NDJSONReader()
        var lastReported: Int64 = 0
        // Read once: touching `entity` or `settings` inside the per-row closures copied the
        // whole struct (every field retained and released) on each row.
        let fields = entity.fields, keys = entity.keys, name = entity.name
        let check = entity.check
        let format = settings.format, mapping = settings.mapping
        try await connection.copyFrom(table: ImportLanding.stage, columns: ["line"] + fields, logger: logger) { writer in
            /// Handles one source row: the header, a valid row (to COPY) or a rejected one.
            func take(line: Int, values: [String?]?, problem: String?) throws {
                progress.rowsRead += 1
                // An empty cell is an absent value.
                var values = (values ?? []).map { $0?.isEmpty == true ? nil : $0 }
                if problem == nil, let index = values.firstIndex(where: { $0.map(Self.unstorable) ?? false }) {
                    rejections.append((Int64(line), "\(fields[min(index, fields.count - 1)]) holds a NUL character or is longer than \(Self.maximumValueBytes) bytes"))
                    progress.rowsRejected += 1
                } else if problem == nil, values.count == fields.count, let reason = check(&values) {
                    rejections.append((Int64(line), reason))
                    progress.rowsRejected += 1
                } else if let problem {
                    rejections.append((Int64(line), problem))
                    progress.rowsRejected += 1
                } else {
                    CopyText.appendRow(line: line, values: values, to: &buffer)
                }
            }
            for try await chunk in source {
                switch format {
                case .csv:
                    try csv.feed(chunk) { record in
                        guard let columns = header else {
                            header = try Self.columns(header: record.fields, fields: fields, keys: keys, entity: name, mapping: mapping)
                            return
                        }
                        try take(line: record.line, values: columns.map { index in index.flatMap { $0 < record.fields.count ? record.fields[$0] : nil } },
                                 problem: record.problem)
                    }
                case .ndjson:
                    ndjson.feed(chunk) { line, object, problem in
                        let values = object.map { object in fields.map { field in object[mapping[field] ?? field] } }
                        try? take(line: line, values: values, problem: problem)
                    }
                }
                if buffer.readableBytes >= Self.copyBufferBytes {
                    try await writer.write(buffer)
                    buffer.clear()
                }
                if rejections.count >= Self.rejectionBatch {
                    try await saveRejections(rejections)
                    rejections.removeAll(keepingCapacity: true)
                }
                if progress.rowsRead - lastReported >= Int64(Self.progressEvery) {
                    try await reportProgress(progress, onProgress: onProgress)
                    lastReported = progress.rowsRead
                }
            }
            switch format {
            case .csv:
                try csv.finish { record in
                    guard let columns = header else {
                        header = try Self.columns(header: record.fields, fields: fields, keys: keys, entity: name, mapping: mapping)
                        return
                    }
                    try take(line: record.line, values: columns.map { index in index.flatMap { $0 < record.fields.count ? record.fields[$0] : nil } },
                             problem: record.problem)
                }
                if header == nil { throw Failure(description: "the file is empty: a CSV import needs a header row") }
            case .ndjson:
                ndjson.finish { line, object, problem in
                    let values = object.map { object in fields.map { field in object[mapping[field] ?? field] } }
                    try? take(line: line, values: values, problem: problem)
                }
            }
            if buffer.readableBytes > 0 { try await writer.write(buffer) }
        }
        if !rejections.isEmpty { try await saveRejections(rejections) }
        try await reportProgress(progress, onProgress: onProgress)
        return progress
    }

    /// Where each entity field is in the CSV header; the key column must be present.
    static func columns(header: [String], fields: [String], keys: [String], entity: String, mapping: [String: String]) throws -> [Int?] {
        let names = header.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        if let unknown = mapping.keys.first(where: { !fields.contains($0) }) {
            throw Failure(description: "mapping names '\(unknown)', which is not a field of \(entity) (\(fields.joined(separator: ", ")))")
        }
        let columns = fields.map { field in names.firstIndex(of: (mapping[field] ?? field).lowercased()) }
        for key in keys {
            guard let keyIndex = fields.firstIndex(of: key), columns[keyIndex] != nil else {
                let source = mapping[key] ?? key
                throw Failure(description: "the header has no '\(source)' column, which \(entity) need; map it with mapping {\"\(key)\": \"<your column>\"}")
            }
        }
        return columns
    }

    // MARK: - Side channel (its own transactions, so it survives a rollback)

    private func reportProgress(_ progress: ImportProgress, onProgress: @Sendable (ImportProgress) async -> Void) async throws {
        await onProgress(progress)
        try await database.withTenantTransaction(tenantID, principal: ownerID, logger: logger) { connection in
            try await connection.query(
                "UPDATE imports SET rows_read = \(progress.rowsRead), rows_rejected = \(progress.rowsRejected) WHERE id = \(importID)",
                logger: logger)
        }
    }

    private func saveRejections(_ rejections: [(Int64, String)]) async throws {
        let (lines, reasons) = (rejections.map(\.0), rejections.map(\.1))
        try await database.withTenantTransaction(tenantID, principal: ownerID, logger: logger) { connection in
            try await connection.query(
                """
                INSERT INTO import_errors (tenant_id, import_id, line, reason)
                SELECT \(tenantID), \(importID), * FROM unnest(\(lines)::int8[], \(reasons)::text[]) ON CONFLICT DO NOTHING
                """, logger: logger)
        }
    }

    /// Before an all-or-nothing rollback: the landing's rejections, saved on the side.
    private func copyOutRejections(from connection: PostgresConnection) async throws {
        let rows = try await connection.query(
            "SELECT line, reason FROM atrium_import_rejects ORDER BY line LIMIT 100000", logger: logger
        ).collect()
        var batch: [(Int64, String)] = []
        for row in rows {
            batch.append(try row.decode((Int64, String).self))
            if batch.count >= Self.rejectionBatch {
                try await saveRejections(batch)
                batch.removeAll()
            }
        }
        if !batch.isEmpty { try await saveRejections(batch) }
    }

    /// Marks the import running, from a clean slate: a run that died before it
    /// landed anything leaves counts and rejected rows that this run recounts.
    private func start() async throws {
        try await database.withTenantTransaction(tenantID, principal: ownerID, logger: logger) { connection in
            try await connection.query(
                """
                UPDATE imports SET state = 'running', rows_read = 0, rows_written = 0, rows_unchanged = 0, rows_rejected = 0
                WHERE id = \(importID)
                """, logger: logger)
            try await connection.query("DELETE FROM import_errors WHERE import_id = \(importID)", logger: logger)
        }
    }

    private func fail(_ reason: String) async throws {
        try await database.withTenantTransaction(tenantID, principal: ownerID, logger: logger) { connection in
            try await connection.query(
                "UPDATE imports SET state = 'failed', failure = \(reason), finished_at = now() WHERE id = \(importID)", logger: logger)
            // A failed import is not resumed (a retry uploads again), so its file goes.
            try await connection.query("DELETE FROM import_chunks WHERE import_id = \(importID)", logger: logger)
        }
        logger.warning("import failed", metadata: ["import.id": "\(importID.uuidString.lowercased())", "reason": "\(reason)"])
    }
}

/// PostgreSQL's COPY text format: tab-separated, `\N` for NULL, backslash escapes.
enum CopyText {
    static func appendRow(line: Int, values: [String?], to buffer: inout ByteBuffer) {
        buffer.writeString(String(line))
        for value in values {
            buffer.writeInteger(UInt8(ascii: "\t"))
            guard let value else {
                buffer.writeStaticString("\\N")
                continue
            }
            // Most values need no escaping: write them whole.
            let needsEscaping = value.utf8.contains { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") }
            guard needsEscaping else {
                buffer.writeString(value)
                continue
            }
            for byte in value.utf8 {
                switch byte {
                case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
                case UInt8(ascii: "\t"): buffer.writeStaticString("\\t")
                case UInt8(ascii: "\n"): buffer.writeStaticString("\\n")
                case UInt8(ascii: "\r"): buffer.writeStaticString("\\r")
                default: buffer.writeInteger(byte)
                }
            }
        }
        buffer.writeInteger(UInt8(ascii: "\n"))
    }
}
