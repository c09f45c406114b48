import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import PostgresNIO
import Testing

/// Promises the README makes that no other suite holds it to.
@Suite("README promises")
struct ReadmePromiseTests {
    @Test func theAuditLogIsAppendOnlyForTheApplication() async throws {
        let db = try await TestDatabase.create()
        let acme = try await db.createTenant("acme")
        let logger = TestDatabase.logger
        try await db.withApp { database in
            try await database.withTenantTransaction(acme.id, logger: logger) { connection in
                try await connection.query(
                    "INSERT INTO audit_events (tenant_id, action, actor_type) VALUES (\(acme.id), 'test.added', 'system')", logger: logger)
            }
            for statement: PostgresQuery in [
                "UPDATE audit_events SET action = 'rewritten'", "DELETE FROM audit_events", "TRUNCATE audit_events",
            ] {
                await expectDatabaseError("42501") {
                    try await database.withTenantTransaction(acme.id, logger: logger) { connection in
                        try await connection.query(statement, logger: logger)
                    }
                }
            }
            let kept = try await database.withTenantTransaction(acme.id, logger: logger) { connection in
                try await connection.query("SELECT action FROM audit_events", logger: logger).collect().map { try $0.decode(String.self) }
            }
            #expect(kept == ["test.added"])
        }
    }

    @Test func anExternalDatabaseNeedsAMasterKey() throws {
        #expect(throws: ConfigurationError.self) { try MasterKey.load(environment: [:], dataDirectory: nil) }
        #expect(throws: ConfigurationError.self) { try MasterKey.load(environment: ["ATRIUM_MASTER_KEY": "not base64!"], dataDirectory: nil) }
        let key = Data((0..<32).map { UInt8($0) }).base64EncodedString()
        _ = try MasterKey.load(environment: ["ATRIUM_MASTER_KEY": key], dataDirectory: nil)
    }

    @Test func expiredSessionsAndAPIKeysStopAuthenticating() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme", modules: ["notes"])
        _ = try await db.createUser("owner@acme.test", password: "owner-password", roles: ["owner"], in: acme)
        try await withIdentityApp(db) { client, _ in
            let owner = try await client.login("acme", "owner@acme.test", "owner-password")
            let created = try await client.post(
                "/v1/tenants/acme/admin/api-keys", json: #"{"name":"reporting","permissions":["notes.read"]}"#, token: owner.access)
            let key = try #require(json(created)["key"]?.string)
            #expect(try await client.get("/v1/tenants/acme/notes/notes", token: key).status == .ok)
            #expect(try await client.get("/v1/tenants/acme/notes/notes", token: owner.access).status == .ok)
            // Time passes: the key's expiry and the session's lifetime are behind us, while the
            // access token itself (a signed JWT) has not expired yet.
            let expired = try await db.withOwner { connection in
                try await connection.withTenantTransaction(acme.id, logger: TestDatabase.logger) { connection in
                    let keys = try await connection.query(
                        "UPDATE api_keys SET expires_at = now() - interval '1 second' RETURNING 1", logger: TestDatabase.logger).collect().count
                    let sessions = try await connection.query(
                        "UPDATE sessions SET expires_at = now() - interval '1 second' RETURNING 1", logger: TestDatabase.logger).collect().count
                    return (keys, sessions)
                }
            }
            #expect(expired == (1, 1))
            #expect(try await client.get("/v1/tenants/acme/notes/notes", token: key).status == .unauthorized)
            #expect(try await client.get("/v1/tenants/acme/notes/notes", token: owner.access).status == .unauthorized)
            let refresh = try await client.post("/v1/tenants/acme/auth/refresh", json: #"{"refresh_token":"\#(owner.refresh)"}"#)
            #expect(refresh.status == .unauthorized)
        }
    }

    @Test func requestBodiesAreCappedAtOneMebibyteByDefault() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        _ = try await db.createTenant("acme", modules: ["notes"])
        try await withIdentityApp(db) { client, _ in
            func login(padding: Int) async throws -> TestResponse {
                let prefix = #"{"email":"nobody@acme.test","password":"x","pad":""#
                let body = prefix + String(repeating: "a", count: padding - prefix.utf8.count - 2) + #""}"#
                #expect(body.utf8.count == padding)
                return try await client.post("/v1/tenants/acme/auth/login", json: body)
            }
            let atLimit = try await login(padding: 1 << 20)
            #expect(atLimit.status == .unauthorized)  // read and judged: wrong credentials
            let overLimit = try await login(padding: (1 << 20) + 1)
            #expect(overLimit.status == .contentTooLarge)
            #expect(json(overLimit)["code"]?.string == "payload_too_large")
        }
    }
}
