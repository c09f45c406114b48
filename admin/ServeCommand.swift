import ArgumentParser
import AtriumCore
import Foundation
import Hummingbird
import Logging
import PostgresNIO
import ServiceLifecycle

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the HTTP API with its job workers.",
        discussion: """
            Migrates the database first. With the embedded database it also applies the tenant files \
            (--tenants-dir, default tenants/) so a new checkout has demo tenants. SIGTERM or SIGINT stops \
            accepting requests, drains in-flight requests and running jobs (30 s at most), closes the pool \
            and stops the embedded cluster.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: "Address to listen on (default: $ATRIUM_HOST or 127.0.0.1).")
    var host: String?

    @Option(help: "Port to listen on (default: $ATRIUM_PORT or 8080).")
    var port: Int?

    @Option(help: "Folder of tenant files (applied at start with the embedded database) and of plans.yaml, the plan catalog.")
    var tenantsDir: String = "tenants"

    @Option(help: "Largest request body accepted, in bytes (default: $ATRIUM_MAX_BODY_BYTES or 1048576).")
    var maxBodyBytes: Int?

    @Flag(help: "Serve HTTP only; run workers elsewhere with `atrium worker`.")
    var noWorker = false

    func run() async throws {
        let logger = global.logger(defaultLevel: .info)
        let environment = ProcessInfo.processInfo.environment
        let server = ServerConfiguration(
            host: host ?? environment["ATRIUM_HOST"] ?? "127.0.0.1",
            port: port ?? environment["ATRIUM_PORT"].flatMap(Int.init) ?? 8080,
            maxBodySize: maxBodyBytes ?? environment["ATRIUM_MAX_BODY_BYTES"].flatMap(Int.init) ?? 1 << 20,
            corsOrigins: Set(Self.list(environment["ATRIUM_CORS_ORIGINS"])),
            trustedProxies: TrustedProxies(Self.list(environment["ATRIUM_TRUSTED_PROXIES"])))
        try CommandErrors.mappedSync { try LocalPort.requireAvailable(host: server.host, port: server.port) }
        let registry = try CommandErrors.mappedSync { try ModuleRegistry(installedModules) }
        let plans = try BillingSetup.catalog(tenantsDirectory: tenantsDir, registry: registry)
        try await global.withDatabase(logger: logger) { location in
            try await KernelSetup.migrate(location, registry: registry, logger: logger)
            if location.embedded != nil, FileManager.default.fileExists(atPath: tenantsDir) {
                let applied = try await TenantsCommand.applyFiles(in: tenantsDir, location: location, registry: registry, logger: logger)
                for change in applied.changes { logger.info("tenant file applied", metadata: ["change": "\(change)"]) }
                // Every start shows the demo logins the files declare (created when missing,
                // never changed afterwards), so a newcomer finds them on each `make run`.
                let declared = try TenantFile.load(directory: URL(fileURLWithPath: tenantsDir)).flatMap { file in
                    (file.users ?? []).map { [file.slug, $0.email, $0.password, ($0.roles ?? []).joined(separator: ",")] }
                }
                if !declared.isEmpty {
                    let created = applied.logins.isEmpty ? "" : " (\(applied.logins.count) created now)"
                    Console.line("Demo logins from \(tenantsDir)/\(created), for POST /v1/tenants/{tenant}/auth/login:")
                    Console.table(["tenant", "email", "password", "roles"], declared)
                }
            }
            let poolSize = try Self.poolSize(environment)
            let client = PostgresClient(configuration: location.app.clientConfiguration(maximumConnections: poolSize), backgroundLogger: logger)
            let database = Database(client: client, maximumConnections: poolSize)
            let masterKey = try await CommandErrors.mapped {
                try await MasterKey.load(environment: environment, location: location, logger: logger)
            }
            let appURL = try PublicAddresses.appURL(environment)
            let publicURL = try PublicAddresses.publicURL(environment, host: server.host, port: server.port)
            let kit = ModuleKit(masterKey: masterKey, publicURL: publicURL, environment: environment, logger: logger)
            let settings = try IdentitySettings(environment: environment)
            let identity = try await Identity.prepare(
                database: database, registry: registry, masterKey: masterKey, hasher: PasswordHasher(parameters: settings.hashing),
                settings: settings.sessions, appURL: appURL, publicURL: publicURL, emailTokenLifetimes: settings.emailTokenLifetimes, logger: logger)
            let mailer = try CommandErrors.mappedSync {
                try Mailer.from(environment: environment, dataDirectory: global.dataDirectoryURL, logger: logger)
            }
            let billing = try await BillingSetup.prepare(catalog: plans, registry: registry, location: location, masterKey: masterKey, logger: logger)
            let dependencies = ApplicationDependencies(
                database: database, registry: registry, identity: identity, plans: plans,
                limiter: try BillingSetup.rateLimitStore(environment: environment, database: database, logger: logger),
                operatorAccess: try environment["ATRIUM_OPERATOR_TOKEN"].map { token in
                    try CommandErrors.mappedSync { try OperatorAccess(token: token, ownerURL: location.owner) }
                }, kit: kit, logger: logger,
                expectedMigrations: try registry.allMigrations())
            let application = buildApplication(dependencies, server: server)
            // The pool first and the server last: a graceful stop drains the server, lets
            // the worker finish its jobs, flushes the last API-call counts, then closes the pool.
            var services: [any Service] = [client] + dependencies.requestPathServices
            if !noWorker {
                services.append(JobWorker(
                    database: database, registry: registry, mailer: mailer, kernelJobs: billing.jobs, kernelSchedules: billing.schedules,
                    configuration: .init(), kit: kit, logger: logger))
            }
            services.append(application)
            logger.notice("Atrium is serving", metadata: ["http.url": "http://\(server.host):\(server.port)"])
            try await ServiceRunner.run(services, logger: logger)
        }
    }

    /// Connections of the pool: `ATRIUM_DB_POOL_SIZE`, else four per core (at least 8).
    /// An authenticated request holds one connection from its credential check to its
    /// commit, so the pool bounds the requests in the database at once; a few per core keep
    /// PostgreSQL's processes busy without making them queue on each other.
    static func poolSize(_ environment: [String: String]) throws -> Int {
        if let text = environment["ATRIUM_DB_POOL_SIZE"] {
            guard let size = Int(text), (1...500).contains(size) else { throw ValidationFailure("ATRIUM_DB_POOL_SIZE must be 1 to 500") }
            return size
        }
        return max(8, ProcessInfo.processInfo.activeProcessorCount * 4)
    }

    /// A comma-separated setting as a list.
    static func list(_ text: String?) -> [String] {
        (text ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}
