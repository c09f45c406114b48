import ArgumentParser
import AtriumCore
import Foundation
import Logging
import PostgresNIO

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Manage the keys that sign access tokens.", subcommands: [RotateSigning.self])

    struct RotateSigning: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-signing",
            abstract: "Add a new signing key; servers sign with it within a minute and older keys keep verifying for --overlap seconds.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Seconds the previous keys keep verifying (at least the access token lifetime).") var overlap: Int = 3600

        func run() async throws {
            guard overlap >= 900 else { throw ValidationFailure("--overlap must be at least 900 seconds, the access token lifetime") }
            let logger = global.logger(defaultLevel: .warning)
            let overlap = self.overlap
            let kid = try await global.withDatabase(logger: logger) { location in
                let masterKey = try MasterKey.load(environment: ProcessInfo.processInfo.environment, dataDirectory: location.embedded?.dataDirectory)
                return try await withPostgresClient(location.app, logger: logger) { client in
                    try await SigningKeyring(database: Database(client: client), masterKey: masterKey, logger: logger).rotate(overlap: .seconds(overlap))
                }
            }
            Console.line("added signing key \(kid)")
        }
    }
}
