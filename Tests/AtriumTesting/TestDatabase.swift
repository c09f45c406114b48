public import AtriumCore
public import Foundation
public import Logging
public import PostgresNIO
public import Testing

/// A fresh database on the throwaway cluster that `make test` started, one per test,
/// so tests run in parallel without seeing each other's rows. A module's tests create
/// one with the module installed: `TestDatabase.create(modules: [MyModule()])`.
public struct TestDatabase: Sendable {
    public let name: String
    /// The application role: row-level security applies, as to the server.
    public let app: DatabaseURL
    /// The owner role: migrations, operators' work, tests' setup and inspection.
    public let owner: DatabaseURL
    public let superuser: DatabaseURL
    /// The master key of everything this database's applications and jobs seal (a
    /// module's data keys): what the test application seals, a job run on it opens.
    public let masterKey = MasterKey.generate()

    /// Quiet unless `ATRIUM_TEST_LOG_LEVEL` asks for more.
    public static let logger: Logger = {
        var logger = Logger(label: "atrium.test")
        logger.logLevel = ProcessInfo.processInfo.environment["ATRIUM_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        return logger
    }()

    public static func cluster() throws -> EmbeddedPostgres {
        guard let directory = ProcessInfo.processInfo.environment["ATRIUM_TEST_DATA_DIR"] else {
            throw ConfigurationError("ATRIUM_TEST_DATA_DIR is not set: run the tests with `make test`, which starts a throwaway PostgreSQL")
        }
        return EmbeddedPostgres(dataDirectory: URL(fileURLWithPath: directory), logger: logger)
    }

    /// Creates an empty database owned by the owner role, migrated unless `migrate` is false.
    ///
    /// A migrated database is a copy of a template migrated once per set of modules in
    /// this process (`CREATE DATABASE … TEMPLATE`): running every migration for each of
    /// some 250 tests was most of a full run's work on two cores, and the waits it caused
    /// made tests that watch a clock (leases, retries) flaky.
    public static func create(modules: [any AtriumModule] = [], migrate: Bool = true) async throws -> TestDatabase {
        let cluster = try cluster()
        let urls = try cluster.urls()
        let name = "test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        let superuser = try cluster.superuserURL()
        let template = migrate ? try await MigratedTemplates.shared.template(for: modules, superuser: superuser, owner: urls.owner) : nil
        try await createDatabase(name, from: template, superuser: superuser)
        var app = try overTLSWhenAsked(urls.app)
        app.database = name
        var owner = try overTLSWhenAsked(urls.owner)
        owner.database = name
        var superuserHere = superuser
        superuserHere.database = name
        return TestDatabase(name: name, app: app, owner: owner, superuser: superuserHere)
    }

    /// `CREATE DATABASE name` owned by the owner role, copied from `template` when given,
    /// which only the application and owner roles may enter.
    static func createDatabase(_ name: String, from template: String?, superuser: DatabaseURL) async throws {
        // A generous bound: a full run starts every suite's databases at once, and the
        // cluster forks a backend for each of them on two cores.
        do {
            try await withPostgresConnection(superuser, connectTimeout: .seconds(60), logger: logger) { connection in
                // Database names cannot be bind parameters; both are generated here from hex digits.
                let copy = template.map { " TEMPLATE \($0)" } ?? ""
                try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name) OWNER \(EmbeddedPostgres.ownerRole)\(copy)"), logger: logger)
                try await connection.query(PostgresQuery(unsafeSQL: "REVOKE ALL ON DATABASE \(name) FROM PUBLIC"), logger: logger)
                try await connection.query(
                    PostgresQuery(unsafeSQL: "GRANT CONNECT, TEMPORARY ON DATABASE \(name) TO \(EmbeddedPostgres.appRole)"), logger: logger)
            }
        } catch {
            // PSQLError's description hides the server's message; a failing test needs it.
            throw TestFailure("database \(name)\(template.map { " (from \($0))" } ?? "") was not created: \(String(reflecting: error))")
        }
    }

    /// The certificate `make test` gave the test cluster's TLS (`scripts/cluster-tls.sh`),
    /// for a `verify-full` URL to `localhost`.
    public static func rootCertificate() throws -> String {
        guard let path = ProcessInfo.processInfo.environment["ATRIUM_TEST_SSLROOTCERT"], !path.isEmpty else {
            throw ConfigurationError("ATRIUM_TEST_SSLROOTCERT is not set: run the tests with `make test`, which turns TLS on in its cluster")
        }
        return path
    }

    /// Whether this run reaches the cluster as production reaches its PostgreSQL: over TCP
    /// and TLS (`sslmode=verify-full`), not its Unix socket. `make test` runs the request
    /// path's, the module kit's and Sales' suites a second time so.
    public static var overTLS: Bool { ProcessInfo.processInfo.environment["ATRIUM_TEST_DATABASE_TLS"] == "1" }

    /// `url` over TCP to `localhost` with `sslmode=verify-full` when the run asks for TLS.
    static func overTLSWhenAsked(_ url: DatabaseURL) throws -> DatabaseURL {
        guard overTLS else { return url }
        return DatabaseURL(
            username: url.username, password: url.password, host: "localhost", port: url.port, database: url.database,
            tls: DatabaseTLS(mode: .verifyFull, rootCertificate: try rootCertificate()))
    }

