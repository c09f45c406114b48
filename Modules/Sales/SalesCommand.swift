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
            abstract: "Import a CSV or NDJSON file of contacts, companies, products or deals (--entity) into a tenant.",
            discussion: """
                Rows stream through COPY into a staging table and land with one set-based upsert by the natural key \
                (email, domain, sku, external_id); re-importing a file changes nothing. Rejected rows are listed with \
                their line numbers (all of them: GET /v1/tenants/T/sales/imports/ID/errors). A CSV needs a header row; \
                --mapping renames columns, e.g. '{"email":"E-mail Address"}'.
                """)
        @OptionGroup var options: ImportCommandOptions

        func run() async throws {
            try await options.run(SalesModule.imports, module: SalesModule())
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
                // The old importer ran each statement on its own (autocommit): the whole session is the tenant's.
                try await connection.scopeSession(toTenant: tenant.id, seesAllOwners: true, logger: logger)
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
