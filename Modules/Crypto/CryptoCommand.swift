import ArgumentParser
import AtriumCore
import Foundation
import Logging
import PostgresNIO

/// `atrium crypto …`: the module's operator commands, mounted by `atrium` from the
/// module's `commands`.
struct CryptoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crypto", abstract: "The crypto module's operator commands.", subcommands: [Connections.self, RotateKeys.self, CryptoBenchCommand.self])

    struct RotateKeys: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-keys",
            abstract: "Rotate tenants' data keys: a new version, every exchange secret re-sealed under it, the old one destroyed.",
            discussion: """
                Secrets are re-sealed in batches of 500 connections, a transaction each, while syncs and new connections go \
                on. A run that finds a rotation unfinished (killed, or a secret that would not open) finishes it rather than \
                start another. --rewrap-only leaves the secrets alone and re-wraps the data keys under the current master \
                key. A secret that does not open is named by its connection, and the exit status is 1. Audited per tenant.
                """)
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only this tenant (default: every tenant).") var tenant: String?
        @Flag(help: "Only re-wrap the data keys under the current master key.") var rewrapOnly = false
        @Flag(help: "Say what would change; change nothing.") var dryRun = false
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let logger = global.logger(defaultLevel: .warning)
            let (rewrapOnly, dryRun) = (self.rewrapOnly, self.dryRun)
            let slugs: [String]
            if let tenant {
                slugs = [tenant]
            } else {
                slugs = try await global.withDatabase(logger: logger) { location in
                    try await withPostgresConnection(location.app, logger: logger) { connection in
                        try await connection.query("SELECT slug FROM tenants ORDER BY slug", logger: logger).collect().map { try $0.decode(String.self) }
                    }
                }
            }
            var reports: [KeyRotation.Report] = []
            for slug in slugs {
                reports.append(try await global.withJobContext(of: CryptoModule(), tenant: slug, logger: logger) { context in
                    try await KeyRotation.run(tenant: slug, rewrapOnly: rewrapOnly, dryRun: dryRun, context: context)
                })
            }
            if json {
                try Console.json(reports)
            } else {
                Console.table(
                    ["TENANT", "REWRAPPED", "VERSION", "RESEALED", "DELETED", "FAILED"],
                    reports.map { report in
                        [report.tenant, String(report.rewrapped), report.activeVersion.map { "\($0)\(report.addedVersion ? " (new)" : "")" } ?? "-",
                         String(report.resealed), report.deletedVersions.map(String.init).joined(separator: ","),
                         report.failed.map { $0.uuidString.lowercased() }.joined(separator: " ")]
                    })
                if dryRun { Console.note("dry run: nothing was changed") }
            }
            let failed = reports.flatMap(\.failed)
            if !failed.isEmpty {
                Console.error("secrets of \(failed.count) connection(s) did not open: \(failed.map { $0.uuidString.lowercased() }.joined(separator: ", "))")
                throw ExitCode(1)
            }
        }
    }

    struct Connections: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A tenant's exchange connections.", subcommands: [List.self, Sync.self, Snapshot.self])

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "List a tenant's exchange connections (every owner's; never a key or secret).")
            @OptionGroup var global: GlobalOptions
            @Option(help: "The tenant (this machine's database).") var tenant: String
            @Flag(help: "Print JSON.") var json = false

            func run() async throws {
                let logger = global.logger(defaultLevel: .warning)
                let slug = tenant
                let connections = try await CryptoCLI.inTenant(slug, global: global, logger: logger) { _, connection in
                    try await connection.query("SELECT \(unescaped: Connection.columns) FROM crypto_connections ORDER BY created_at, id", logger: logger)
                        .collect().map(Connection.init)
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

        struct Sync: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Sync a connection: queued for the server's workers, or with --wait run here and reported.",
                discussion: """
                    Not bound by the plan's interval. With --wait the sync runs in this process as a worker would run it \
                    (the same master key and settings: ATRIUM_MASTER_KEY, ATRIUM_CRYPTO_BINANCE_URL), waits out any \
                    Retry-After the exchange gives, and prints the run's pages, trades and request weight; the exit status \
                    is 1 unless the run succeeded. --full reads every market, not only those whose balances moved.
                    """)
            @OptionGroup var global: GlobalOptions
            @Option(help: "The tenant (this machine's database).") var tenant: String
            @Option(help: "The connection's id.") var connection: String
            @Flag(help: "Read every market's trades.") var full = false
            @Flag(help: "Run the sync here and report it, instead of queueing it.") var wait = false

            func run() async throws {
                guard let id = UUID(uuidString: connection) else { throw ValidationFailure("--connection must be a connection's id (a UUID)") }
                let logger = global.logger(defaultLevel: .warning)
                let (slug, full) = (tenant, self.full)
                let request = CryptoSync.Request(connection: id, full: full)
                let state = try await CryptoCLI.connectionState(id, tenant: slug, global: global, logger: logger)
                guard wait else {
                    let queued = try await CryptoCLI.inTenant(slug, global: global, logger: logger) { tenantID, connection in
                        try await JobQueue(logger: logger).enqueue(
                            kind: CryptoSync.kind.name, tenantID: tenantID, moduleID: "crypto", payload: try JSONEncoder().encode(request),
                            uniqueKey: CryptoSync.uniqueKey(id), on: connection)
                    }
                    Console.line(queued != nil ? "queued a sync of \(id.uuidString.lowercased())" : "a sync of \(id.uuidString.lowercased()) is already queued or running")
                    return
                }
                guard state == "active" else {
                    throw ValidationFailure("connection \(id.uuidString.lowercased()) does not sync: it is \(state) (see `atrium crypto connections list`)")
                }
                let started = Date()
                for attempt in 1...20 {
                    do {
                        try await global.runJobNow(CryptoSync.kind, of: CryptoModule(), tenant: slug, payload: request, logger: logger)
                        break
                    } catch let later as JobRetryLater {
                        guard attempt < 20, later.delay <= .seconds(120) else { throw ValidationFailure("the exchange asked to wait \(later.delay): \(later.reason)") }
                        Console.note("\(later.reason); waiting \(later.delay)")
                        try await Task.sleep(for: later.delay)
                    }
                }
                let runs = try await CryptoCLI.inTenant(slug, global: global, logger: logger) { _, connection in
                    try await connection.query(
                        """
                        SELECT outcome, pages, trades_new, trades_seen, weight, coalesce(error, '') FROM crypto_sync_runs
                        WHERE connection_id = \(id) AND started_at >= \(started) ORDER BY started_at
                        """, logger: logger
                    ).collect().map { try $0.decode((String, Int, Int, Int, Int, String).self) }
                }
                guard let last = runs.last else { throw ValidationFailure("the connection did not sync (it may have been removed or paused)") }
                let pages = runs.map(\.1).reduce(0, +), new = runs.map(\.2).reduce(0, +), seen = runs.map(\.3).reduce(0, +)
                let weight = runs.map(\.4).reduce(0, +)
                Console.line("\(last.0): \(pages) pages, \(new) new trades of \(seen) read, request weight \(weight)\(last.5.isEmpty ? "" : " (\(last.5))")")
                if last.0 != "succeeded" { throw ExitCode(1) }
            }
        }

        struct Snapshot: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Take the tenant's due holdings snapshots now (one per user and plan interval), valued at the exchange's prices.")
            @OptionGroup var global: GlobalOptions
            @Option(help: "The tenant (this machine's database).") var tenant: String

            func run() async throws {
                let logger = global.logger(defaultLevel: .warning)
                let slug = tenant
                let started = Date()
                try await global.runJobNow(Snapshots.kind, of: CryptoModule(), tenant: slug, payload: .init(), logger: logger)
                let taken = try await CryptoCLI.inTenant(slug, global: global, logger: logger) { _, connection in
                    try await connection.query("SELECT count(*)::int FROM crypto_snapshots WHERE taken_at >= \(started)", logger: logger)
                        .collect().first?.decode(Int.self) ?? 0
                }
                Console.line("took \(taken) snapshot\(taken == 1 ? "" : "s")")
            }
        }
    }
}