    public var location: DatabaseLocation { DatabaseLocation(app: app, owner: owner, embedded: nil) }

    /// A data directory of this database's own (the mail directory of its application).
    public var dataDirectory: URL { FileManager.default.temporaryDirectory.appending(path: "atrium-\(name)") }

    /// Runs `body` with a pooled application-role `Database`.
    public func withApp<Result: Sendable>(maximumConnections: Int = 4, _ body: @Sendable (Database) async throws -> Result) async throws -> Result {
        try await withDatabase(app, maximumConnections: maximumConnections, logger: Self.logger, body)
    }

    @discardableResult
    public func withOwner<Result: Sendable>(_ body: (PostgresConnection) async throws -> Result) async throws -> Result {
        try await withPostgresConnection(owner, logger: Self.logger, body)
    }

    /// Creates a tenant as an operator would.
    public func createTenant(_ slug: String, modules: [String] = []) async throws -> Tenant {
        do {
            return try await createTenantRaisingDriverErrors(slug, modules: modules)
        } catch let error as PSQLError {
            throw TestFailure("tenant \(slug) was not created: \(String(reflecting: error))")
        }
    }

    private func createTenantRaisingDriverErrors(_ slug: String, modules: [String]) async throws -> Tenant {
        try await withOwner { connection in
            let tenant = try await TenantStore(logger: Self.logger).create(slug: slug, name: slug.capitalized, plan: "free", on: connection)
            for module in modules {
                try await connection.withTenantTransaction(tenant.id, logger: Self.logger) { connection in
                    try await ModuleEnablement(logger: Self.logger).enable(module, tenantID: tenant.id, on: connection)
                }
            }
            return tenant
        }
    }
}

/// Expects `body` to be refused by PostgreSQL with exactly `sqlState`: a syntax error
/// or a dropped connection must not pass for the refusal a test is about.
public func expectDatabaseError(
    _ sqlState: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> some Any
) async {
    do {
        _ = try await body()
        Issue.record("expected PostgreSQL to refuse with SQLSTATE \(sqlState); it did not", sourceLocation: sourceLocation)
    } catch let error as PSQLError {
        let state = error.serverInfo?[.sqlState]
        #expect(state == sqlState, "\(error.serverInfo?[.message] ?? String(reflecting: error))", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected SQLSTATE \(sqlState), got \(error)", sourceLocation: sourceLocation)
    }
}

/// Migrated template databases, one per set of modules, made once per test process: the
/// first test of a set migrates it; the others wait for that and copy it.
actor MigratedTemplates {
    static let shared = MigratedTemplates()

    private var templates: [String: Task<String, any Error>] = [:]
    private var made = 0
    /// Distinguishes this process's templates from another run's on the same cluster.
    private let run = UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(8).lowercased()

    func template(for modules: [any AtriumModule], superuser: DatabaseURL, owner: DatabaseURL) async throws -> String {
        let key = modules.map(\.id).sorted().joined(separator: ",")
        if let made = templates[key] { return try await made.value }
        made += 1
        let name = "template_\(run)_\(made)"
        let registry = try ModuleRegistry(modules)
        let making = Task {
            do {
                try await TestDatabase.createDatabase(name, from: nil, superuser: superuser)
                var migrating = owner
                migrating.database = name
                try await withPostgresConnection(migrating, connectTimeout: .seconds(60), logger: TestDatabase.logger) { connection in
                    try await Migrator(migrations: try registry.allMigrations(), logger: TestDatabase.logger).migrate(connection)
                }
                // A database with a session in it cannot be copied, and the migrating
                // backend may still be exiting (PostgreSQL waits only 5 s for it, too short
                // on a loaded machine): wait until it is gone.
                // (Autovacuum workers there do not matter: CREATE DATABASE stops them itself.)
                try await withPostgresConnection(superuser, connectTimeout: .seconds(60), logger: TestDatabase.logger) { connection in
                    for _ in 0..<600 {
                        let sessions = try await connection.query(
                            "SELECT count(*)::int4 FROM pg_stat_activity WHERE datname = \(name) AND backend_type = 'client backend'",
                            logger: TestDatabase.logger
                        ).collect().first?.decode(Int32.self) ?? 0
                        if sessions == 0 { return }
                        try await Task.sleep(for: .milliseconds(50))
                    }
                    // Nothing may stay connected to a template: whatever is, is ended.
                    try await connection.query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = \(name) AND pid <> pg_backend_pid()",
                        logger: TestDatabase.logger)
                }
                return name
            } catch {
                // PSQLError's description hides the server's message; a test's failure should not.
                throw TemplateFailure(description: "the migrated template for [\(key)] was not made: \(String(reflecting: error))")
            }
        }
        templates[key] = making
        do {
            return try await making.value
        } catch {
            // The next test of this set tries again rather than inheriting the failure.
            if templates[key] == making { templates[key] = nil }
            throw error
        }
    }
}

struct TemplateFailure: Error, CustomStringConvertible {
    var description: String
}
