import ArgumentParser
import AtriumCore
import HTTPTypes
import Logging
import PostgresNIO

struct ModulesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "modules", abstract: "List installed modules; enable or disable one for a tenant.",
        subcommands: [List.self, Enable.self, Disable.self])

    static func registry() throws -> ModuleRegistry {
        try CommandErrors.mappedSync { try ModuleRegistry(installedModules) }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List installed modules (and, with --tenant, whether each is enabled).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var mode: RemoteModeOptions
        @Option(help: "Tenant slug.") var tenant: String?
        @Flag(help: "Print JSON.") var json = false

        /// A module as the server lists it for the logged-in tenant.
        struct Remote: Codable {
            var id: String
            var version: String
            var enabled: Bool
            var inPlan: Bool
        }

        struct Row: Encodable {
            var id: String
            var version: String
            var dependencies: [String]
            var enabled: Bool?
        }

        func run() async throws {
            if var client = try mode.client(global) {
                try RemoteModeOptions.check(tenant, against: client)
                let modules = try await client.json(.get, "modules", as: Page<Remote>.self).data
                if json { return try Console.json(modules) }
                return Console.table(["id", "version", "enabled", "in plan"], modules.map {
                    [$0.id, $0.version, $0.enabled ? "yes" : "no", $0.inPlan ? "yes" : "no (upgrade the plan)"]
                })
            }
            let logger = global.logger(defaultLevel: .warning)
            let registry = try ModulesCommand.registry()
            var enabled: Set<String>?
            if let slug = tenant {
                enabled = try await TenantsCommand.withOwner(global, logger: logger) { connection, _ in
                    let tenant = try await ModulesCommand.tenant(slug, on: connection, logger: logger)
                    return try await connection.withTenantTransaction(tenant.id, logger: logger) {
                        try await ModuleEnablement(logger: logger).enabledModules(on: $0)
                    }
                }
            }
            let rows = registry.modules.map { Row(id: $0.id, version: $0.version, dependencies: $0.dependencies, enabled: enabled.map { [id = $0.id] in $0.contains(id) }) }
            if json {
                try Console.json(rows)
            } else {
                Console.table(["id", "version", "depends on"] + (enabled == nil ? [] : ["enabled"]), rows.map { row in
                    [row.id, row.version, row.dependencies.isEmpty ? "-" : row.dependencies.joined(separator: ", ")]
                        + (row.enabled.map { [$0 ? "yes" : "no"] } ?? [])
                })
            }
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a module for a tenant (the tenant's plan must include it).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var mode: RemoteModeOptions
        @Argument var module: String
        @Option(help: "Tenant slug (this machine's database; a login's own tenant otherwise).") var tenant: String?
        @Option(help: "The plan catalog, when it exists.") var plans: String = "tenants/plans.yaml"

        func run() async throws {
            if var client = try mode.client(global) {
                return try await ModulesCommand.remoteChange(module: module, tenant: tenant, enable: true, &client)
            }
            let tenant = try RemoteModeOptions.localTenant(tenant)
            try await ModulesCommand.change(
                module: module, tenant: tenant, enable: true, catalog: try TenantsCommand.catalog(plans, registry: try ModulesCommand.registry()),
                global: global)
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a module for a tenant (its data is kept).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var mode: RemoteModeOptions
        @Argument var module: String
        @Option(help: "Tenant slug (this machine's database; a login's own tenant otherwise).") var tenant: String?

        func run() async throws {
            if var client = try mode.client(global) {
                return try await ModulesCommand.remoteChange(module: module, tenant: tenant, enable: false, &client)
            }
            try await ModulesCommand.change(module: module, tenant: try RemoteModeOptions.localTenant(tenant), enable: false, catalog: nil, global: global)
        }
    }

    /// Enables or disables `module` through the API, as the logged-in admin: the server
    /// applies the plan (403 `plan_upgrade_required`) and the dependencies.
    static func remoteChange(module: String, tenant: String?, enable: Bool, _ client: inout RemoteClient) async throws {
        try RemoteModeOptions.check(tenant, against: client)
        _ = try await client.send(enable ? .put : .delete, "modules/\(RemoteAdmin.segment(module))")
        Console.line("\(module) \(enable ? "enabled" : "disabled") for \(client.context.tenant)")
    }

    static func change(module: String, tenant slug: String, enable: Bool, catalog: PlanCatalog?, global: GlobalOptions) async throws {
        let logger = global.logger(defaultLevel: .warning)
        let registry = try registry()
        guard let installed = registry.module(module) else { throw ValidationFailure("module '\(module)' is not installed") }
        let dependencies = installed.dependencies
        let changed = try await TenantsCommand.withOwner(global, logger: logger) { connection, _ in
            let tenant = try await ModulesCommand.tenant(slug, on: connection, logger: logger)
            if enable, let catalog, !catalog.allows(module, on: tenant.plan) {
                throw ValidationFailure("the '\(tenant.plan)' plan of \(slug) does not include '\(module)'; change the plan first (tenants set-plan)")
            }
            return try await connection.withTenantTransaction(tenant.id, logger: logger) { connection in
                let enablement = ModuleEnablement(logger: logger)
                if enable {
                    let current = try await enablement.enabledModules(on: connection)
                    if let missing = dependencies.first(where: { !current.contains($0) }) {
                        throw ValidationFailure("module '\(module)' needs '\(missing)' enabled first")
                    }
                    return try await enablement.enable(module, tenantID: tenant.id, on: connection)
                }
                return try await enablement.disable(module, on: connection)
            }
        }
        Console.line("\(module) \(enable ? "enabled" : "disabled") for \(slug)\(changed ? "" : " (no change)")")
    }

    static func tenant(_ slug: String, on connection: PostgresConnection, logger: Logger) async throws -> Tenant {
        guard let tenant = try await TenantStore(logger: logger).find(slug: slug, on: connection) else {
            throw ValidationFailure("no tenant named '\(slug)'")
        }
        return tenant
    }
}
