@testable import AtriumCore
import AtriumTesting
import Foundation
import Hummingbird
import HummingbirdTesting
import PostgresNIO
import Testing

/// Sessions served from memory while the listener runs: a session seen before skips the
/// check, a change through the kernel's routes is seen by the very next request, and a
/// change made elsewhere (another process, the CLI) arrives by notification.
@Suite("Sessions from memory")
struct SessionCacheTests {
    let logger = TestDatabase.logger

    /// The identity application with the request path's listener running, as `atrium serve` has it.
    func withListeningApp(
        _ db: TestDatabase, _ body: @escaping @Sendable (any TestClientProtocol, TenantDirectory) async throws -> Void
    ) async throws {
        try await db.withApp(maximumConnections: 8) { database in
            let runtime = try await AtriumRuntime.prepareForTest(db, modules: [NotesModule()], database: database)
            let directory = runtime.dependencies.directory
            try await directory.whileListening(on: database) {
                let app = Application(router: runtime.router, logger: TestDatabase.logger)
                try await app.test(.router) { client in try await body(client, directory) }
            }
        }
    }

    func eventually(_ condition: () async throws -> Bool) async rethrows -> Bool {
        for _ in 0..<300 {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    func superuser(_ db: TestDatabase, _ sql: String) async throws {
        try await withPostgresConnection(db.superuser, logger: logger) { connection in
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
        }
    }

    func asOwner(_ db: TestDatabase, _ tenant: Tenant, _ sql: PostgresQuery) async throws {
        try await db.withOwner { connection in
            try await connection.withTenantTransaction(tenant.id, logger: logger) { connection in
                try await connection.query(sql, logger: logger)
            }
        }
    }

    @Test func sessionsComeFromMemoryAndChangesReachThem() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme")
        let user = try await db.createUser("user@acme.test", password: "right-password", roles: ["member"], in: acme)
        try await withListeningApp(db) { client, directory in
            let me = "/v1/tenants/acme/auth/me"
            let laptop = try await client.login("acme", "user@acme.test", "right-password")
            let phone = try await client.login("acme", "user@acme.test", "right-password")
            #expect(try await client.get(me, token: laptop.access).status == .ok)
            #expect(try await client.get(me, token: phone.access).status == .ok)
            #expect(directory.sessions.count == 2)

            // Revoked in the database with its notification off: the session is still
            // served, from memory (so the cache really is one).
            try await superuser(db, "ALTER TABLE sessions DISABLE TRIGGER sessions_notify_update")
            try await asOwner(db, acme, "UPDATE sessions SET revoked_at = now() WHERE user_id = \(user.id) AND revoked_at IS NULL")
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await client.get(me, token: laptop.access).status == .ok)
            try await superuser(db, "ALTER TABLE sessions ENABLE TRIGGER sessions_notify_update")

            // A write through the kernel's routes drops the tenant's sessions at once: the
            // logout answers (the phone's session was still live in memory), and the very
            // next request, with either token, is checked again and refused.
            #expect(try await client.post("/v1/tenants/acme/auth/logout", json: "{}", token: phone.access).status == .noContent)
            #expect(try await client.get(me, token: phone.access).status == .unauthorized)
            #expect(try await client.get(me, token: laptop.access).status == .unauthorized)

            // A change made elsewhere arrives by notification: disabling the user.
            let tablet = try await client.login("acme", "user@acme.test", "right-password")
            #expect(try await client.get(me, token: tablet.access).status == .ok)
            #expect(directory.sessions.count == 1)
            try await asOwner(db, acme, "UPDATE users SET status = 'disabled' WHERE id = \(user.id)")
            #expect(try await eventually { try await client.get(me, token: tablet.access).status == .unauthorized })
        }
    }

    @Test func aRoleTakenAwayElsewhereReachesTheCachedPermissions() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme")
        let user = try await db.createUser("admin@acme.test", password: "right-password", roles: ["admin"], in: acme)
        try await withListeningApp(db) { client, _ in
            let session = try await client.login("acme", "admin@acme.test", "right-password")
            let users = "/v1/tenants/acme/admin/users"
            #expect(try await client.get(users, token: session.access).status == .ok)
            try await asOwner(db, acme, "DELETE FROM user_roles WHERE user_id = \(user.id) AND role = 'admin'")
            #expect(try await eventually { try await client.get(users, token: session.access).status == .forbidden })
        }
    }
}
