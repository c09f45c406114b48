import ArgumentParser
import AtriumCore
import Foundation
import Logging
import PostgresNIO

struct TenantsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenants", abstract: "Create, inspect, suspend and delete tenants; apply tenant files.",
        subcommands: [Create.self, List.self, Show.self, Suspend.self, Resume.self, Delete.self, Apply.self, SetPlan.self, Cancel.self])

    /// The plan catalog at `path`, when the file exists.
    /// The plan catalog at `path`, or the one built into the binary where there is none
    /// (said on stderr): a missing file never means a tenant without limits.
    static func catalog(_ path: String, registry: ModuleRegistry) throws -> PlanCatalog? {
        let modules = Set(registry.modules.map(\.id))
        guard FileManager.default.fileExists(atPath: path) else {
            Console.note("no plan catalog at \(path); using \(PlanCatalog.builtInSource)")
            return try CommandErrors.mappedSync { try PlanCatalog.builtIn(knownModules: modules) }
        }
        return try CommandErrors.mappedSync { try PlanCatalog.load(URL(fileURLWithPath: path), knownModules: modules) }
    }

    struct SetPlan: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-plan",
            abstract: "Move a tenant to another plan now; modules the plan lacks are disabled (data kept).",
            discussion: "The flat fee is prorated: this month's invoice bills each plan for the time it was in force. A canceled subscription becomes active again.")
        @OptionGroup var global: GlobalOptions
        @Argument var slug: String
        @Argument var plan: String
        @Option(help: "Start a trial of this many days (no flat fee until it ends).") var trialDays: Int?
        @Option(help: "The plan catalog.") var plans: String = "tenants/plans.yaml"
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let logger = global.logger(defaultLevel: .warning)
            let registry = try ModulesCommand.registry()
            guard let catalog = try TenantsCommand.catalog(plans, registry: registry) else { throw ValidationFailure("no plan catalog at \(plans)") }
            let (slug, plan, trialDays) = (slug, plan, trialDays)
            if let trialDays, !(1...365).contains(trialDays) { throw ValidationFailure("--trial-days must be 1 to 365") }
            let outcome = try await withOwner(global, logger: logger) { connection, _ in
                try await catalog.publishQuotas(on: connection, logger: logger)
                return try await PlanChange(catalog: catalog, modules: registry.modules, logger: logger).change(
                    slug: slug, to: plan, trialDays: trialDays, actor: .init(type: .operator, id: Operator.name), on: connection)
            }
            if json {
                try Console.json(outcome)
            } else {
                Console.line("\(slug): \(outcome.from) -> \(outcome.to)"
                    + (outcome.disabledModules.isEmpty ? "" : "; disabled \(outcome.disabledModules.joined(separator: ", ")) (data kept)"))
            }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cancel a tenant's subscription now: the flat fee stops (prorated); data, users and modules stay.",
            discussion: "Suspend the tenant as well to stop its API; `set-plan` subscribes it again.")
        @OptionGroup var global: GlobalOptions
        @Argument var slug: String

        func run() async throws {
            let logger = global.logger(defaultLevel: .warning)
            let slug = slug
            try await withOwner(global, logger: logger) { connection, _ in
                guard let tenant = try await TenantStore(logger: logger).find(slug: slug, on: connection) else {
                    throw ValidationFailure("no tenant named '\(slug)'")
                }
                try await connection.withTenantTransaction(tenant.id, logger: logger) { connection in
                    try await Subscriptions(logger: logger).cancel(on: connection)
                    try await AuditLog(logger: logger).record(
                        "subscription.canceled", tenantID: tenant.id, actor: .init(type: .operator, id: Operator.name), on: connection)
                }
            }
            Console.line("\(slug): subscription canceled")
        }
    }

    /// Runs `body` on an owner connection of the command's database.
    static func withOwner<Result: Sendable>(
        _ global: GlobalOptions, logger: Logger, _ body: @escaping @Sendable (PostgresConnection, DatabaseLocation) async throws -> Result
    ) async throws -> Result {
        try await global.withDatabase(logger: logger) { location in
            try await withPostgresConnection(location.owner, logger: logger) { connection in try await body(connection, location) }
        }
    }

    static func applyFiles(
        in directory: String, location: DatabaseLocation, registry: ModuleRegistry, logger: Logger
    ) async throws -> (changes: [TenantApplier.Change], logins: [TenantApplier.CreatedLogin]) {
        let files = try TenantFile.load(directory: URL(fileURLWithPath: directory))
        let plans = try catalog(URL(fileURLWithPath: directory).appending(path: "plans.yaml").path(), registry: registry)
        return try await withPostgresConnection(location.owner, logger: logger) { connection in
            try await plans?.publishQuotas(on: connection, logger: logger)
            let hasher = PasswordHasher(parameters: try AtriumConfiguration.hashing(ProcessInfo.processInfo.environment))
            return try await TenantApplier(registry: registry, hasher: hasher, plans: plans, logger: logger).applyReportingLogins(files, on: connection)
        }
    }

    static func render(_ tenants: [Tenant], json: Bool) throws {
        if json {
            try Console.json(tenants)
        } else {
            Console.table(["slug", "name", "status", "plan", "id", "created"],
                          tenants.map { [$0.slug, $0.name, $0.status.rawValue, $0.plan, $0.id.uuidString.lowercased(), Console.timestamp($0.createdAt)] })
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a tenant.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "URL slug: lowercase letters, digits, hyphens.") var slug: String
        @Option(help: "Display name.") var name: String
        @Option(help: "Plan from the plan catalog.") var plan: String = "free"
        @Option(help: "The plan catalog.") var plans: String = "tenants/plans.yaml"
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let logger = global.logger(defaultLevel: .warning)
            let catalog = try TenantsCommand.catalog(plans, registry: try ModulesCommand.registry())
            if let catalog, catalog.plan(plan) == nil {
                throw ValidationFailure("no plan '\(plan)' in the plan catalog; its plans are \(catalog.plans.keys.sorted().joined(separator: ", "))")
            }
            let (slug, name, plan) = (slug, name, plan)
            let tenant = try await withOwner(global, logger: logger) { connection, _ in
                try await TenantStore(logger: logger).create(slug: slug, name: name, plan: plan, on: connection)
            }
            try render([tenant], json: json)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tenants.")
        @OptionGroup var global: GlobalOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let logger = global.logger(defaultLevel: .warning)
            let tenants = try await withOwner(global, logger: logger) { connection, _ in try await TenantStore(logger: logger).list(on: connection) }
            try render(tenants, json: json)
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one tenant with its enabled modules.")
        @OptionGroup var global: GlobalOptions
        @Argument var slug: String
        @Flag(help: "Print JSON.") var json = false

        struct Details: Encodable {
            var tenant: Tenant
            var modules: [String]
        }

        func run() async throws {
            let logger = global.logger(defaultLevel: .warning)
            let slug = slug
            let details = try await withOwner(global, logger: logger) { connection, _ -> Details in
                guard let tenant = try await TenantStore(logger: logger).find(slug: slug, on: connection) else {
                    throw ValidationFailure("no tenant named '\(slug)'")
                }
                let modules = try await connection.withTenantTransaction(tenant.id, logger: logger) { connection in
                    try await ModuleEnablement(logger: logger).enabledModules(on: connection)
                }
                return Details(tenant: tenant, modules: modules.sorted())
            }
            if json {
                try Console.json(details)
            } else {
                let tenant = details.tenant
                Console.table(["field", "value"], [
                    ["slug", tenant.slug], ["name", tenant.name], ["id", tenant.id.uuidString.lowercased()], ["status", tenant.status.rawValue],
                    ["plan", tenant.plan], ["modules", details.modules.isEmpty ? "-" : details.modules.joined(separator: ", ")],
                    ["created", Console.timestamp(tenant.createdAt)], ["updated", Console.timestamp(tenant.updatedAt)],
                ])
            }
        }
    }

    struct Suspend: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Suspend a tenant: its API calls answer 403 tenant_suspended.")
        @OptionGroup var global: GlobalOptions
        @Argument var slug: String
        @Flag(help: "Print JSON.") var json = false
        func run() async throws { try await setStatus(.suspended, slug: slug, global: global, json: json) }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Resume a suspended tenant.")
        @OptionGroup var global: GlobalOptions
        @Argument var slug: String
        @Flag(help: "Print JSON.") var json = false
        func run() async throws { try await setStatus(.active, slug: slug, global: global, json: json) }
    }

    static func setStatus(_ status: Tenant.Status, slug: String, global: GlobalOptions, json: Bool) async throws {
        let logger = global.logger(defaultLevel: .warning)
        let tenant = try await withOwner(global, logger: logger) { connection, _ in
            try await TenantStore(logger: logger).update(slug: slug, status: status, on: connection)
        }
        guard let tenant else { throw ValidationFailure("no tenant named '\(slug)'") }
        try render([tenant], json: json)
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a tenant and every row it owns. Cannot be undone.")
        @OptionGroup var global: GlobalOptions
        @Argument var slug: String
        @Flag(help: "Confirm the deletion.") var yes = false

        func run() async throws {
            guard yes else { throw ValidationFailure("deleting '\(slug)' removes all of its data; repeat with --yes to confirm") }
            let logger = global.logger(defaultLevel: .warning)
            let slug = slug
            let deleted = try await withOwner(global, logger: logger) { connection, _ in
                try await TenantStore(logger: logger).delete(slug: slug, on: connection)
            }
            guard deleted else { throw ValidationFailure("no tenant named '\(slug)'") }
            Console.line("deleted \(slug)")
        }
    }

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create or update tenants from tenant files (every *.yaml except plans.yaml); report what changed.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Folder of tenant files.") var directory: String = "tenants"
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let logger = global.logger(defaultLevel: .warning)
            let registry = try CommandErrors.mappedSync { try ModuleRegistry(installedModules) }
            let directory = directory
            let changes = try await global.withDatabase(logger: logger) { location in
                try await applyFiles(in: directory, location: location, registry: registry, logger: logger).changes
            }
            if json {
                try Console.json(changes)
            } else if changes.isEmpty {
                Console.line("No changes.")
            } else {
                for change in changes { Console.line(change.description) }
            }
        }
    }
}
