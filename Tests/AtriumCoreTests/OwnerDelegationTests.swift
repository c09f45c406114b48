import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Testing

/// The smallest module with delegated rows: notes a user owns, which a manager lets
/// another user read (or change), as portfolio's advisors read their clients' ledgers.
struct SharedNoteModule: AtriumModule {
    var id: String { "note" }
    var version: String { "1.0.0" }
    var requiredKernelVersion: String { "0.1" }
    var permissions: [PermissionDefinition] {
        [.init("note.records.own", description: "Own notes"), .init("note.share", description: "Let one user reach another's notes")]
    }
    var roleGrants: [String: [String]] { ["member": ["note.records.own"], "admin": ["note.records.own", "note.share"]] }
    static let scope = "note.records"

    func migrations() throws -> [Migration] {
        [Migration(owner: id, version: 1, fileName: "0001_notes.sql", sql: """
            CREATE TABLE note_notes (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL DEFAULT gen_random_uuid(),
                owner_id uuid NOT NULL,
                text text NOT NULL,
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id)
            );
            CALL atrium_delegated_table('note_notes', 'note.records');
            """)]
    }

    struct Note: Codable, Sendable {
        var id: UUID
        var ownerId: UUID
        var text: String
        var updatedAt: Date
    }

    struct NoteFields: RecordFields {
        var text: Patch<String>
        var ownerId: Patch<UUID>

        func validated(creating: Bool) throws -> NoteFields {
            var checks = FieldChecks()
            checks.fail("text", "is required", when: creating && text.value == nil)
            try checks.finish()
            return self
        }
    }

    struct Share: Codable, Sendable {
        var ownerId: UUID
        var delegateId: UUID
        var canWrite: Bool?
    }

    enum NoteStore: OwnedRecordStore {
        static let table = RecordTable<Note>(
            "note_notes", columns: "id, owner_id, text, updated_at", noun: "note", delegatedAs: SharedNoteModule.scope,
            order: .descending("updated_at", time: \.updatedAt, id: \.id)
        ) { row in
            var columns = RowReader(row)
            return Note(id: try columns.next(), ownerId: try columns.next(), text: try columns.next(), updatedAt: try columns.next())
        }

        static func insert(_ fields: NoteFields, owner: UUID, on transaction: TenantTransaction) async throws -> Note {
            try await table.one(
                "INSERT INTO note_notes (tenant_id, owner_id, text) VALUES (\(transaction.tenantID), \(owner), \(fields.text.value ?? "")) RETURNING id, owner_id, text, updated_at",
                on: transaction)
        }

        static func update(_ id: UUID, _ fields: NoteFields, owner: UUID?, on transaction: TenantTransaction) async throws -> Note {
            try await table.one(
                "UPDATE note_notes SET text = coalesce(\(fields.text.value), text), updated_at = now() WHERE id = \(id) RETURNING id, owner_id, text, updated_at",
                on: transaction)
        }
    }

    static let records = OwnedRecordRoutes(access: .owned("note.records"), assignPermission: "note.owners.assign")

    func routes(_ routes: ModuleRoutes) {
        Self.records.list(routes, "notes", summary: "Notes you may see", search: "text") { request, page, filter in
            try await request.transaction { try await NoteStore.table.page(page, where: filter.conditions(searching: ["text"]), on: $0) }
        }
        Self.records.register(routes, "notes", store: NoteStore.self, summaries: .init(create: "Write", get: "Read", change: "Change", delete: "Delete"))
        routes.on(.put, "shares", summary: "Let a user reach another's notes", permission: "note.share", body: Share.self, response: OwnerDelegation.self) {
            request, share in
            try await request.transaction { try await $0.delegate(Self.scope, owner: share.ownerId, to: share.delegateId, canWrite: share.canWrite ?? false) }
        }
        routes.on(.delete, "shares/{owner}/{delegate}", summary: "End a share", permission: "note.share", response: NoContent.self, status: .noContent) {
            request in
            let (owner, delegate) = (try request.uuidParameter("owner"), try request.uuidParameter("delegate"))
            guard try await request.transaction({ try await $0.revokeDelegation(Self.scope, owner: owner, from: delegate) }) else {
                throw AtriumError.notFound("No such share.")
            }
            return NoContent()
        }
    }
}

@Suite struct OwnerDelegationTests {
    static let notes = "/v1/tenants/acme/note/notes"

