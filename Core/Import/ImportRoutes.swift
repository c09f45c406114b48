import Foundation
import HTTPTypes
import Hummingbird
import Logging
public import NIOCore
import PostgresNIO

extension BulkImport {
    /// Mounts `POST <module>/imports` (the file as the body), `GET <module>/imports[/{id}]`
    /// and `GET <module>/imports/{id}/errors` (rejected rows as CSV), declared
    /// `.owned(prefix, requiring: permission)`: importers see their own imports, and
    /// update only records they own unless they hold `<prefix>.any`. `BulkImport.path`
    /// mounts them elsewhere under the module (`market/imports` for a portfolio's market data).
    public func register(_ routes: ModuleRoutes, owned prefix: String, requiring permission: String) {
        let path = self.path
        let access = RouteAccess.owned(prefix, requiring: permission)
        let imports = self
        let keys = entities.map { "\($0.keys.joined(separator: " and ")) (\($0.name))" }.joined(separator: ", ")
        routes.streaming(
            .post, path,
            summary: "Import a CSV or NDJSON file of one entity; runs as a job (202). Idempotency-Key honoured.",
            access: access,
            query: [
                .init("entity", "\(entityNames)."), .init("format", "csv (default) or ndjson."),
                .init("mode", "upsert (default: by \(keys)) or insert."),
                .init("error_policy", "skip_invalid (default) or all_or_nothing."),
                .init("mapping", #"JSON object: field → source column, e.g. {"email":"E-mail"}."#),
            ],
            // The body's type is not read (`format` says what it is): octet-stream is listed
            // for client generators that produce no call for a text/csv body.
            accepts: ["text/csv", "application/x-ndjson", "application/octet-stream"], produces: "application/json", status: .accepted
        ) { request in
            let scope = try request.requireOwnership()
            let settings = try imports.settings(request)
            let (tenantID, logger, database) = (request.tenant.id, request.logger, request.database)
            // Idempotency-Key by the kernel, keyed on the import's settings (a retry with other
            // settings is 422): a retry answers the first import's current status.
            let (importID, created) = try await request.transaction { transaction in
                if let parent = imports.parent, let parentID = settings.parentID { try await parent.authorize(parentID, transaction) }
                var created = false
                let id = try await request.idempotent(input: settings, in: transaction) {
                    created = true
                    return try await imports.create(settings: settings, ownerID: scope.userID, seesAll: scope.seesAll, tenantID: tenantID,
                                                    on: transaction.connection, logger: logger)
                }
                return (id, created)
            }
            if created {
                do {
                    let bytes = try await BulkImport.store(
                        request.request.body.map { Array($0.readableBytesView) }, importID: importID, tenantID: tenantID, principal: scope.userID,
                        database: database, logger: logger)
                    try await request.transaction { try await imports.queue(importID, bytes: bytes, on: $0) }
                } catch {
                    _ = try? await request.transaction { try await BulkImport.abandonUpload(importID, on: $0) }
                    throw error
                }
            }
            let status = try await request.transaction { transaction in
                try await imports.status(importID, parent: settings.parentID, tenant: request.tenant.slug, on: transaction)
            }
            return try BulkImport.json(status, status: .accepted)
        }

        routes.on(.get, path, summary: "Your imports (every import, as a manager), newest first", access: access,
                  query: [.init("limit", "1-200, default 50.", schema: .integer)], response: Page<ImportStatus>.self) { request in
            let limit = try request.limit()
            let parentID = try imports.parentID(request)
            return Page(data: try await request.transaction {
                try await imports.statuses(id: nil, parent: parentID, limit: limit, tenant: request.tenant.slug, on: $0)
            })
        }

        routes.on(.get, "\(path)/{\(importParameter)}", summary: "An import's state and progress: rows read, written, unchanged and rejected",
                  access: access, response: ImportStatus.self) { request in
            let (id, parentID) = (try request.uuidParameter(imports.importParameter), try imports.parentID(request))
            return try await request.transaction { transaction in try await imports.status(id, parent: parentID, tenant: request.tenant.slug, on: transaction) }
        }

        routes.streaming(.get, "\(path)/{\(importParameter)}/errors", summary: "An import's rejected rows as CSV: line, reason",
                         access: access, produces: "text/csv") { request in
            let (id, parentID) = (try request.uuidParameter(imports.importParameter), try imports.parentID(request))
            let rows = try await request.transaction { transaction in
                _ = try await imports.status(id, parent: parentID, tenant: request.tenant.slug, on: transaction)
                return try await BulkImport.errors(of: id, on: transaction)
            }
            var buffer = ByteBuffer(string: "line,reason\r\n")
            for (line, reason) in rows { CSVWriter.appendRow([String(line), reason], to: &buffer) }
            return Response(
                status: .ok, headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"import-\(id)-errors.csv\""],
                body: .init(byteBuffer: buffer))
        }
    }

