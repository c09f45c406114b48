import ArgumentParser
import AtriumCore
import Foundation
import Logging
import PostgresNIO

/// `atrium crypto …`: the module's operator commands, mounted by `atrium` from the
/// module's `commands`.
struct CryptoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crypto", abstract: "The crypto module's operator commands.", subcommands: [Connections.self])

    struct Connections: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A tenant's exchange connections.", subcommands: [List.self])

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "List a tenant's exchange connections (every owner's; never a key or secret).")
            @OptionGroup var global: GlobalOptions
            @Option(help: "The tenant (this machine's database).") var tenant: String
            @Flag(help: "Print JSON.") var json = false

            func run() async throws {
                let logger = global.logger(defaultLevel: .warning)
                let slug = tenant
                let connections = try await global.withDatabase(logger: logger) { location in
                    try await withPostgresConnection(location.app, logger: logger) { connection in
                        guard let found = try await TenantStore(logger: logger).find(slug: slug, on: connection) else {
                            throw ValidationFailure("no tenant named '\(slug)'")
                        }
                        return try await connection.withTenantTransaction(found.id, logger: logger) { connection in
                            try await connection.scopeToAllOwners(logger: logger)
                            return try await connection.query(
                                "SELECT \(unescaped: Connection.columns) FROM crypto_connections ORDER BY created_at, id", logger: logger
                            ).collect().map(Connection.init)
                        }
                    }
                }
                if json {
                    Console.line(String(decoding: try AtriumJSON.encoder.encode(connections), as: UTF8.self))
                    return
                }
                Console.table(
                    ["ID", "OWNER", "EXCHANGE", "LABEL", "STATE", "KEY", "LAST ERROR"],
                    connections.map {
                        [$0.id.uuidString.lowercased(), $0.ownerId.uuidString.lowercased(), $0.exchange, $0.label, $0.state, "…" + $0.keyLast4, $0.lastError ?? ""]
                    })
            }
        }
    }
}
