import AtriumCore
import Foundation
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
}
