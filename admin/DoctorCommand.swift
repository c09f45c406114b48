import ArgumentParser
import AtriumCore
import Foundation
import Logging
import PostgresNIO

struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check the installation: database reachable, roles safe, migrations current, tenancy rules kept.",
        discussion: "Exits non-zero when any check fails, naming what to fix.")

    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print JSON.") var json = false

    struct Check: Encodable {
        var name: String
        var ok: Bool
        var detail: String
    }

    func run() async throws {
        let logger = global.logger(defaultLevel: .warning)
        let registry = try CommandErrors.mappedSync { try ModuleRegistry(installedModules) }
        let migrator = Migrator(migrations: try registry.allMigrations(), logger: logger)
        let checks = try await global.withDatabase(logger: logger) { location -> [Check] in
            var checks: [Check] = [Check(name: "modules", ok: true, detail: "\(registry.modules.count) installed, registry valid")]
            checks.append(Check(
                name: "database", ok: true,
                detail: location.embedded == nil ? "external \(location.app.redactedDescription)" : "embedded at \(location.embedded?.dataDirectory.path() ?? "")"))
            let ownerChecks = try await withPostgresConnection(location.owner, logger: logger) { connection -> [Check] in
                var checks: [Check] = []
                let status = try await migrator.status(connection)
                let pending = status.filter { $0.state == "pending" }.map(\.file)
                let changed = status.filter { $0.state == "changed" }.map(\.file)
                checks.append(Check(
                    name: "migrations", ok: pending.isEmpty && changed.isEmpty,
                    detail: changed.isEmpty
                        ? (pending.isEmpty ? "\(status.count) applied" : "pending: \(pending.joined(separator: ", ")) (run atrium migrate)")
                        : "changed after being applied: \(changed.joined(separator: ", "))"))
                // A schema whose migrations are not all applied is not the schema this binary
                // runs on: checking it would say "ok" about tables that are yet to change.
                guard pending.isEmpty && changed.isEmpty else {
                    checks.append(Check(name: "tenancy schema", ok: false, detail: "not verified until the migrations are current"))
                    return checks
                }
                let violations = try await SchemaVerifier(logger: logger).verify(connection)
                checks.append(Check(
                    name: "tenancy schema", ok: violations.isEmpty,
                    detail: violations.isEmpty ? "every tenant table keeps the rules" : violations.map(\.description).joined(separator: "; ")))
                return checks
            }
            checks += ownerChecks
            let appRole = try await withPostgresConnection(location.app, logger: logger) { connection -> Check in
                let row = try await connection.query(
                    """
                    SELECT r.rolsuper, r.rolbypassrls,
                           (SELECT count(*)::int FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                            WHERE c.relowner = r.oid AND n.nspname NOT IN ('pg_catalog', 'information_schema'))
                    FROM pg_roles r WHERE r.rolname = current_user
                    """, logger: logger
                ).collect().first
                guard let (superuser, bypass, owned) = try row?.decode((Bool, Bool, Int).self) else {
                    return Check(name: "application role", ok: false, detail: "cannot read its attributes")
                }
                var problems: [String] = []
                if superuser { problems.append("is a superuser") }
                if bypass { problems.append("has BYPASSRLS") }
                if owned > 0 { problems.append("owns \(owned) relations") }
                return Check(name: "application role", ok: problems.isEmpty,
                             detail: problems.isEmpty ? "owns nothing, subject to row-level security" : problems.joined(separator: ", "))
            }
            checks.append(appRole)
            return checks
        }
        if json {
            try Console.json(checks)
        } else {
            for check in checks { Console.line("\(check.ok ? "ok  " : "FAIL") \(check.name): \(check.detail)") }
        }
        if checks.contains(where: { !$0.ok }) { throw ExitCode(1) }
    }
}
