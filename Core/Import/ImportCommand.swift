public import ArgumentParser
public import Foundation
import Logging
import PostgresNIO
import Synchronization

/// The options and the body of a module's `import` command (`atrium <module> import`):
/// the file is read in this process with a progress bar (redrawn in place on a
/// terminal, a line per update otherwise), then the counts and the first rejected rows
/// are printed. A module's command holds `@OptionGroup var options: ImportCommandOptions`
/// and runs `options.run(imports, module:)`.
public struct ImportCommandOptions: ParsableArguments {
    @OptionGroup public var global: GlobalOptions
    @OptionGroup public var remote: RemoteModeOptions
    @Option(help: "The tenant (this machine's database; a login's own tenant otherwise).") public var tenant: String?
    @Option(help: "The entity the file holds (needed when the import has more than one).") public var entity: String?
    @Option(help: "The user who owns the imported rows (default: the tenant's first owner).") public var owner: String?
    @Option(help: "csv or ndjson (default: from the file name, else csv).") public var format: String?
    @Option(help: "upsert or insert.") public var mode: String = "upsert"
    @Option(help: "skip_invalid or all_or_nothing.") public var errorPolicy: String = "skip_invalid"
    @Option(help: "JSON object mapping fields to the file's column names.") public var mapping: String?
    @Argument(help: "The file to import.") public var file: String

    public init() {}

    /// Imports the file through `imports`, declared by `module`, into `parent` when the
    /// import lands in one record (`ImportParent`: the command's own option names it).
    public func run(_ imports: BulkImport, module: any AtriumModule, parent: UUID? = nil) async throws {
        if imports.parent != nil, parent == nil { throw ValidationFailure("this import lands in one record: name it") }
        guard let entity = entity ?? (imports.entities.count == 1 ? imports.entities.first?.name : nil) else {
            throw ValidationFailure("--entity is required: one of \(imports.entityNames)")
        }
        var parsedMapping: [String: String] = [:]
        if let mapping {
            guard let decoded = try? JSONDecoder().decode([String: String].self, from: Data(mapping.utf8)) else {
                throw ValidationFailure(#"--mapping must be a JSON object such as {"email":"E-mail"}"#)
            }
            parsedMapping = decoded
        }
        guard FileManager.default.isReadableFile(atPath: file) else { throw ValidationFailure("cannot read \(file)") }
        if var client = try remote.client(global) {
            try RemoteModeOptions.check(tenant, against: client)
            return try await runRemotely(&client, entity: entity, moduleID: imports.moduleID, path: imports.mountedPath(parent: parent))
        }
        let tenant = try RemoteModeOptions.localTenant(tenant)
        let logger = global.logger(defaultLevel: .warning)
        let registry = try CommandErrors.mappedSync { try ModuleRegistry([module]) }
        let (slug, url, owner, format, mode, policy, mapping) = (tenant, URL(fileURLWithPath: file), owner, format, mode, errorPolicy, parsedMapping)
        let terminal = Console.isTerminal
        let lastShown = Mutex<Int64>(-1)
        let started = ContinuousClock.now
        let summary = try await CommandErrors.mapped {
            try await global.withDatabase(logger: logger) { location in
                try await withPostgresClient(location.app, maximumConnections: 4, logger: logger) { client in
                    let database = Database(client: client, maximumConnections: 4)
                    let found = try await client.withConnection { connection in try await TenantStore(logger: logger).find(slug: slug, on: connection) }
                    guard let tenant = found else { throw ValidationFailure("no tenant named '\(slug)'") }
                    let job = FileImport(
                        imports, file: url, tenantID: tenant.id, ownerEmail: owner, entity: entity, format: format, mode: mode, errorPolicy: policy,
                        mapping: mapping, parentID: parent)
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
        Self.report(summary, started: started, errorsPath: "/v1/tenants/\(slug)/\(imports.moduleID)/\(imports.mountedPath(parent: parent))/\(summary.importID.lowercasedString)/errors")
        if let failure = summary.failure { throw ValidationFailure(failure) }
    }

    /// The counts, the first rejected rows and where the rest are: the same lines whichever
    /// side ran the import.
    static func report(_ summary: FileImport.Summary, started: ContinuousClock.Instant, errorsPath: String) {
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        Console.line("import \(summary.importID.lowercasedString) (rows owned by \(summary.owner))")
        Console.line("read \(summary.rowsRead), written \(summary.rowsWritten), unchanged \(summary.rowsUnchanged), rejected \(summary.rowsRejected)"
            + String(format: " in %.1f s", seconds))
        for error in summary.firstErrors { Console.line("  line \(error.line): \(error.reason)") }
        if summary.rowsRejected > Int64(summary.firstErrors.count) { Console.line("  … all rejected rows: GET \(errorsPath)") }
    }

    static func show(_ progress: FileImport.Progress, terminal: Bool) {
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
