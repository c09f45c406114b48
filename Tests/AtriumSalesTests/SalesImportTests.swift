import AtriumCore
import AtriumSales
import AtriumTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOFoundationCompat
import PostgresNIO
import Testing

@Suite("Sales imports: COPY staging, set-based landing, errors with line numbers")
struct SalesImportTests {
    static let base = "/v1/tenants/acme/sales"

    /// Uploads `body` and runs the queued job; returns the final status.
    func importFile(
        _ client: any TestClientProtocol, _ team: SalesTeam, token: String, _ body: String, query: String, contentType: String = "text/csv",
        tenant: String = "acme"
    ) async throws -> JSONValue {
        let upload = try await client.execute(
            uri: "/v1/tenants/\(tenant)/sales/imports?\(query)", method: .post,
            headers: [.authorization: "Bearer \(token)", .contentType: contentType], body: ByteBuffer(string: body))
        #expect(upload.status == .accepted, "\(String(buffer: upload.body))")
        #expect(json(upload)["state"]?.string == "queued")
        let id = try #require(json(upload)["id"]?.string)
        try await team.db.withApp { database in
            let worker = JobWorker(database: database, registry: try ModuleRegistry([SalesModule()]), configuration: .init(), kit: .ephemeral(logger: TestDatabase.logger), logger: TestDatabase.logger)
            #expect(try await worker.runAvailableJobs() == 1)
        }
        return json(try await client.send(.get, "/v1/tenants/\(tenant)/sales/imports/\(id)", token: token))
    }

    static let contactsCSV =
        "\u{FEFF}E-mail,first_name,last_name,tags\r\n"
        + "ann@example.com,Ann,\"Smith, Jr.\",vip;lead\r\n"
        + "bad-address,No,Good,\r\n"
        + "\"multi@example.com\",\"Two\r\nLines\",Name,\r\n"
        + "dup@example.com,First,Copy,\r\n"
        + "dup@example.com,Second,Copy,\r\n"
        + "last@example.com,No,Newline,x"

