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

/// Imports into one record the path names (`ImportParent`): a book's lines, each book's
/// refs its own, and a book whose lines would sum below zero refusing the whole file.
struct BooksModule: AtriumModule {
    var id: String { "books" }
    var version: String { "1.0.0" }
    var requiredKernelVersion: String { "0.1" }
    var permissions: [PermissionDefinition] { [.init("books.records.own", description: "Own books")] }
    var roleGrants: [String: [String]] { ["member": ["books.records.own"]] }

    func migrations() throws -> [Migration] {
        [Migration(owner: id, version: 1, fileName: "0001_books.sql", sql: """
            CREATE TABLE books_books (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL DEFAULT gen_random_uuid(),
                owner_id uuid NOT NULL,
                PRIMARY KEY (tenant_id, id)
            );
            CALL atrium_owned_table('books_books');
            CREATE TABLE books_lines (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                book_id uuid NOT NULL,
                owner_id uuid NOT NULL,
                ref text NOT NULL,
                amount bigint NOT NULL,
                PRIMARY KEY (tenant_id, book_id, ref)
            );
            CALL atrium_owned_table('books_lines');
            """)]
    }

    static let lines = ImportEntity(
        "lines", fields: ["ref", "amount"], key: "ref", table: "books_lines",
        check: { values in values[1].flatMap { Int64($0) } == nil ? "amount must be a whole number" : nil },
        land: { landing in
            """
            WITH written AS (
                INSERT INTO books_lines AS l (tenant_id, book_id, owner_id, ref, amount)
                SELECT \(landing.tenantID), \(landing.parentID), \(landing.ownerID), s.ref, s.amount::int8 FROM atrium_import_stage s
                ON CONFLICT (tenant_id, book_id, ref) DO NOTHING
                RETURNING 1
            ) SELECT count(*)::int8 FROM written
            """
        }
    ).verified { landing in
        "SELECT CASE WHEN sum(amount) < 0 THEN 'the book would sum to ' || sum(amount) END FROM books_lines WHERE book_id = \(landing.parentID)"
    }
    static let imports = BulkImport(
        module: "books", entities: [lines], path: "books/{id}/lines/imports",
        parent: ImportParent(parameter: "id", column: "book_id") { id, transaction in
            guard try await !transaction.query("SELECT 1 FROM books_books WHERE id = \(id)").isEmpty else { throw AtriumError.notFound("No such book.") }
        })

    func routes(_ routes: ModuleRoutes) {
        Self.imports.register(routes, owned: "books.records", requiring: "books.records.own")
    }

    var jobs: [JobDefinition] { [Self.imports.job] }
}

@Suite struct ImportParentTests {
    @Test func rowsLandInTheRecordThePathNamesAndAVerificationCanRefuseThem() async throws {
        let db = try await TestDatabase.create(modules: [BooksModule()])
        let tenant = try await db.createTenant("acme", modules: ["books"])
        let ann = try await db.createUser("ann@acme.test", password: "correct horse battery", roles: ["member"], in: tenant)
        _ = try await db.createUser("bob@acme.test", password: "correct horse battery", roles: ["member"], in: tenant)
        let (first, second) = try await db.withOwner { connection in
            try await connection.withTenantTransaction(tenant.id, logger: TestDatabase.logger) { connection in
                try await connection.scopeToAllOwners(logger: TestDatabase.logger)
                let ids = try await connection.query(
                    "INSERT INTO books_books (tenant_id, owner_id) SELECT \(tenant.id), \(ann.id) FROM generate_series(1, 2) RETURNING id",
                    logger: TestDatabase.logger
                ).collect().map { try $0.decode(UUID.self) }
                return (ids[0], ids[1])
            }
        }
        try await withTestApplication(db, modules: [BooksModule()]) { client, _ in
            let ann = try await client.login("acme", "ann@acme.test", "correct horse battery").access
            let bob = try await client.login("acme", "bob@acme.test", "correct horse battery").access
            func upload(_ book: UUID, _ csv: String, as token: String, mode: String = "upsert") async throws -> TestResponse {
                try await client.execute(
                    uri: "/v1/tenants/acme/books/books/\(book)/lines/imports?entity=lines&mode=\(mode)", method: .post,
                    headers: [.authorization: "Bearer \(token)", .contentType: "text/csv"], body: ByteBuffer(string: csv))
            }
            func run() async throws {
                _ = try await db.withApp { database in
                    try await JobWorker(
                        database: database, registry: try ModuleRegistry([BooksModule()]), configuration: .init(), kit: .ephemeral(logger: TestDatabase.logger),
                        logger: TestDatabase.logger
                    ).runAvailableJobs()
                }
            }
            func status(_ book: UUID, _ response: TestResponse) async throws -> JSONValue {
                let id = try #require(json(response)["id"]?.string)
                return json(try await client.send(.get, "/v1/tenants/acme/books/books/\(book)/lines/imports/\(id)", token: ann))
            }
            // The same refs in two books: in insert mode neither is taken for the other's.
            let intoFirst = try await upload(first, "ref,amount\nA,10\nB,5\n", as: ann, mode: "insert")
            try await run()
            let intoSecond = try await upload(second, "ref,amount\nA,7\n", as: ann, mode: "insert")
            try await run()
            #expect(try await status(first, intoFirst)["rows_written"] == 2)
            #expect(try await status(second, intoSecond)["rows_written"] == 1)
            #expect(try await status(first, intoFirst)["errors_url"]?.string?.hasPrefix("/v1/tenants/acme/books/books/\(first.uuidString.lowercased())/lines/imports/") == true)
            #expect(json(try await client.send(.get, "/v1/tenants/acme/books/books/\(first)/lines/imports", token: ann))["data"]?.array?.count == 1)
            // The import of one book is not found under another.
            let id = try #require(json(intoFirst)["id"]?.string)
            #expect(try await client.send(.get, "/v1/tenants/acme/books/books/\(second)/lines/imports/\(id)", token: ann).status == .notFound)

            // Lines that would take the book below zero: the import fails and keeps nothing.
            let overdrawn = try await upload(first, "ref,amount\nC,-20\n", as: ann)
            try await run()
            let refused = try await status(first, overdrawn)
            #expect(refused["state"]?.string == "failed")
            #expect(refused["failure"]?.string == "nothing was imported: the book would sum to -5")

            // Bob's import into Ann's book is answered as for a missing one.
            #expect(try await upload(first, "ref,amount\nD,1\n", as: bob).status == .notFound)
        }
        let total = try await db.withOwner { connection in
            try await connection.withTenantTransaction(tenant.id, logger: TestDatabase.logger) { connection in
                try await connection.scopeToAllOwners(logger: TestDatabase.logger)
                return try await connection.query("SELECT sum(amount)::int8 FROM books_lines", logger: TestDatabase.logger).first().decode(Int64.self)
            }
        }
        #expect(total == 22)
    }
}
