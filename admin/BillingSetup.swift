import AtriumCore
import Foundation
import Logging
import PostgresNIO

/// What `serve` and `worker` prepare for billing: the plan catalog's quotas and the
/// declared meters published to the database, and the billing jobs and schedules.
struct BillingSetup {
    var metering: Metering
    var jobs: [JobDefinition] = []
    var schedules: [ScheduleDefinition] = []

    /// Loads `tenants/plans.yaml` (or the given path) when it exists.
    static func catalog(tenantsDirectory: String, registry: ModuleRegistry) throws -> PlanCatalog? {
        try TenantsCommand.catalog(URL(fileURLWithPath: tenantsDirectory).appending(path: "plans.yaml").path(), registry: registry)
    }

    static func prepare(
        catalog: PlanCatalog?, registry: ModuleRegistry, location: DatabaseLocation, masterKey: MasterKey?, logger: Logger
    ) async throws -> BillingSetup {
        let metering = Metering(registry: registry, catalog: catalog, logger: logger)
        try await CommandErrors.mapped {
            try await withPostgresConnection(location.owner, logger: logger) { connection in
                try await MeterDeclarations(metering: metering, logger: logger).synchronize(on: connection)
                try await catalog?.publishQuotas(on: connection, logger: logger)
            }
        }
        guard let catalog else { return BillingSetup(metering: metering) }
        return BillingSetup(
            metering: metering, jobs: BillingJobs.definitions(catalog: catalog, metering: metering, masterKey: masterKey, logger: logger),
            schedules: BillingJobs.schedules)
    }

    /// `ATRIUM_RATE_LIMIT_STORE`: `memory` (default, per process) or `postgres` (shared).
    static func rateLimitStore(environment: [String: String], database: Database, logger: Logger) throws -> any RateLimitStore {
        switch environment["ATRIUM_RATE_LIMIT_STORE"] ?? "memory" {
        case "memory": return MemoryRateLimitStore()
        case "postgres": return PostgresRateLimitStore(database: database, logger: logger)
        case let other: throw ValidationFailure("ATRIUM_RATE_LIMIT_STORE must be memory or postgres, not '\(other)'")
        }
    }
}