    @Test func skipInvalidLandsTheGoodRowsAndReportsTheRestByLine() async throws {
        try await SalesTeam.withTeam { client, team in
            let status = try await importFile(
                client, team, token: team.ann, Self.contactsCSV, query: #"entity=contacts&mapping=%7B%22email%22:%22E-mail%22%7D"#)
            #expect(status["state"]?.string == "succeeded")
            #expect(status["rows_read"] == 6)
            #expect(status["rows_written"] == 4)
            #expect(status["rows_rejected"] == 2)
            let id = try #require(status["id"]?.string)
            #expect(id == id.lowercased())
            // errors_url is a path from the server root, usable as it stands.
            let errorsURL = try #require(status["errors_url"]?.string)
            #expect(errorsURL == "\(Self.base)/imports/\(id)/errors")
            let errors = try await client.send(.get, errorsURL, token: team.ann)
            #expect(String(buffer: errors.body) == "line,reason\r\n3,email 'bad-address' is not an email address\r\n6,email repeats on line 7\r\n")
            let contacts = try await client.send(.get, "\(Self.base)/contacts?limit=10", token: team.ann)
            let byEmail = Dictionary(uniqueKeysWithValues: (json(contacts)["data"]?.array ?? []).compactMap { row in row["email"]?.string.map { ($0, row) } })
            #expect(byEmail["ann@example.com"]?["last_name"]?.string == "Smith, Jr.")
            #expect(byEmail["ann@example.com"]?["tags"] == ["vip", "lead"])
            #expect(byEmail["multi@example.com"]?["first_name"]?.string == "Two\r\nLines")
            #expect(byEmail["dup@example.com"]?["first_name"]?.string == "Second")  // the later line wins
            #expect(byEmail["last@example.com"]?["owner_id"]?.string == team.annID.uuidString.lowercased())
            // The same file again changes nothing.
            let again = try await importFile(
                client, team, token: team.ann, Self.contactsCSV, query: #"entity=contacts&mapping=%7B%22email%22:%22E-mail%22%7D"#)
            #expect(again["rows_written"] == 0)
            #expect(again["rows_unchanged"] == 4)
            // Imported rows are metered once per import.
            let imported = try await team.db.withOwner { connection in
                try await connection.withTenantTransaction(team.tenant.id, logger: TestDatabase.logger) { connection in
                    try await connection.query(
                        "SELECT coalesce(sum(quantity), 0)::int8 FROM usage_records WHERE meter = 'sales.rows_imported'", logger: TestDatabase.logger
                    ).collect().first?.decode(Int64.self)
                }
            }
            #expect(imported == 4)
        }
    }

    @Test func allOrNothingWritesNothingWhenARowIsBad() async throws {
        try await SalesTeam.withTeam { client, team in
            let status = try await importFile(
                client, team, token: team.ann, "email,first_name\nok@example.com,Ok\nnope,Bad\n", query: "entity=contacts&error_policy=all_or_nothing")
            #expect(status["state"]?.string == "failed")
            #expect(status["failure"]?.string == "1 row(s) rejected; nothing was imported (error policy all_or_nothing)")
            #expect(status["first_errors"]?.array?.first?["line"] == 3)
            let contacts = try await client.send(.get, "\(Self.base)/contacts", token: team.ann)
            #expect(json(contacts)["data"]?.array?.isEmpty == true)
            // Nothing of the failed import's file is kept.
            let chunks = try await team.db.withOwner { connection in
                try await connection.withTenantTransaction(team.tenant.id, logger: TestDatabase.logger) { connection in
                    try await connection.query("SELECT count(*)::int FROM import_chunks", logger: TestDatabase.logger).collect().first?.decode(Int.self)
                }
            }
            #expect(chunks == 0)
            // A file without the key column fails with a clear reason.
            let headless = try await importFile(client, team, token: team.ann, "name,phone\nx,1\n", query: "entity=contacts")
            #expect(headless["state"]?.string == "failed")
            #expect(headless["failure"]?.string?.contains("the header has no 'email' column") == true)
            // Bad settings are refused before any upload.
            let bad = try await client.send(.post, "\(Self.base)/imports?entity=people", token: team.ann)
            #expect(bad.status == .unprocessableContent)
        }
    }

    @Test func aRepCannotOverwriteAnotherRepsRecordAndTenantsStayApart() async throws {
        try await SalesTeam.withTeam { client, team in
            _ = try await client.send(.post, "\(Self.base)/contacts", token: team.bob, json: #"{"email":"shared@example.com","first_name":"Bob's"}"#)
            let status = try await importFile(
                client, team, token: team.ann, "email,first_name\nshared@example.com,Ann's\nmine@example.com,Mine\n", query: "entity=contacts")
            #expect(status["rows_written"] == 1)
            #expect(status["first_errors"]?.array?.first?["reason"]?.string == "a record with this email belongs to another user")
            let bobs = try await client.send(.get, "\(Self.base)/contacts?q=shared", token: team.bob)
            #expect(json(bobs)["data"]?.array?.first?["first_name"]?.string == "Bob's")
            // Insert mode refuses keys that exist; the manager may upsert anyone's rows.
            let insert = try await importFile(client, team, token: team.manager, "email,first_name\nmine@example.com,Again\n", query: "entity=contacts&mode=insert")
            #expect(insert["first_errors"]?.array?.first?["reason"]?.string == "a record with this email exists (mode insert)")
            let managed = try await importFile(client, team, token: team.manager, "email,first_name\nshared@example.com,Managed\n", query: "entity=contacts")
            #expect(managed["rows_written"] == 1)
            // Another tenant with the same email keeps its own record.
            let globex = try await team.db.createTenant("globex", modules: ["sales"])
            _ = try await team.db.createUser("gina@globex.test", password: "correct horse battery", roles: ["sales_manager"], in: globex)
            let gina = try await client.login("globex", "gina@globex.test", "correct horse battery").access
            let other = try await importFile(
                client, team, token: gina, "email,first_name\nshared@example.com,Globex\n", query: "entity=contacts", tenant: "globex")
            #expect(other["rows_written"] == 1)
            let acme = try await client.send(.get, "\(Self.base)/contacts?q=shared", token: team.manager)
            #expect(json(acme)["data"]?.array?.first?["first_name"]?.string == "Managed")
        }
    }

    @Test func ndjsonProductsAndDealsLinkedByNaturalKeys() async throws {
        try await SalesTeam.withTeam { client, team in
            let products = try await importFile(
                client, team, token: team.manager,
                #"{"sku":"W-1","name":"Widget","unit_price":1999,"currency":"usd"}"# + "\n\n" + #"{"sku":"W-2","name":"Gadget","unit_price":"12.50","currency":"USD"}"# + "\n"
                    + "not json\n" + #"{"sku":"W-3","name":"Gizmo","unit_price":5,"currency":"EUR"}"#,
                query: "entity=products&format=ndjson", contentType: "application/x-ndjson")
            #expect(products["rows_written"] == 2)
            #expect(products["first_errors"]?.array?.compactMap { $0["line"] } == [3, 4])
            _ = try await importFile(client, team, token: team.manager, "email\nbuyer@example.com\n", query: "entity=contacts")
            let deals = try await importFile(
                client, team, token: team.manager,
                "external_id,title,stage,amount,currency,contact_email\nD-1,First,Proposal,100000,USD,buyer@example.com\n", query: "entity=deals")
            #expect(deals["rows_written"] == 1)
            let list = try await client.send(.get, "\(Self.base)/deals", token: team.manager)
            #expect(json(list)["data"]?.array?.first?["stage"]?.string == "proposal")
            #expect(json(list)["data"]?.array?.first?["contact_id"]?.string != nil)
        }
    }

    /// What a worker killed mid-import leaves: the import `running` with counts and a
    /// rejection of its own, the job `running` under a lease that has run out, the file's
    /// chunks still stored. The next worker must start the import over and finish it.
    @Test func anImportWhoseWorkerDiedStartsOverAndSucceeds() async throws {
        try await SalesTeam.withTeam { client, team in
            let upload = try await client.execute(
                uri: "\(Self.base)/imports?entity=contacts&mapping=%7B%22email%22:%22E-mail%22%7D", method: .post,
                headers: [.authorization: "Bearer \(team.ann)", .contentType: "text/csv"], body: ByteBuffer(string: Self.contactsCSV))
            let id = try #require(json(upload)["id"]?.string.flatMap(UUID.init(uuidString:)))
            try await team.db.withOwner { connection in
                try await connection.withTenantTransaction(team.tenant.id, principal: team.annID, logger: TestDatabase.logger) { connection in
                    let marked = try await connection.query(
                        "UPDATE imports SET state = 'running', rows_read = 99, rows_rejected = 7 WHERE id = \(id) RETURNING 1", logger: TestDatabase.logger
                    ).collect().count
                    #expect(marked == 1, "the import is left running, as a killed worker leaves it")
                    try await connection.query(
                        """
                        INSERT INTO import_errors (tenant_id, import_id, line, reason)
                        VALUES (\(team.tenant.id), \(id), 1000, 'left by the dead run')
                        """, logger: TestDatabase.logger)
                }
                let leased = try await connection.withTenantTransaction(team.tenant.id, logger: TestDatabase.logger) { connection in
                    try await connection.query(
                        """
                        UPDATE jobs SET state = 'running', attempts = 1, locked_by = 'dead-worker', lease_expires_at = now() - interval '1 second'
                        WHERE kind = 'sales.import.run' RETURNING 1
                        """, logger: TestDatabase.logger
                    ).collect().count
                }
                #expect(leased == 1, "the job is left running under a lease that ran out")
            }
            try await team.db.withApp { database in
                let worker = JobWorker(database: database, registry: try ModuleRegistry([SalesModule()]), configuration: .init(), kit: .ephemeral(logger: TestDatabase.logger), logger: TestDatabase.logger)
                #expect(try await worker.runAvailableJobs() == 1)
            }
            let status = json(try await client.send(.get, "\(Self.base)/imports/\(id)", token: team.ann))
            #expect(status["state"]?.string == "succeeded")
            #expect(status["rows_read"] == 6)
            #expect(status["rows_written"] == 4)
            #expect(status["rows_rejected"] == 2)
            let errors = try await client.send(.get, "\(Self.base)/imports/\(id)/errors", token: team.ann)
            #expect(!String(buffer: errors.body).contains("dead run"))
            let chunks = try await team.db.withOwner { connection in
                try await connection.withTenantTransaction(team.tenant.id, principal: team.annID, logger: TestDatabase.logger) { connection in
                    try await connection.query("SELECT count(*)::int8 FROM import_chunks WHERE import_id = \(id)", logger: TestDatabase.logger)
                        .collect().first?.decode(Int64.self)
                }
            }
            #expect(chunks == 0)
        }
    }

    /// Rows PostgreSQL would refuse (an impossible date, a title over 300 code points
    /// but under 300 characters, an amount past the bound, a NUL) are rejected by line
    /// under skip_invalid; they no longer fail the landing of every other row.
    @Test func rowsTheDatabaseWouldRefuseAreRejectedByLineAndTheRestLand() async throws {
        try await SalesTeam.withTeam { client, team in
            let family = String(repeating: "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}", count: 61)
            let csv = "external_id,title,amount,expected_close\n"
                + "d1,Good,100,2024-05-01\n"
                + "d2,Bad date,100,2024-02-30\n"
                + "d3,\(family),100,\n"
                + "d4,Huge,9223372036854775807,\n"
                + "d5,Nul\u{0}title,1,\n"
                + "d6,Fine,5,\n"
            let status = try await importFile(client, team, token: team.ann, csv, query: "entity=deals")
            #expect(status["state"]?.string == "succeeded", "\(status)")
            #expect(status["rows_written"] == 2)
            #expect(status["rows_rejected"] == 4)
            let id = try #require(status["id"]?.string)
            let errors = String(buffer: try await client.send(.get, "\(Self.base)/imports/\(id)/errors", token: team.ann).body)
            #expect(errors.hasPrefix("line,reason\r\n3,\"expected_close must be a date"), "\(errors)")
            for line in ["4,", "5,", "6,"] { #expect(errors.contains("\r\n" + line), "\(errors)") }
        }
    }

    /// An import's Idempotency-Key belongs to its sender: another user's same key is a
    /// new import of theirs, never a refusal or a look at someone else's import.
    @Test func importIdempotencyKeysArePerUser() async throws {
        try await SalesTeam.withTeam { client, team in
            func upload(_ token: String) async throws -> String? {
                let response = try await client.execute(
                    uri: "\(Self.base)/imports?entity=contacts", method: .post,
                    headers: [.authorization: "Bearer \(token)", .contentType: "text/csv", HTTPField.Name("Idempotency-Key")!: "same-key"],
                    body: ByteBuffer(string: "email\nx@example.com\n"))
                #expect(response.status == .accepted, "\(String(buffer: response.body))")
                return json(response)["id"]?.string
            }
            let ann = try #require(try await upload(team.ann))
            let bob = try #require(try await upload(team.bob))
            #expect(ann != bob)
            #expect(try await upload(team.ann) == ann, "a retry by the same user answers the first import")
            // The same key with other settings is another request: refused, nothing created.
            let other = try await client.execute(
                uri: "\(Self.base)/imports?entity=companies", method: .post,
                headers: [.authorization: "Bearer \(team.ann)", .contentType: "text/csv", .idempotencyKey: "same-key"],
                body: ByteBuffer(string: "domain\nx.example\n"))
            #expect(other.status == .unprocessableContent)
            #expect(json(other)["code"]?.string == "idempotency_key_reused")
        }
    }
}
