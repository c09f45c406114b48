import AtriumCore
import AtriumSales
import AtriumTesting
import Foundation
import PostgresNIO
import Testing

/// Sales migration 0007 moves imports made before bulk import was a kernel facility into
/// the kernel's tables, with their rejected rows and stored files.
@Suite struct SalesImportMigrationTests {
    @Test func importsMadeBeforeTheKernelFacilityMoveIntoIt() async throws {
        let logger = TestDatabase.logger
        let db = try await TestDatabase.create(migrate: false)
        let all = try ModuleRegistry([SalesModule()]).allMigrations()
        let before = all.filter { $0.owner == "kernel" ? $0.version < 18 : $0.version < 7 }
        let later = all.filter { migration in !before.contains { $0.owner == migration.owner && $0.version == migration.version } }
        #expect(later.contains { $0.owner == "kernel" && $0.version == 18 } && later.contains { $0.owner == "sales" && $0.version == 7 })
        try await db.withOwner { try await Migrator(migrations: before, logger: logger).migrate($0) }
        let tenant = try await db.createTenant("acme", modules: ["sales"])
        let user = try await db.createUser("ann@acme.test", password: "correct horse battery", roles: ["sales_rep"], in: tenant)
        let importID = UUID()
        try await db.withOwner { connection in
            try await connection.withTenantTransaction(tenant.id, logger: logger) { connection in
                try await connection.scopeToAllOwners(logger: logger)
                try await connection.query(
                    """
                    INSERT INTO sales_imports (tenant_id, id, owner_id, entity, format, mode, error_policy, state, rows_read, rows_rejected)
                    VALUES (\(tenant.id), \(importID), \(user.id), 'contacts', 'csv', 'upsert', 'skip_invalid', 'queued', 2, 1)
                    """, logger: logger)
                try await connection.query(
                    "INSERT INTO sales_import_chunks (tenant_id, import_id, position, data) VALUES (\(tenant.id), \(importID), 0, \(Data("email\n".utf8)))",
                    logger: logger)
                try await connection.query(
                    "INSERT INTO sales_import_errors (tenant_id, import_id, line, reason) VALUES (\(tenant.id), \(importID), 3, 'email is required')",
                    logger: logger)
            }
        }
        try await db.withOwner { try await Migrator(migrations: all, logger: logger).migrate($0) }
        let moved = try await db.withOwner { connection in
            try await connection.withTenantTransaction(tenant.id, logger: logger) { connection in
                try await connection.scopeToAllOwners(logger: logger)
                let row = try await connection.query(
                    """
                    SELECT i.module, i.state, i.rows_rejected, (SELECT count(*)::int FROM import_chunks WHERE import_id = i.id),
                           (SELECT string_agg(reason, ',') FROM import_errors WHERE import_id = i.id)
                    FROM imports i WHERE i.id = \(importID)
                    """, logger: logger
                ).collect().first
                return try row?.decode((String, String, Int64, Int, String).self)
            }
        }
        #expect(moved?.0 == "sales")
        #expect(moved?.1 == "queued")
        #expect(moved?.2 == 1)
        #expect(moved?.3 == 1)
        #expect(moved?.4 == "email is required")
        let leftover = try await db.withOwner { connection in
            try await connection.query("SELECT count(*)::int FROM pg_tables WHERE tablename LIKE 'sales_import%'", logger: logger).first().decode(Int.self)
        }
        #expect(leftover == 0)
    }
}
