import ArgumentParser
import AtriumCore
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// `atrium sales …`: the module's operator commands, mounted by `atrium` from the
/// module's `commands`.
struct SalesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sales", abstract: "The sales module's operator commands.", subcommands: [Import.self, RowInserts.self])

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import a CSV or NDJSON file of contacts, companies, products or deals into a tenant.",
            discussion: """
                Rows stream through COPY into a staging table and land with one set-based upsert by the natural key \
                (email, domain, sku, external_id); re-importing a file changes nothing. Rejected rows are listed with \
                their line numbers (all of them: GET /v1/tenants/T/sales/imports/ID/errors). A CSV needs a header row; \
                --mapping renames columns, e.g. '{"email":"E-mail Address"}'.
                """)
        @OptionGroup var global: GlobalOptions
        @Option(help: "The tenant.") var tenant: String
        @Option(help: "contacts, companies, products or deals.") var entity: String
        @Option(help: "The user who owns the imported rows (default: the tenant's first owner).") var owner: String?
        @Option(help: "csv or ndjson (default: from the file name, else csv).") var format: String?
        @Option(help: "upsert or insert.") var mode: String = "upsert"
        @Option(help: "skip_invalid or all_or_nothing.") var errorPolicy: String = "skip_invalid"
        @Option(help: "JSON object mapping fields to the file's column names.") var mapping: String?
        @Argument(help: "The file to import.") var file: String

        func run() async throws {
            let logger = global.logger(defaultLevel: .warning)
            var parsedMapping: [String: String] = [:]
            if let mapping {
                guard let decoded = try? JSONDecoder().decode([String: String].self, from: Data(mapping.utf8)) else {
                    throw ValidationFailure(#"--mapping must be a JSON object such as {"email":"E-mail"}"#)
                }
                parsedMapping = decoded
            }
            guard FileManager.default.isReadableFile(atPath: file) else { throw ValidationFailure("cannot read \(file)") }
            let registry = try CommandErrors.mappedSync { try ModuleRegistry([SalesModule()]) }
            let (slug, url, entity, owner, format, mode, policy, mapping) =
                (tenant, URL(fileURLWithPath: file), entity, owner, format, mode, errorPolicy, parsedMapping)
            let terminal = Console.isTerminal
            let lastShown = Mutex<Int64>(-1)
            let started = ContinuousClock.now
            let summary = try await CommandErrors.mapped {
                try await global.withDatabase(logger: logger) { location in
                    try await withPostgresClient(location.app, maximumConnections: 4, logger: logger) { client in
                        let database = Database(client: client, maximumConnections: 4)
                        let found = try await client.withConnection { connection in try await TenantStore(logger: logger).find(slug: slug, on: connection) }
                        guard let tenant = found else { throw ValidationFailure("no tenant named '\(slug)'") }
                        let job = SalesFileImport(
                            file: url, tenantID: tenant.id, ownerEmail: owner, entity: entity, format: format, mode: mode, errorPolicy: policy, mapping: mapping)
                        return try await job.run(database: database, metering: Metering(registry: registry, logger: logger), logger: logger) { progress in
                            let changed = lastShown.withLock { last in
                                defer { last = progress.rows }
                                return last != progress.rows
                            }
                            if changed { Self.show(progress, terminal: terminal) }
                        }
                    }
                }
            }
            if terminal { Console.line() }
            let seconds = Double((ContinuousClock.now - started).components.seconds) + Double((ContinuousClock.now - started).components.attoseconds) / 1e18
            Console.line("import \(summary.importID.uuidString.lowercased()) (rows owned by \(summary.owner))")
            Console.line("read \(summary.rowsRead), written \(summary.rowsWritten), unchanged \(summary.rowsUnchanged), rejected \(summary.rowsRejected)"
                + String(format: " in %.1f s", seconds))
            for error in summary.firstErrors { Console.line("  line \(error.line): \(error.reason)") }
            if summary.rowsRejected > Int64(summary.firstErrors.count) {
                Console.line("  … all rejected rows: GET /v1/tenants/\(slug)/sales/imports/\(summary.importID.uuidString.lowercased())/errors")
            }
            if let failure = summary.failure { throw ValidationFailure(failure) }
        }

        /// A bar redrawn in place on a terminal; a plain line per update otherwise.
        static func show(_ progress: SalesFileImport.Progress, terminal: Bool) {
            let fraction = progress.totalBytes > 0 ? min(1, Double(progress.bytesRead) / Double(progress.totalBytes)) : 0
            if terminal {
                let width = 30
                let filled = Int(fraction * Double(width))
                Console.raw("\r[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
                    + String(format: "%3.0f%%  %d rows", fraction * 100, progress.rows))
            } else {
                Console.line(String(format: "progress: %d rows, %.0f%% of the file", progress.rows, fraction * 100))
            }
        }
    }

    /// The importer the sales roadmap replaced: for each row, a query to see whether the
    /// contact exists, then an insert — two round trips per row, no batching.
    struct RowInserts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bench-row-inserts", abstract: "Rows/s of a per-row SELECT + INSERT import loop (for make bench).", shouldDisplay: false)
        @OptionGroup var global: GlobalOptions
        @Option(help: "Tenant to write into.") var tenant: String = "acme"
        @Option(help: "Rows to insert.") var rows: Int = 5000
        @Argument(help: "A contacts CSV (email,first_name,last_name,...; no quoted fields).") var file: String

        func run() async throws {
            let logger = global.logger(defaultLevel: .error)
            let (slug, count) = (tenant, rows)
            let text = try String(contentsOfFile: file, encoding: .utf8)
            let lines = Array(text.split(separator: "\n").dropFirst().prefix(count))
            let perSecond = try await global.withDatabase(logger: logger) { location in
              try await withPostgresConnection(location.owner, logger: logger) { connection in
                guard let tenant = try await TenantStore(logger: logger).find(slug: slug, on: connection) else { throw ValidationFailure("no tenant '\(slug)'") }
                try await connection.query(
                    """
                    SELECT set_config('app.tenant_id', \(tenant.id.uuidString.lowercased()), false), set_config('app.owner_scope', 'any', false)
                    """, logger: logger)
                let owner = try await connection.query("SELECT id FROM users ORDER BY created_at LIMIT 1", logger: logger).collect().first?.decode(UUID.self)
                guard let owner else { throw ValidationFailure("the tenant has no user") }
                let run = UUID().uuidString.prefix(8).lowercased()
                let start = ContinuousClock.now
                for line in lines {
                    let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) }
                    let email = "\(run)-\(fields.first ?? "")"
                    let exists = try await !connection.query("SELECT 1 FROM sales_contacts WHERE email = \(email)", logger: logger).collect().isEmpty
                    if !exists {
                        try await connection.query(
                            """
                            INSERT INTO sales_contacts (tenant_id, owner_id, email, first_name, last_name)
                            VALUES (\(tenant.id), \(owner), \(email), \(fields.count > 1 ? fields[1] : ""), \(fields.count > 2 ? fields[2] : ""))
                            """, logger: logger)
                    }
                }
                let elapsed = ContinuousClock.now - start
                try await connection.query("DELETE FROM sales_contacts WHERE email LIKE \(run + "-%")", logger: logger)
                return Double(lines.count) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
              }
            }
            Console.line(String(format: "%.0f", perSecond))
        }
    }
}
