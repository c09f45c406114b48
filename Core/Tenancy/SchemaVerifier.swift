public import Logging
public import PostgresNIO

/// Checks the tenancy rules on the live schema, so a migration that breaks them is
/// caught by the tests and by `atrium doctor`, not by a customer.
///
/// Every table with a `tenant_id` column must have row-level security enabled and
/// forced with at least one policy. Unless it is a platform table (commented
/// `atrium:platform`, like the job queue), `tenant_id` must also be NOT NULL, lead its
/// primary key and every unique index (so the schema can be distributed by tenant), and
/// go when its tenant goes: it references `tenants` with ON DELETE CASCADE, or its
/// `(tenant_id, …)` references a parent's `(tenant_id, …)` with ON DELETE CASCADE and the
/// parent goes with its tenant (a price row keyed by its instrument need not check its
/// tenant a second time on every insert). An append-only log (commented
/// `atrium:append-only`, like `usage_pending`, whose writes a key would slow) may have no
/// primary key; it goes with its tenant by a trigger on `tenants` named
/// `<table>_removed_with_tenant`.
public struct SchemaVerifier: Sendable {
    public struct Violation: Sendable, Equatable, CustomStringConvertible, Codable {
        public var table: String
        public var problem: String
        public var description: String { "\(table): \(problem)" }
    }

    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func verify(_ connection: PostgresConnection) async throws -> [Violation] {
        let tables = try await connection.query(
            """
            SELECT c.oid::int8, c.relname::text, c.relrowsecurity, c.relforcerowsecurity,
                   coalesce(obj_description(c.oid, 'pg_class'), '') = 'atrium:platform',
                   a.attnotnull,
                   (SELECT count(*)::int FROM pg_policy p WHERE p.polrelid = c.oid),
                   coalesce(obj_description(c.oid, 'pg_class'), '') = 'atrium:append-only'
                       AND EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = 'tenants'::regclass AND NOT t.tgisinternal
                                   AND t.tgname = c.relname || '_removed_with_tenant')
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
            ORDER BY c.relname
            """, logger: logger
        ).collect()
        // The tables whose rows a tenant's deletion removes, directly or through parents.
        let removedWithTenant = Set(
            try await connection.query(
                """
                WITH RECURSIVE removed (relid) AS (
                    SELECT 'tenants'::regclass::oid
                    UNION
                    SELECT c.conrelid FROM pg_constraint c JOIN removed r ON c.confrelid = r.relid
                    WHERE c.contype = 'f' AND c.confdeltype = 'c'
                      AND (SELECT attname FROM pg_attribute WHERE attrelid = c.conrelid AND attnum = c.conkey[1]) = 'tenant_id'
                      AND (SELECT attname FROM pg_attribute WHERE attrelid = c.confrelid AND attnum = c.confkey[1])
                          = CASE WHEN c.confrelid = 'tenants'::regclass THEN 'id' ELSE 'tenant_id' END
                )
                SELECT relid::int8 FROM removed
                """, logger: logger
            ).collect().map { try $0.decode(Int64.self) })
        var violations: [Violation] = []
        for row in tables {
            let (oid, table, rls, forced, platform, notNull, policies, appendOnly) = try row.decode(
                (Int64, String, Bool, Bool, Bool, Bool, Int, Bool).self)
            func flag(_ problem: String) { violations.append(Violation(table: table, problem: problem)) }
            if !rls { flag("row-level security is not enabled") }
            if !forced { flag("row-level security is not forced (the owner would bypass it)") }
            if policies == 0 { flag("has no row-level security policy") }
            if platform { continue }
            if !notNull { flag("tenant_id is nullable") }
            let indexes = try await connection.query(
                """
                SELECT ic.relname::text, i.indisprimary, coalesce(a.attname::text, '')
                FROM pg_index i
                JOIN pg_class ic ON ic.oid = i.indexrelid
                LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                WHERE i.indrelid = \(oid)::oid AND i.indisunique
                """, logger: logger
            ).collect()
            var hasPrimaryKey = false
            for index in indexes {
                let (name, primary, firstColumn) = try index.decode((String, Bool, String).self)
                hasPrimaryKey = hasPrimaryKey || primary
                if firstColumn != "tenant_id" {
                    flag("\(primary ? "primary key" : "unique index") \(name) does not start with tenant_id")
                }
            }
            if appendOnly { continue }
            if !hasPrimaryKey { flag("has no primary key") }
            if !removedWithTenant.contains(oid) {
                flag("tenant_id does not reference tenants (id) ON DELETE CASCADE, nor a parent's tenant_id that goes with its tenant")
            }
        }
        return violations
    }
}
