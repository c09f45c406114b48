public import Foundation
public import Logging
import PostgresNIO

extension GlobalOptions {
    /// Runs one of `module`'s jobs now, in this process, for the tenant named `slug`, with
    /// the context a worker gives it (the master key, the module's settings and outbound
    /// policy from this environment, metering): for operator commands that do a job's work
    /// on demand and report how it went (`atrium crypto connections sync --wait`), without
    /// waiting for a worker to come round. The job must be safe to run beside a worker's run
    /// of the same work, as every job must be (a retry is the same thing).
    ///
    /// Throws `ValidationFailure` when no such tenant exists, and whatever the job throws
    /// (`JobRetryLater` included: the caller decides whether to wait).
    public func runJobNow<Payload: Codable & Sendable>(
        _ kind: JobKind<Payload>, of module: any AtriumModule, tenant slug: String, payload: Payload, logger: Logger
    ) async throws {
        guard let definition = module.jobs.first(where: { $0.kind == kind.name }) else {
            throw ConfigurationError("module '\(module.id)' declares no job '\(kind.name)'")
        }
        let encoded = try JSONEncoder().encode(payload)
        try await withJobContext(of: module, tenant: slug, kind: kind.name, payload: encoded, logger: logger) { context in
            try await definition.handler(context)
        }
    }

    /// A job's context for the tenant named `slug`, as a worker builds it, for `body`: for
    /// an operator command that does a module's work in the tenant's transactions and
    /// reports on it (`atrium crypto rotate-keys`), with the module's sealer and settings.
    public func withJobContext<Result: Sendable>(
        of module: any AtriumModule, tenant slug: String, kind: String? = nil, payload: Data = Data("{}".utf8), logger: Logger,
        _ body: @Sendable (JobContext) async throws -> Result
    ) async throws -> Result {
        let registry = try ModuleRegistry([module])
        return try await withDatabase(logger: logger) { location in
            let environment = ProcessInfo.processInfo.environment
            let masterKey = try await MasterKey.load(environment: environment, location: location, logger: logger)
            let publicURL = environment["ATRIUM_PUBLIC_URL"].flatMap(URL.init(string:)) ?? Identity.defaultAppURL
            let kit = ModuleKit(masterKey: masterKey, publicURL: publicURL, environment: environment, logger: logger)
            return try await withPostgresClient(location.app, logger: logger) { client in
                let database = Database(client: client)
                let tenant = try await database.withTransaction(logger: logger) { connection in
                    try await TenantStore(logger: logger).find(slug: slug, on: connection)
                }
                guard let tenant else { throw ValidationFailure("no tenant named '\(slug)'") }
                let context = JobContext(
                    kind: kind ?? "\(module.id).command", tenantID: tenant.id, payload: payload, logger: logger, database: database,
                    metering: Metering(registry: registry, logger: logger), channels: Set(module.channels), module: kit.context(for: module.id))
                return try await body(context)
            }
        }
    }
}
