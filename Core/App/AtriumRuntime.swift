import Foundation
public import Hummingbird
public import Logging
import PostgresNIO
public import ServiceLifecycle
public import Prometheus

/// The composition root: an Atrium process put together from its configuration, the
/// installed modules and its database. `atrium serve`, `atrium worker` and the tests all
/// build through `prepare`, so what the tests exercise is what production runs.
public struct AtriumRuntime: Sendable {
    public let configuration: AtriumConfiguration
    /// What the HTTP application is built from (`router`).
    public let dependencies: ApplicationDependencies
    public let masterKey: MasterKey
    /// The pools this runtime made and runs (none when the caller gave one).
    let pools: [any Service]
    let worker: JobWorker

    /// Publishes the plan catalog's quotas and the declared meters (as the owner role),
    /// loads the master key, prepares the identity layer and the job worker.
    ///
    /// - Parameters:
    ///   - database: a pool the caller runs (tests); nil makes the pools of `connections`
    ///     connections and one per event loop (`Database.pooled`), which `services` runs
    ///     first and closes last.
    ///   - masterKey: given by tests; otherwise `ATRIUM_MASTER_KEY` (or the embedded
    ///     database's key file), checked against the key the database was set up with.
    ///   - authenticator, limiter, metrics: replacements for tests of the request path.
    public static func prepare(
        _ configuration: AtriumConfiguration, registry: ModuleRegistry, location: DatabaseLocation, database: Database? = nil,
        masterKey: MasterKey? = nil, workerConcurrency: Int = 4, authenticator: (any Authenticator)? = nil, limiter: (any RateLimitStore)? = nil,
        metrics: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), logger: Logger
    ) async throws -> AtriumRuntime {
        let environment = configuration.environment
        let pool: Database
        if let database {
            pool = database
        } else {
            let budget = try ConnectionBudget(total: configuration.connections, loops: Database.serverLoopCount)
            // Say how many processes of this size fit, and refuse to start when this one does not.
            try await withPostgresConnection(location.app, logger: logger) { try await budget.checkCapacity(on: $0, logger: logger) }
            pool = try Database.pooled(location.app, budget: budget, embedded: location.embedded, logger: logger)
        }
        let key: MasterKey
        if let masterKey { key = masterKey } else { key = try await MasterKey.load(environment: environment, location: location, logger: logger) }

        let metering = Metering(registry: registry, catalog: configuration.plans, logger: logger)
        try await withPostgresConnection(location.owner, logger: logger) { connection in
            try await MeterDeclarations(metering: metering, logger: logger).synchronize(on: connection)
            try await configuration.plans?.publishQuotas(on: connection, logger: logger)
        }
        let kit = ModuleKit(masterKey: key, publicURL: configuration.publicURL, clock: configuration.clock, environment: environment, logger: logger)
        for module in registry.modules { try module.checkSettings(ModuleSettings(moduleID: module.id, environment: environment)) }
        let identity = try await Identity.prepare(
            database: pool, registry: registry, masterKey: key, hasher: PasswordHasher(parameters: configuration.hashing), settings: configuration.sessions,
            appURL: configuration.appURL, publicURL: configuration.publicURL, emailTokenLifetimes: configuration.emailTokenLifetimes,
            outbound: configuration.outbound, logger: logger)
        let mailer = try Mailer.from(environment: environment, dataDirectory: configuration.dataDirectory, logger: logger)
        let dependencies = ApplicationDependencies(
            database: pool, registry: registry, identity: identity, authenticator: authenticator, plans: configuration.plans,
            limiter: limiter ?? (configuration.sharedRateLimits ? PostgresRateLimitStore(database: pool, logger: logger) : MemoryRateLimitStore()),
            operatorAccess: try configuration.operatorToken.map { try OperatorAccess(token: $0, ownerURL: location.owner) }, metrics: metrics, kit: kit,
            logger: logger,
            expectedMigrations: try registry.allMigrations())
        let worker = JobWorker(
            database: pool, registry: registry, mailer: mailer,
            kernelJobs: configuration.plans.map { BillingJobs.definitions(catalog: $0, metering: metering, masterKey: key, outbound: configuration.outbound, logger: logger) } ?? [],
            kernelSchedules: configuration.plans == nil ? [] : BillingJobs.schedules, configuration: .init(concurrency: workerConcurrency), kit: kit,
            logger: logger)
        return AtriumRuntime(configuration: configuration, dependencies: dependencies, masterKey: key, pools: database == nil ? pool.services : [], worker: worker)
    }

    /// The router of every kernel and module route, behind the request path.
    public var router: Router<AtriumRequestContext> {
        buildRouter(dependencies, server: configuration.server)
    }

    /// The process's services in the order a graceful stop needs: the pool first (it
    /// closes last), the request path's listener and API-call flusher, the job worker,
    /// and the HTTP server last (it drains first; then the worker finishes its jobs and
    /// the last API calls are flushed before the pool closes).
    public func services(http: Bool, worker runsJobs: Bool) -> [any Service] {
        var services: [any Service] = pools
        if http { services += dependencies.requestPathServices }
        if runsJobs { services.append(worker) }
        if http { services.append(buildApplication(dependencies, server: configuration.server)) }
        // Listed last, so told first when the stop begins: the worker stops claiming at
        // once, while the HTTP server drains and before the worker's own turn comes.
        if http && runsJobs { services.append(GracefulStopNotice { [worker] in worker.stopClaiming() }) }
        return services
    }
}

/// A service that does nothing but run `action` when a graceful stop begins, then ends.
/// ServiceGroup stops services one at a time in reverse order; this one, listed last,
/// hears the stop before all the others do.
struct GracefulStopNotice: Service {
    let action: @Sendable () -> Void

    func run() async throws {
        try? await gracefulShutdown()
        action()
    }
}
