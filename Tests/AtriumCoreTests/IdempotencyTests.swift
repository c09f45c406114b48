import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Testing

/// A module with one idempotent create, on the kernel's `request.idempotent`.
struct LedgerModule: AtriumModule {
    var id: String { "ledger" }
    var version: String { "1.0.0" }
    var requiredKernelVersion: String { "0.1" }
    var permissions: [PermissionDefinition] { [.init("ledger.write", description: "Write entries")] }

    func migrations() throws -> [Migration] {
        [Migration(owner: "ledger", version: 1, fileName: "0001_entries.sql", sql: """
            CREATE TABLE ledger_entries (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL DEFAULT gen_random_uuid(),
                amount bigint NOT NULL,
                PRIMARY KEY (tenant_id, id)
            );
            CALL atrium_tenant_table('ledger_entries');
            """)]
    }

    struct NewEntry: Codable, Sendable {
        var amount: Int64
        var fail: Bool?
        var pauseMilliseconds: Int?
    }

    struct Entry: Codable, Sendable {
        var id: UUID
        var amount: Int64
    }

    func routes(_ routes: ModuleRoutes) {
        routes.on(.post, "entries", summary: "Add an entry", permission: "ledger.write", body: NewEntry.self, response: Entry.self, status: .created) {
            request, input in
            try await request.transaction { transaction in
                try await request.idempotent(input: input, in: transaction) {
                    let rows = try await transaction.connection.query(
                        "INSERT INTO ledger_entries (tenant_id, amount) VALUES (\(transaction.tenantID), \(input.amount)) RETURNING id",
                        logger: transaction.logger
                    ).collect()
                    if let pause = input.pauseMilliseconds { try await Task.sleep(for: .milliseconds(pause)) }
                    if input.fail == true { throw AtriumError.conflict("failed on purpose") }
                    return Entry(id: try rows[0].decode(UUID.self), amount: input.amount)
                }
            }
        }
    }
}

@Suite struct IdempotencyTests {
    func count(_ db: TestDatabase, _ tenant: Tenant) async throws -> Int {
        try await db.withOwner { connection in
            try await connection.withTenantTransaction(tenant.id, logger: TestDatabase.logger) { connection in
                try await connection.query("SELECT count(*)::int FROM ledger_entries", logger: TestDatabase.logger).first().decode(Int.self)
            }
        }
    }

    @Test func aKeyReplaysItsFirstAnswerPerCallerAndRefusesADifferentRequest() async throws {
        let db = try await TestDatabase.create(modules: [LedgerModule()])
        let tenant = try await db.createTenant("acme", modules: ["ledger"])
        let (ann, bob) = (UUID(), UUID())
        try await withTestApp(db, modules: [LedgerModule()]) { client, _ in
            func post(_ body: String, key: String?, as principal: UUID) async throws -> TestResponse {
                var headers: HTTPFields = [.authorization: TestAuthenticator.header(tenant, principal: principal, "ledger.write"), .contentType: "application/json"]
                if let key { headers[.idempotencyKey] = key }
                return try await client.execute(uri: "/v1/tenants/acme/ledger/entries", method: .post, headers: headers, body: ByteBuffer(string: body))
            }
            let first = try await post(#"{"amount":5}"#, key: "k-1", as: ann)
            let again = try await post(#"{"amount":5}"#, key: "k-1", as: ann)
            #expect(first.status == .created)
            #expect(again.status == .created)
            #expect(json(first)["id"] != nil)
            #expect(json(first)["id"] == json(again)["id"])
            let reused = try await post(#"{"amount":6}"#, key: "k-1", as: ann)
            #expect(reused.status == .unprocessableContent)
            #expect(json(reused)["code"]?.string == "idempotency_key_reused")
            // Another caller's key of the same name is theirs alone.
            let bobs = try await post(#"{"amount":5}"#, key: "k-1", as: bob)
            #expect(bobs.status == .created)
            #expect(json(bobs)["id"] != json(first)["id"])
            // A create that failed kept no key: the retry creates.
            #expect(try await post(#"{"amount":7,"fail":true}"#, key: "k-2", as: ann).status == .conflict)
            #expect(try await post(#"{"amount":7}"#, key: "k-2", as: ann).status == .created)
            // Without a key every request creates; a malformed key is refused before anything is written.
            #expect(try await post(#"{"amount":8}"#, key: nil, as: ann).status == .created)
            #expect(try await post(#"{"amount":8}"#, key: nil, as: ann).status == .created)
            let long = try await post(#"{"amount":9}"#, key: String(repeating: "x", count: 201), as: ann)
            #expect(long.status == .unprocessableContent)
            #expect(try await count(db, tenant) == 5)

            // After 24 hours a key is free again.
            try await db.withOwner { connection in
                try await connection.withTenantTransaction(tenant.id, logger: TestDatabase.logger) { connection in
                    try await connection.query(
                        "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'k-1' AND principal_id = \(ann)",
                        logger: TestDatabase.logger)
                }
            }
            let fresh = try await post(#"{"amount":6}"#, key: "k-1", as: ann)
            #expect(fresh.status == .created)
            #expect(json(fresh)["id"] != json(first)["id"])
            #expect(try await count(db, tenant) == 6)
        }
    }

    @Test func aRetryWhileTheFirstRequestRunsWaitsAndReplays() async throws {
        let db = try await TestDatabase.create(modules: [LedgerModule()])
        let tenant = try await db.createTenant("acme", modules: ["ledger"])
        let ann = UUID()
        try await withTestApp(db, modules: [LedgerModule()]) { client, _ in
            let headers: HTTPFields = [
                .authorization: TestAuthenticator.header(tenant, principal: ann, "ledger.write"), .contentType: "application/json", .idempotencyKey: "slow",
            ]
            async let slow = client.execute(
                uri: "/v1/tenants/acme/ledger/entries", method: .post, headers: headers, body: ByteBuffer(string: #"{"amount":1,"pause_milliseconds":400}"#))
            try await Task.sleep(for: .milliseconds(100))
            let retry = try await client.execute(
                uri: "/v1/tenants/acme/ledger/entries", method: .post, headers: headers, body: ByteBuffer(string: #"{"amount":1,"pause_milliseconds":400}"#))
            let original = try await slow
            #expect(original.status == .created)
            #expect(retry.status == .created)
            #expect(json(original)["id"] == json(retry)["id"])
            #expect(try await count(db, tenant) == 1)
        }
    }
}
