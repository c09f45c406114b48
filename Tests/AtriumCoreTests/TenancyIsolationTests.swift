import AtriumCore
import AtriumTesting
import Foundation
import Logging
import PostgresNIO
import Testing

@Suite("Tenant isolation by row-level security")
struct TenancyIsolationTests {
    let logger = TestDatabase.logger

    /// Inserts `titles` as notes of `tenant` through the application role.
    func insertNotes(_ titles: [String], for tenant: Tenant, in database: Database) async throws {
        try await database.withTenantTransaction(tenant.id, logger: logger) { connection in
            for title in titles {
                try await connection.query("INSERT INTO notes (tenant_id, title) VALUES (\(tenant.id), \(title))", logger: logger)
            }
        }
    }

    func titles(visibleTo tenantID: UUID, in database: Database) async throws -> [String] {
        try await database.withTenantTransaction(tenantID, logger: logger) { connection in
            var titles: [String] = []
            // No tenant filter on purpose.
            for try await title in try await connection.query("SELECT title FROM notes ORDER BY title", logger: logger).decode(String.self) {
                titles.append(title)
            }
            return titles
        }
    }

    @Test func queryWithoutTenantFilterSeesOnlyItsOwnTenant() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme")
        let globex = try await db.createTenant("globex")
        try await db.withApp { database in
            try await insertNotes(["a1", "a2"], for: acme, in: database)
            try await insertNotes(["g1"], for: globex, in: database)
            let observed15 = try await titles(visibleTo: acme.id, in: database)
            #expect(observed15 == ["a1", "a2"])
            let observed16 = try await titles(visibleTo: globex.id, in: database)
            #expect(observed16 == ["g1"])
        }
    }

    @Test func appRoleSeesNoTenantRowWithoutTenantSetting() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme")
        try await db.withApp { database in
            try await insertNotes(["secret"], for: acme, in: database)
            let count = try await database.client.query("SELECT count(*)::int FROM notes", logger: logger).collect().first?.decode(Int.self)
            #expect(count == 0)
            // Writing another tenant's row from a tenant transaction is refused by the policy's WITH CHECK.
            let other = try await db.createTenant("other")
            await expectDatabaseError("42501") {
                try await database.withTenantTransaction(acme.id, logger: logger) { connection in
                    try await connection.query("INSERT INTO notes (tenant_id, title) VALUES (\(other.id), 'planted')", logger: logger)
                }
            }
            let observed17 = try await titles(visibleTo: other.id, in: database)
            #expect(observed17 == [])
        }
    }

    @Test func appRoleCannotTurnOffRowLevelSecurityAndOwnsNothing() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        try await db.withApp { database in
            await expectDatabaseError("42501") {
                try await database.client.query("ALTER TABLE notes DISABLE ROW LEVEL SECURITY", logger: logger)
            }
            await expectDatabaseError("42501") {
                try await database.client.query("ALTER TABLE notes NO FORCE ROW LEVEL SECURITY", logger: logger)
            }
            await expectDatabaseError("42501") {
                try await database.client.query("DROP POLICY tenant_isolation ON notes", logger: logger)
            }
            // With row_security off, PostgreSQL raises rather than silently bypassing the policy.
            await expectDatabaseError("42501") {
                try await database.withTransaction(logger: logger) { connection in
                    try await connection.query("SET LOCAL row_security = off", logger: logger)
                    try await connection.query("SELECT * FROM notes", logger: logger)
                }
            }
            let attributes = try await database.client.query(
                """
                SELECT r.rolsuper, r.rolbypassrls,
                       (SELECT count(*)::int FROM pg_class c WHERE c.relowner = r.oid AND c.relnamespace = 'public'::regnamespace)
                FROM pg_roles r WHERE r.rolname = current_user
                """, logger: logger
            ).collect().first?.decode((Bool, Bool, Int).self)
            #expect(attributes?.0 == false)
            #expect(attributes?.1 == false)
            #expect(attributes?.2 == 0)
        }
    }

    @Test func tenantSettingNeverLeaksAcrossPooledConnections() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        var tenants: [Tenant] = []
        for index in 0..<4 { tenants.append(try await db.createTenant("tenant-\(index)")) }
        let all = tenants
        try await db.withApp(maximumConnections: 3) { database in
            for tenant in all { try await insertNotes([tenant.slug], for: tenant, in: database) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for round in 0..<200 {
                    let tenant = all[round % all.count]
                    group.addTask {
                        let observed18 = try await titles(visibleTo: tenant.id, in: database)
                        #expect(observed18 == [tenant.slug])
                    }
                    group.addTask {
                        // A plain statement on a pooled connection after tenant transactions sees no tenant.
                        let setting = try await database.client.query(
                            "SELECT coalesce(current_setting('app.tenant_id', true), ''), (SELECT count(*)::int FROM notes)", logger: logger
                        ).collect().first?.decode((String, Int).self)
                        #expect(setting?.0 == "")
                        #expect(setting?.1 == 0)
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    @Test func deletingTenantRemovesEveryRowItOwned() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let doomed = try await db.createTenant("doomed", modules: ["notes"])
        let kept = try await db.createTenant("kept")
        try await db.withApp { database in
            try await insertNotes(["x", "y"], for: doomed, in: database)
            try await insertNotes(["z"], for: kept, in: database)
        }
        let deleted = try await db.withOwner { try await TenantStore(logger: logger).delete(slug: "doomed", on: $0) }
        #expect(deleted)
        let remaining = try await db.withOwner { connection in
            try await connection.query("SELECT count(*)::int FROM notes", logger: logger).collect().first?.decode(Int.self)
        }
        // The owner is subject to forced RLS too, so count through the superuser.
        let total = try await withPostgresConnection(db.superuser, logger: logger) { connection in
            try await connection.query(
                "SELECT (SELECT count(*)::int FROM notes), (SELECT count(*)::int FROM tenant_modules)", logger: logger
            ).collect().first?.decode((Int, Int).self)
        }
        #expect(remaining == 0)
        #expect(total?.0 == 1)
        #expect(total?.1 == 0)
    }

    @Test func schemaVerifierAcceptsKernelAndNamesTablesThatBreakTheRules() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let clean = try await db.withOwner { try await SchemaVerifier(logger: logger).verify($0) }
        #expect(clean.isEmpty, "\(clean)")
        let violations = try await db.withOwner { connection in
            try await connection.query(
                "CREATE TABLE leaky (id uuid PRIMARY KEY, tenant_id uuid, email text, UNIQUE (email))", logger: logger)
            return try await SchemaVerifier(logger: logger).verify(connection)
        }
        let problems = violations.filter { $0.table == "leaky" }.map(\.problem)
        #expect(problems.contains("row-level security is not enabled"))
        #expect(problems.contains("row-level security is not forced (the owner would bypass it)"))
        #expect(problems.contains("has no row-level security policy"))
        #expect(problems.contains("tenant_id is nullable"))
        #expect(problems.contains("primary key leaky_pkey does not start with tenant_id"))
        #expect(problems.contains("unique index leaky_email_key does not start with tenant_id"))
        #expect(problems.contains("tenant_id does not reference tenants (id) ON DELETE CASCADE, nor a parent's tenant_id that goes with its tenant"))
        #expect(violations.allSatisfy { $0.table == "leaky" })

        // A row keyed by a parent that goes with its tenant goes too; one whose parent
        // key does not cascade (or leads with another column) stays behind, and is named.
        let children = try await db.withOwner { connection in
            for statement: PostgresQuery in [
                "CREATE TABLE parents (tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE, name text, PRIMARY KEY (tenant_id, name))",
                """
                CREATE TABLE kept_children (tenant_id uuid NOT NULL, name text, day date,
                    PRIMARY KEY (tenant_id, name, day), FOREIGN KEY (tenant_id, name) REFERENCES parents ON DELETE CASCADE)
                """,
                """
                CREATE TABLE orphaned_children (tenant_id uuid NOT NULL, name text, day date,
                    PRIMARY KEY (tenant_id, name, day), FOREIGN KEY (tenant_id, name) REFERENCES parents)
                """,
                """
                CREATE TABLE misled_children (tenant_id uuid NOT NULL, name text, day date,
                    PRIMARY KEY (tenant_id, name, day), FOREIGN KEY (name, tenant_id) REFERENCES parents (name, tenant_id) ON DELETE CASCADE)
                """,
            ] {
                try await connection.query(statement, logger: logger)
            }
            for table in ["parents", "kept_children", "orphaned_children", "misled_children"] {
                try await connection.query("ALTER TABLE \(unescaped: table) ENABLE ROW LEVEL SECURITY", logger: logger)
                try await connection.query("ALTER TABLE \(unescaped: table) FORCE ROW LEVEL SECURITY", logger: logger)
                try await connection.query(
                    "CREATE POLICY tenant_isolation ON \(unescaped: table) USING (tenant_id = atrium_current_tenant())", logger: logger)
            }
            return try await SchemaVerifier(logger: logger).verify(connection).filter { $0.table.hasSuffix("children") || $0.table == "parents" }
        }
        #expect(children.map(\.table).sorted() == ["misled_children", "orphaned_children"], "\(children)")

        // An append-only log may have no key, and goes with its tenant only by its trigger.
        let logs = try await db.withOwner { connection in
            for statement: PostgresQuery in [
                "CREATE TABLE tracked_log (tenant_id uuid NOT NULL, n int)",
                "CREATE TABLE untracked_log (tenant_id uuid NOT NULL, n int)",
                "CREATE FUNCTION forget_tracked() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN DELETE FROM tracked_log WHERE tenant_id = OLD.id; RETURN OLD; END $$",
                "CREATE TRIGGER tracked_log_removed_with_tenant AFTER DELETE ON tenants FOR EACH ROW EXECUTE FUNCTION forget_tracked()",
            ] {
                try await connection.query(statement, logger: logger)
            }
            for table in ["tracked_log", "untracked_log"] {
                try await connection.query("COMMENT ON TABLE \(unescaped: table) IS 'atrium:append-only'", logger: logger)
                try await connection.query("ALTER TABLE \(unescaped: table) ENABLE ROW LEVEL SECURITY", logger: logger)
                try await connection.query("ALTER TABLE \(unescaped: table) FORCE ROW LEVEL SECURITY", logger: logger)
                try await connection.query(
                    "CREATE POLICY tenant_isolation ON \(unescaped: table) USING (tenant_id = atrium_current_tenant())", logger: logger)
            }
            return try await SchemaVerifier(logger: logger).verify(connection).filter { $0.table.hasSuffix("_log") }
        }
        #expect(logs.map(\.table) == ["untracked_log", "untracked_log"], "\(logs)")
        #expect(Set(logs.map(\.problem)) == [
            "has no primary key",
            "tenant_id does not reference tenants (id) ON DELETE CASCADE, nor a parent's tenant_id that goes with its tenant",
        ])
    }
}
