import ArgumentParser
import AtriumCore
import Logging

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply pending migrations of the kernel and every installed module, or show their status.",
        subcommands: [Apply.self, Status.self],
        defaultSubcommand: Apply.self)

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "apply", abstract: "Apply pending migrations (the default).")
        @OptionGroup var global: GlobalOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let logger = global.logger(defaultLevel: .warning)
            let registry = try CommandErrors.mappedSync { try ModuleRegistry(installedModules) }
            let applied = try await global.withDatabase(logger: logger, creates: true) { location in
                try await KernelSetup.migrate(location, registry: registry, logger: logger)
            }
            if json {
                try Console.json(applied.map { ["owner": $0.owner, "file": $0.fileName] })
            } else if applied.isEmpty {
                Console.line("Database is up to date.")
            } else {
                for migration in applied { Console.line("applied \(migration.owner)/\(migration.fileName)") }
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "status", abstract: "List every migration and whether it is applied.")
        @OptionGroup var global: GlobalOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let logger = global.logger(defaultLevel: .warning)
            let registry = try CommandErrors.mappedSync { try ModuleRegistry(installedModules) }
            let migrator = Migrator(migrations: try registry.allMigrations(), logger: logger)
            let status = try await global.withDatabase(logger: logger) { location in
                try await withPostgresConnection(location.owner, logger: logger) { try await migrator.status($0) }
            }
            if json {
                try Console.json(status)
            } else {
                Console.table(["owner", "file", "state", "applied at"], status.map { [$0.owner, $0.file, $0.state, Console.timestamp($0.appliedAt)] })
            }
            if status.contains(where: { $0.state == "changed" }) { throw ExitCode(2) }
        }
    }
}
