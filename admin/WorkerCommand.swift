import ArgumentParser
import Foundation
import AtriumCore
import Logging
import PostgresNIO
import ServiceLifecycle

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run job workers only (any number of them, on any machine, may share one database).")

    @OptionGroup var global: GlobalOptions

    @Option(help: "Jobs run at once by this worker.")
    var concurrency: Int = 4

    @Option(help: "Folder of plans.yaml, the plan catalog the billing jobs price invoices with.")
    var tenantsDir: String = "tenants"

    func run() async throws {
        let logger = global.logger(defaultLevel: .info)
        let registry = try CommandErrors.mappedSync { try ModuleRegistry(installedModules) }
        try await global.withDatabase(logger: logger) { location in
            try await KernelSetup.migrate(location, registry: registry, logger: logger)
            let client = PostgresClient(configuration: location.app.clientConfiguration(maximumConnections: concurrency + 2), backgroundLogger: logger)
            let mailer = try CommandErrors.mappedSync {
                try Mailer.from(environment: ProcessInfo.processInfo.environment, dataDirectory: global.dataDirectoryURL, logger: logger)
            }
            let environment = ProcessInfo.processInfo.environment
            let masterKey = try await CommandErrors.mapped {
                try await MasterKey.load(environment: environment, location: location, logger: logger)
            }
            let plans = try BillingSetup.catalog(tenantsDirectory: tenantsDir, registry: registry)
            let billing = try await BillingSetup.prepare(catalog: plans, registry: registry, location: location, masterKey: masterKey, logger: logger)
            let worker = JobWorker(
                database: Database(client: client, maximumConnections: concurrency + 2), registry: registry, mailer: mailer,
                kernelJobs: billing.jobs, kernelSchedules: billing.schedules, configuration: .init(concurrency: concurrency),
                kit: ModuleKit(masterKey: masterKey, publicURL: try PublicAddresses.publicURL(environment), environment: environment, logger: logger),
                logger: logger)
            try await ServiceRunner.run([client, worker], logger: logger)
        }
    }
}