    @Test func aDelegateReadsTheOwnersRowsAndWritesOnlyWhenGranted() async throws {
        let db = try await TestDatabase.create(modules: [SharedNoteModule()])
        let tenant = try await db.createTenant("acme", modules: ["note"])
        let ann = try await db.createUser("ann@acme.test", password: "correct horse battery", roles: ["member"], in: tenant)
        let bob = try await db.createUser("bob@acme.test", password: "correct horse battery", roles: ["member"], in: tenant)
        _ = try await db.createUser("cy@acme.test", password: "correct horse battery", roles: ["member"], in: tenant)
        _ = try await db.createUser("boss@acme.test", password: "correct horse battery", roles: ["admin"], in: tenant)
        try await withTestApplication(db, modules: [SharedNoteModule()]) { client, _ in
            let annToken = try await client.login("acme", "ann@acme.test", "correct horse battery").access
            let bobToken = try await client.login("acme", "bob@acme.test", "correct horse battery").access
            let cyToken = try await client.login("acme", "cy@acme.test", "correct horse battery").access
            let bossToken = try await client.login("acme", "boss@acme.test", "correct horse battery").access
            let id = try #require(json(try await client.send(.post, Self.notes, token: annToken, json: #"{"text":"ann's"}"#))["id"]?.string)
            _ = try await client.send(.post, Self.notes, token: bobToken, json: #"{"text":"bob's"}"#)
            func listed(_ token: String, _ query: String = "") async throws -> [String] {
                json(try await client.send(.get, Self.notes + query, token: token))["data"]?.array?.compactMap { $0["text"]?.string }.sorted() ?? []
            }
            #expect(try await client.send(.get, "\(Self.notes)/\(id)", token: bobToken).status == .notFound)
            #expect(try await listed(bobToken) == ["bob's"])

            // Ann's notes opened to Bob, read-only: he reads them by id and in his list,
            // he changes and deletes nothing, and Cy still sees nothing.
            let share = #"{"owner_id":"\#(ann.id)","delegate_id":"\#(bob.id)"}"#
            #expect(try await client.send(.put, "/v1/tenants/acme/note/shares", token: annToken, json: share).status == .forbidden)
            #expect(try await client.send(.put, "/v1/tenants/acme/note/shares", token: bossToken, json: share).status == .ok)
            #expect(try await client.send(.get, "\(Self.notes)/\(id)", token: bobToken).status == .ok)
            #expect(try await listed(bobToken) == ["ann's", "bob's"])
            #expect(try await listed(bobToken, "?owner=\(ann.id)") == ["ann's"])
            #expect(try await client.send(.patch, "\(Self.notes)/\(id)", token: bobToken, json: #"{"text":"bob was here"}"#).status == .notFound)
            #expect(try await client.send(.delete, "\(Self.notes)/\(id)", token: bobToken).status == .notFound)
            let givenToAnn = try await client.send(.post, Self.notes, token: bobToken, json: #"{"text":"x","owner_id":"\#(ann.id)"}"#)
            #expect(givenToAnn.status == .forbidden, "writing as the owner takes the assign permission, not a delegation")
            #expect(try await client.send(.get, "\(Self.notes)/\(id)", token: cyToken).status == .notFound)
            #expect(try await listed(cyToken) == [])
            // The delegation is one way: Ann does not see Bob's notes.
            #expect(try await listed(annToken) == ["ann's"])

            // A delegation in another scope opens nothing here.
            _ = try await db.withApp { database in
                try await database.withTenantTransaction(tenant.id, principal: ann.id, logger: TestDatabase.logger) { connection in
                    try await connection.query(
                        "INSERT INTO owner_delegations (tenant_id, scope, delegate_id, owner_id, can_write) VALUES (\(tenant.id), 'other.records', \(bob.id), \(ann.id), true)",
                        logger: TestDatabase.logger)
                }
            }
            #expect(try await client.send(.patch, "\(Self.notes)/\(id)", token: bobToken, json: #"{"text":"bob was here"}"#).status == .notFound)

            // With write granted, he changes it; revoked, it is gone from his view again.
            let writable = #"{"owner_id":"\#(ann.id)","delegate_id":"\#(bob.id)","can_write":true}"#
            #expect(try await client.send(.put, "/v1/tenants/acme/note/shares", token: bossToken, json: writable).status == .ok)
            let changed = try await client.send(.patch, "\(Self.notes)/\(id)", token: bobToken, json: #"{"text":"bob was here"}"#)
            #expect(changed.status == .ok)
            #expect(json(changed)["owner_id"]?.string == ann.id.uuidString.lowercased(), "a delegate's change keeps the owner")
            #expect(try await client.send(.delete, "/v1/tenants/acme/note/shares/\(ann.id)/\(bob.id)", token: bossToken).status == .noContent)
            #expect(try await client.send(.get, "\(Self.notes)/\(id)", token: bobToken).status == .notFound)
            #expect(try await listed(bobToken) == ["bob's"])
            // Delegating to a user of no tenant of ours is refused by name.
            let stranger = #"{"owner_id":"\#(ann.id)","delegate_id":"\#(UUID())"}"#
            let refused = try await client.send(.put, "/v1/tenants/acme/note/shares", token: bossToken, json: stranger)
            #expect(refused.status == .unprocessableContent)
            #expect(json(refused)["code"]?.string == "unknown_user")
        }
    }
}
