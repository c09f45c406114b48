import AtriumCore
import Foundation
import HTTPTypes
import PostgresNIO

/// A small module used by the kernel tests: one tenant-owned table, routes with
/// permissions, and a job. It uses only AtriumCore's public API, as real modules must.
struct NotesModule: AtriumModule {
    var id: String { "notes" }
    var version: String { "1.0.0" }
    var requiredKernelVersion: String { "0.1" }
    var permissions: [PermissionDefinition] {
        [.init("notes.read", description: "Read notes"), .init("notes.write", description: "Write notes")]
    }
    var roleGrants: [String: [String]] { ["member": ["notes.read"], "admin": ["notes.read", "notes.write"]] }
    var meters: [MeterDefinition] { [.init("notes.created", aggregation: .count, unit: "note")] }

    static let migrationSQL = """
        CREATE TABLE notes (
            tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            id uuid NOT NULL DEFAULT gen_random_uuid(),
            title text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, id)
        );
        ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
        ALTER TABLE notes FORCE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON notes
            USING (tenant_id = atrium_current_tenant())
            WITH CHECK (tenant_id = atrium_current_tenant());
        """

    func migrations() throws -> [Migration] {
        [Migration(owner: "notes", version: 1, fileName: "0001_notes.sql", sql: Self.migrationSQL)]
    }

    struct Note: Codable, Sendable {
        var id: UUID
        var title: String
        var createdAt: Date
    }

    struct NewNote: Codable, Sendable {
        var title: String
        var pinned: Bool?
    }

    struct NoteList: Codable, Sendable {
        var data: [Note]
    }

    func routes(_ routes: ModuleRoutes) {
        routes.on(.get, "notes", summary: "List notes", permission: "notes.read", query: QueryParameter.pagination, response: NoteList.self) {
            request in
            try await request.transaction { transaction in
                // Deliberately no tenant filter: row-level security is the protection under test.
                let rows = try await transaction.connection.query("SELECT id, title, created_at FROM notes ORDER BY created_at", logger: transaction.logger)
                var notes: [Note] = []
                for try await (id, title, created) in rows.decode((UUID, String, Date).self) { notes.append(Note(id: id, title: title, createdAt: created)) }
                return NoteList(data: notes)
            }
        }
        routes.on(.post, "notes", summary: "Create a note", permission: "notes.write", body: NewNote.self, response: Note.self, status: .created) {
            request, input in
            guard !input.title.isEmpty else { throw AtriumError.validation(field: "title", "must not be empty") }
            return try await request.transaction { transaction in
                let rows = try await transaction.connection.query(
                    "INSERT INTO notes (tenant_id, title) VALUES (\(transaction.tenantID), \(input.title)) RETURNING id, title, created_at",
                    logger: transaction.logger)
                for try await (id, title, created) in rows.decode((UUID, String, Date).self) {
                    try await transaction.recordUsage("notes.created", idempotencyKey: "note:\(id)")
                    return Note(id: id, title: title, createdAt: created)
                }
                throw AtriumError.internalError()
            }
        }
        routes.on(.get, "notes/{id}", summary: "Get a note", permission: "notes.read", response: Note.self) { request in
            let id = try request.uuidParameter("id")
            return try await request.transaction { transaction in
                let rows = try await transaction.connection.query("SELECT id, title, created_at FROM notes WHERE id = \(id)", logger: transaction.logger)
                for try await (id, title, created) in rows.decode((UUID, String, Date).self) { return Note(id: id, title: title, createdAt: created) }
                throw AtriumError.notFound()
            }
        }
    }

    var jobs: [JobDefinition] {
        [JobDefinition(kind: "notes.touch", maxAttempts: 3, lease: .seconds(30), backoff: .milliseconds(10), maxBackoff: .milliseconds(100)) { _ in }]
    }
}
