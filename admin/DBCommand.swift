import ArgumentParser
import AtriumCore
import Foundation
import Logging

struct DBCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db", abstract: "Reach the database directly.", subcommands: [URLCommand.self, Shell.self, Start.self, Stop.self])

    enum Role: String, ExpressibleByArgument {
        case app, owner
    }

    struct URLCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "url",
            abstract: "Print the connection URL (with password) of the application or owner role.",
            discussion: "For the embedded cluster, the URL works while an `atrium` command or server keeps the cluster running.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "app (row-level security applies) or owner (owns the tables).") var role: Role = .app

        func run() async throws {
            let logger = global.logger(defaultLevel: .warning)
            let url = try await global.withDatabase(logger: logger) { location in role == .app ? location.app : location.owner }
            Console.line(url.description)
        }
    }

    struct Shell: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "shell", abstract: "Open psql on the database.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "app (row-level security applies) or owner (owns the tables).") var role: Role = .app
        @Option(name: .shortAndLong, help: "Run one SQL command and exit, as psql -c.") var command: String?

        func run() async throws {
            let logger = global.logger(defaultLevel: .warning)
            let status = try await global.withDatabase(logger: logger) { location in
                let url = role == .app ? location.app : location.owner
                var environment = ProcessInfo.processInfo.environment
                environment["PGPASSWORD"] = url.password
                environment["PGSSLMODE"] = url.sslMode.rawValue
                environment["PGSSLROOTCERT"] = url.tls.rootCertificate
                environment["PGSSLCERT"] = url.tls.clientCertificate
                environment["PGSSLKEY"] = url.tls.clientKey
                let arguments = ["--no-psqlrc", "-h", url.host, "-p", String(url.port), "-U", url.username, "-d", url.database]
                    + (command.map { ["-v", "ON_ERROR_STOP=1", "-c", $0] } ?? [])
                // psql handles Ctrl-C itself (it cancels the running query); this process must not die of it.
                signal(SIGINT, SIG_IGN)
                defer { signal(SIGINT, SIG_DFL) }
                do {
                    return try ProcessRunner().runInteractive("psql", arguments, environment: environment)
                } catch {
                    throw ConfigurationError("cannot start psql (install Debian's postgresql-client): \(error)")
                }
            }
            if status != 0 { throw ExitCode(status) }
        }
    }

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start the embedded cluster and leave it running (other commands then connect to it).")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let logger = global.logger(defaultLevel: .warning)
            let embedded = EmbeddedPostgres(dataDirectory: global.dataDirectoryURL, logger: logger)
            let started = try await CommandErrors.mapped { try await embedded.start(persistent: true) }
            let url = try CommandErrors.mappedSync { try embedded.urls().app }
            Console.line(started ? "started embedded PostgreSQL on port \(url.port)" : "embedded PostgreSQL is already running on port \(url.port)")
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop the embedded cluster.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let logger = global.logger(defaultLevel: .warning)
            let embedded = EmbeddedPostgres(dataDirectory: global.dataDirectoryURL, logger: logger)
            guard try CommandErrors.mappedSync({ try embedded.isRunning() }) else {
                Console.line("embedded PostgreSQL is not running")
                return
            }
            try CommandErrors.mappedSync { try embedded.stop() }
            Console.line("stopped embedded PostgreSQL")
        }
    }
}
