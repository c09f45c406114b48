import ArgumentParser
import AtriumCore
import Foundation
import Hummingbird
import Logging

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
        let registry = try CommandErrors.mappedSync { try ModuleRegistry(installedModules) }
        let configuration = try CommandErrors.mappedSync {
            try AtriumConfiguration(
                environment: ProcessInfo.processInfo.environment, registry: registry, dataDirectory: global.dataDirectoryURL,
                plansFile: URL(fileURLWithPath: tenantsDir).appending(path: "plans.yaml"), host: host, port: port, maxBodyBytes: maxBodyBytes)
        }
        let server = configuration.server
        logger.notice("plan catalog", metadata: ["plans.source": "\(configuration.plansSource ?? "none")"])
        try CommandErrors.mappedSync { try LocalPort.requireAvailable(host: server.host, port: server.port) }
        try await global.withDatabase(logger: logger, creates: true) { location in
            try await KernelSetup.migrate(location, registry: registry, logger: logger)
            if location.embedded != nil, FileManager.default.fileExists(atPath: tenantsDir) {
                try await applyTenantFiles(location: location, registry: registry, logger: logger)
            }
            let runtime = try await CommandErrors.mapped {
                try await AtriumRuntime.prepare(configuration, registry: registry, location: location, logger: logger)
            }
            logger.notice("Atrium is serving", metadata: ["http.url": "http://\(server.host):\(server.port)"])
            try await ServiceRunner.run(runtime.services(http: true, worker: !noWorker), logger: logger)
        }
    }

    /// Applies the tenant files and shows the demo logins they declare (created when
    /// missing, never changed afterwards), so a newcomer finds them on each `make run`.
    private func applyTenantFiles(location: DatabaseLocation, registry: ModuleRegistry, logger: Logger) async throws {
        let applied = try await TenantsCommand.applyFiles(in: tenantsDir, location: location, registry: registry, logger: logger)
        for change in applied.changes { logger.info("tenant file applied", metadata: ["change": "\(change)"]) }
        let declared = try TenantFile.load(directory: URL(fileURLWithPath: tenantsDir)).flatMap { file in
            (file.users ?? []).map { [file.slug, $0.email, $0.password, ($0.roles ?? []).joined(separator: ",")] }
        }
        guard !declared.isEmpty else { return }
        let created = applied.logins.isEmpty ? "" : " (\(applied.logins.count) created now)"
        Console.line("Demo logins from \(tenantsDir)/\(created), for POST /v1/tenants/{tenant}/auth/login:")
        Console.table(["tenant", "email", "password", "roles"], declared)
    }
}