/// What the module's commands share: the tenant's transaction, seeing every owner.
enum CryptoCLI {
    static func inTenant<Result: Sendable>(
        _ slug: String, global: GlobalOptions, logger: Logger, _ body: @escaping @Sendable (UUID, PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await global.withDatabase(logger: logger) { location in
            try await withPostgresConnection(location.app, logger: logger) { connection in
                guard let found = try await TenantStore(logger: logger).find(slug: slug, on: connection) else {
                    throw ValidationFailure("no tenant named '\(slug)'")
                }
                return try await connection.withTenantTransaction(found.id, logger: logger) { connection in
                    try await connection.scopeToAllOwners(logger: logger)
                    return try await body(found.id, connection)
                }
            }
        }
    }

    /// The state of connection `id`, or a failure naming it when the tenant has none.
    static func connectionState(_ id: UUID, tenant slug: String, global: GlobalOptions, logger: Logger) async throws -> String {
        let state = try await inTenant(slug, global: global, logger: logger) { _, connection in
            try await connection.query("SELECT state FROM crypto_connections WHERE id = \(id)", logger: logger).collect().first?.decode(String.self)
        }
        guard let state else { throw ValidationFailure("tenant '\(slug)' has no connection \(id.uuidString.lowercased())") }
        return state
    }
}
