import ArgumentParser
import AtriumCore
import Foundation
import Logging
import PostgresNIO

/// `atrium portfolio import-legacy`: PortfoliAI's JSON stores into a tenant.
struct ImportLegacyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-legacy", abstract: "Import PortfoliAI's users_db.json (and conversations.json) into a tenant.",
        discussion: """
            Users arrive verified with the role investor; a bcrypt or salted SHA-256 password hash is kept (upgraded to \
            Argon2id at first login), any other is dropped and the user resets by email. Each user's profile, portfolio \
            (its positions' dated entries as buys, withdrawals, manual prices) and conversations are imported; numbers \
            keep the digits the file wrote. All or nothing unless --skip-invalid; a second run creates nothing; the \
            report counts created, unchanged, updated and rejected rows per entity, each rejection with its JSON Pointer. \
            Exits 1 when a file is not JSON (naming line and column) or, without --skip-invalid, when anything was rejected.
            """)

    @OptionGroup var global: GlobalOptions
    @Option(help: "The tenant (this machine's database).") var tenant: String
    @Flag(help: "Report what the import would do, and write nothing.") var dryRun = false
    @Flag(help: "Import the valid records and report the rest, instead of nothing at all.") var skipInvalid = false
    @Flag(help: "Print the report as JSON.") var json = false
    @Argument(help: "users_db.json") var users: String
    @Argument(help: "conversations.json (optional)") var conversations: String?

    struct RolledBack: Error {
        let report: LegacyReport
    }

    func run() async throws {
        let paths = [users] + (conversations.map { [$0] } ?? [])
        let documents = try paths.map { path -> LegacyJSON in
            guard let data = FileManager.default.contents(atPath: path) else { throw ValidationFailure("cannot read \(path)") }
            do {
                return try LegacyJSON.parse(data)
            } catch {
                throw ValidationFailure("\(path): \(error); nothing was imported")
            }
        }
        let logger = global.logger(defaultLevel: .warning)
        let (slug, dryRun, skipInvalid) = (tenant, dryRun, skipInvalid)
        let today = TradeDate.today(Date())
        let report: LegacyReport = try await global.withDatabase(logger: logger) { location in
            try await withPostgresConnection(location.app, logger: logger) { connection in
                guard let found = try await TenantStore(logger: logger).find(slug: slug, on: connection) else { throw ValidationFailure("no tenant named '\(slug)'") }
                do {
                    return try await connection.withTenantTransaction(found.id, logger: logger) { connection in
                        try await connection.scopeToAllOwners(logger: logger)
                        var importer = LegacyImporter(tenantID: found.id, today: today, dryRun: dryRun, connection: connection, logger: logger)
                        try await importer.importUsers(documents[0])
                        if documents.count > 1 { try await importer.importConversations(documents[1]) }
                        if dryRun || (!skipInvalid && !importer.report.rejections.isEmpty) { throw RolledBack(report: importer.report) }
                        importer.report.committed = true
                        return importer.report
                    }
                } catch let rolledBack as RolledBack {
                    return rolledBack.report
                }
            }
        }
        if json { try Console.json(report) } else { for line in report.lines { Console.line(line) } }
        // Rejections without --skip-invalid mean nothing was imported.
        if !report.rejections.isEmpty && !skipInvalid { throw ExitCode(1) }
    }
}
