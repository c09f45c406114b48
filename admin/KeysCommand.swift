import ArgumentParser
import AtriumCore
import Foundation
import Logging
import PostgresNIO

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Rotate the keys that sign access tokens and the master key.", subcommands: [RotateSigning.self, RotateMaster.self])

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
                let masterKey = try await MasterKey.load(environment: ProcessInfo.processInfo.environment, location: location, logger: logger)
                return try await withPostgresClient(location.app, logger: logger) { client in
                    try await SigningKeyring(database: Database(client: client), masterKey: masterKey, logger: logger).rotate(overlap: .seconds(overlap))
                }
            }
            Console.line("added signing key \(kid)")
        }
    }

    struct RotateMaster: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-master",
            abstract: "Re-seal every secret under the current master key.",
            discussion: """
                First set the new key as ATRIUM_MASTER_KEY and the old one as ATRIUM_MASTER_KEY_PREVIOUS (servers \
                restarted so can open both), then run this: it re-seals the kernel's secrets (signing keys, TOTP, OIDC \
                and webhook secrets) and every module's, tenant by tenant. A value already under the new key is left \
                alone, so an interrupted run is finished by running it again, and a second run changes nothing. API keys, \
                refresh tokens and signed links keep working: their hashing key is stored sealed and re-sealed too. \
                Afterwards ATRIUM_MASTER_KEY_PREVIOUS can be removed.
                """)
        @OptionGroup var global: GlobalOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let logger = global.logger(defaultLevel: .warning)
            let registry = try ModulesCommand.registry()
            let report = try await global.withDatabase(logger: logger) { location in
                let masterKey = try CommandErrors.mappedSync {
                    try MasterKey.load(environment: ProcessInfo.processInfo.environment, dataDirectory: location.embedded?.dataDirectory)
                }
                return try await withPostgresConnection(location.owner, logger: logger) { connection in
                    try await MasterKeyRotation(masterKey: masterKey, registry: registry, logger: logger).run(on: connection)
                }
            }
            if json {
                try Console.json(report)
                return
            }
            Console.line("hashing root: \(report.hashingRoot)")
            Console.table(
                ["secrets", "re-sealed"],
                [["signing keys", "\(report.signingKeys)"], ["totp", "\(report.totpSecrets)"], ["oidc", "\(report.oidcSecrets)"],
                 ["webhooks", "\(report.webhookSecrets)"]] + report.moduleSecrets.sorted { $0.key < $1.key }.map { ["module \($0.key)", "\($0.value)"] })
            Console.line(report.resealed == 0 && report.hashingRoot == "unchanged" ? "nothing to do: every secret is under the current key" : "done")
        }
    }
}
