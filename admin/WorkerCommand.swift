import ArgumentParser
import Foundation
import AtriumCore
import Logging

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
        var configuration = try CommandErrors.mappedSync {
            try AtriumConfiguration(
                environment: ProcessInfo.processInfo.environment, registry: registry, dataDirectory: global.dataDirectoryURL,
                plansFile: URL(fileURLWithPath: tenantsDir).appending(path: "plans.yaml"))
        }
        // Jobs take the shared pool (a third of the budget, after the listener and imports):
        // enough for every slot, the schedules and the lease renewals.
        configuration.connections = max(ConnectionBudget.minimum(loops: ProcessInfo.processInfo.activeProcessorCount), 2 + 3 * (concurrency + 2))
        try await global.withDatabase(logger: logger) { location in
            try await KernelSetup.migrate(location, registry: registry, logger: logger)
            let runtime = try await CommandErrors.mapped {
                try await AtriumRuntime.prepare(configuration, registry: registry, location: location, workerConcurrency: concurrency, logger: logger)
            }
            try await ServiceRunner.run(runtime.services(http: false, worker: true), logger: logger)
        }
    }
}
