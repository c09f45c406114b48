import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Testing

/// A module other than Sales imports through the kernel's facility by declaring one
/// entity: its fields, its row check and its landing statement. Nothing else.
struct JournalModule: AtriumModule {
    var id: String { "journal" }
    var version: String { "1.0.0" }
    var requiredKernelVersion: String { "0.1" }
    var permissions: [PermissionDefinition] {
        [.init("journal.entries.own", description: "Own entries"), .init("journal.entries.import", description: "Import entries")]
    }
    var roleGrants: [String: [String]] { ["member": ["journal.entries.own", "journal.entries.import"]] }

    func migrations() throws -> [Migration] {
        [Migration(owner: id, version: 1, fileName: "0001_journal.sql", sql: """
            CREATE TABLE journal_entries (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL DEFAULT gen_random_uuid(),
                owner_id uuid NOT NULL,
                ref text NOT NULL,
                amount bigint NOT NULL,
                PRIMARY KEY (tenant_id, id),
                UNIQUE (tenant_id, ref)
            );
            CALL atrium_owned_table('journal_entries');
            """)]
    }

    static let entries = ImportEntity(
        "entries", fields: ["ref", "amount"], key: "ref", table: "journal_entries",
        check: { values in
            guard let ref = values[0], !ref.isEmpty else { return "ref is required" }
            guard let amount = values[1].flatMap({ Int64($0) }) else { return "amount must be a whole number" }
            values[1] = String(amount)
            return nil
        },
        land: { landing in
            """
            WITH written AS (
                INSERT INTO journal_entries AS e (tenant_id, owner_id, ref, amount)
                SELECT \(landing.tenantID), \(landing.ownerID), s.ref, s.amount::int8 FROM atrium_import_stage s
                ON CONFLICT (tenant_id, ref) DO UPDATE SET amount = excluded.amount
                WHERE \(landing.upsert) AND e.amount IS DISTINCT FROM excluded.amount
                RETURNING 1
            ) SELECT count(*)::int8 FROM written
            """
        })
    static let imports = BulkImport(module: "journal", entities: [entries])

    func routes(_ routes: ModuleRoutes) {
        Self.imports.register(routes, owned: "journal.entries", requiring: "journal.entries.import")
    }

    var jobs: [JobDefinition] { [Self.imports.job] }
}

@Suite struct BulkImportTests {
    @Test func aModuleImportsThroughTheKernelByDeclaringItsEntity() async throws {
        let db = try await TestDatabase.create(modules: [JournalModule()])
        let tenant = try await db.createTenant("acme", modules: ["journal"])
        _ = try await db.createUser("ann@acme.test", password: "correct horse battery", roles: ["member"], in: tenant)
        try await withTestApplication(db, modules: [JournalModule()]) { client, _ in
            let token = try await client.login("acme", "ann@acme.test", "correct horse battery").access
            let upload = try await client.execute(
                uri: "/v1/tenants/acme/journal/imports?entity=entries", method: .post,
                headers: [.authorization: "Bearer \(token)", .contentType: "text/csv"], body: ByteBuffer(string: "ref,amount\nA-1,100\nA-2,lots\nA-3,-5\n"))
            #expect(upload.status == .accepted, "\(String(buffer: upload.body))")
            let id = try #require(json(upload)["id"]?.string)
            let unknown = try await client.send(.post, "/v1/tenants/acme/journal/imports?entity=invoices", token: token, json: "{}")
            #expect(unknown.status == .unprocessableContent)
            #expect(json(unknown)["errors"]?.array?.first?["message"]?.string == "must be one of entries")

            let ran = try await db.withApp { database in
                try await JobWorker(
                    database: database, registry: try ModuleRegistry([JournalModule()]), configuration: .init(), kit: .ephemeral(logger: TestDatabase.logger),
                    logger: TestDatabase.logger
                ).runAvailableJobs()
            }
            #expect(ran == 1)
            let status = json(try await client.send(.get, "/v1/tenants/acme/journal/imports/\(id)", token: token))
            #expect(status["state"]?.string == "succeeded")
            #expect(status["rows_written"] == 2)
            #expect(status["rows_rejected"] == 1)
            #expect(status["errors_url"]?.string == "/v1/tenants/acme/journal/imports/\(id)/errors")
            let errors = try await client.send(.get, "/v1/tenants/acme/journal/imports/\(id)/errors", token: token)
            #expect(String(buffer: errors.body) == "line,reason\r\n3,amount must be a whole number\r\n")
            let list = json(try await client.send(.get, "/v1/tenants/acme/journal/imports", token: token))
            #expect(list["data"]?.array?.count == 1)
        }
        let total = try await db.withOwner { connection in
            try await connection.withTenantTransaction(tenant.id, logger: TestDatabase.logger) { connection in
                try await connection.scopeToAllOwners(logger: TestDatabase.logger)
                return try await connection.query("SELECT sum(amount)::int8 FROM journal_entries", logger: TestDatabase.logger).first().decode(Int64.self)
            }
        }
        #expect(total == 95)
    }
}