    func settings(_ request: TenantRequest) throws -> ImportSettings {
        guard let name = request.query("entity"), let entity = entity(named: name) else {
            throw AtriumError.validation(field: "entity", "must be one of \(entityNames)")
        }
        guard let format = ImportSettings.Format(rawValue: request.query("format") ?? "csv") else {
            throw AtriumError.validation(field: "format", "must be csv or ndjson")
        }
        guard let mode = ImportSettings.Mode(rawValue: request.query("mode") ?? "upsert") else {
            throw AtriumError.validation(field: "mode", "must be upsert or insert")
        }
        guard let policy = ImportSettings.ErrorPolicy(rawValue: request.query("error_policy") ?? "skip_invalid") else {
            throw AtriumError.validation(field: "error_policy", "must be skip_invalid or all_or_nothing")
        }
        var mapping: [String: String] = [:]
        if let text = request.query("mapping") {
            guard let decoded = try? JSONDecoder().decode([String: String].self, from: Data(text.utf8)) else {
                throw AtriumError.validation(field: "mapping", #"must be a JSON object of field → column, e.g. {"email":"E-mail"}"#)
            }
            if let unknown = decoded.keys.first(where: { !entity.fields.contains($0) }) {
                throw AtriumError.validation(field: "mapping", "'\(unknown)' is not a field of \(name) (\(entity.fields.joined(separator: ", ")))")
            }
            mapping = decoded
        }
        return ImportSettings(entity: name, format: format, mode: mode, errorPolicy: policy, mapping: mapping, parentID: try parentID(request))
    }

    /// The import's own path parameter: `id`, or `import` when the parent's is `id`.
    var importParameter: String { parent?.parameter == "id" ? "import" : "id" }

    /// The parent the request's path names, nil for an import without one.
    func parentID(_ request: TenantRequest) throws -> UUID? {
        try parent.map { try request.uuidParameter($0.parameter) }
    }

    func status(_ id: UUID, parent: UUID?, tenant slug: String, on transaction: TenantTransaction) async throws -> ImportStatus {
        guard let status = try await statuses(id: id, parent: parent, limit: 1, tenant: slug, on: transaction).first else {
            throw AtriumError.notFound("No such import.")
        }
        return status
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status) throws -> Response {
        Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: try AtriumJSON.encoder.encode(value))))
    }
}

/// RFC 4180 output: fields with a comma, quote or line break are quoted, quotes doubled.
/// A field a spreadsheet would run as a formula (starting with `=`, `@`, or `+`/`-` not
/// followed by a number such as a phone) is prefixed with `'`, so an exported file
/// cannot carry formula injection into the reader's spreadsheet.
public enum CSVWriter {
    static func neutralised(_ field: String) -> String {
        guard let first = field.utf8.first else { return field }
        switch first {
        case UInt8(ascii: "="), UInt8(ascii: "@"), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
            return "'" + field
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            let rest = field.utf8.dropFirst()
            let numeric = !rest.isEmpty && rest.allSatisfy { ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: " ")
                || $0 == UInt8(ascii: "(") || $0 == UInt8(ascii: ")") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }
            return numeric ? field : "'" + field
        default:
            return field
        }
    }

    public static func appendRow(_ fields: [String], to buffer: inout ByteBuffer) {
        for (index, raw) in fields.enumerated() {
            let field = neutralised(raw)
            if index > 0 { buffer.writeStaticString(",") }
            // Scalars, not Characters: "\r\n" is one Character, equal to neither "\r" nor "\n".
            if field.unicodeScalars.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
                buffer.writeString("\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\"")
            } else {
                buffer.writeString(field)
            }
        }
        buffer.writeStaticString("\r\n")
    }
}
