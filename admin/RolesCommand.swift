import ArgumentParser
import AtriumCore
import Foundation
import Logging
import PostgresNIO

struct RolesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "roles", abstract: "List a tenant's roles; grant or revoke a user's role (the last owner is kept).",
        subcommands: [List.self, Grant.self, Revoke.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the tenant's roles and their permissions.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Tenant slug.") var tenant: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let logger = global.logger(defaultLevel: .warning)
            let store = RoleStore(catalog: PermissionCatalog(registry: try ModulesCommand.registry()), logger: logger)
            let roles = try await UsersCommand.inTenant(tenant, global: global, logger: logger) { connection, _ in try await store.list(on: connection) }
            if json {
                try Console.json(roles)
            } else {
                Console.table(["role", "kind", "permissions"], roles.map { [$0.name, $0.kind, $0.permissions.joined(separator: " ")] })
            }
        }
    }

    struct Grant: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Grant a role to a user.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Tenant slug.") var tenant: String
        @Option(help: "Email of the user.") var email: String
        @Option(help: "Role name.") var role: String
        func run() async throws { try await RolesCommand.change(grant: true, tenant: tenant, email: email, role: role, global: global) }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take a role from a user.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Tenant slug.") var tenant: String
        @Option(help: "Email of the user.") var email: String
        @Option(help: "Role name.") var role: String
        func run() async throws { try await RolesCommand.change(grant: false, tenant: tenant, email: email, role: role, global: global) }
    }

    static func change(grant: Bool, tenant slug: String, email: String, role: String, global: GlobalOptions) async throws {
        let logger = global.logger(defaultLevel: .warning)
        let store = RoleStore(catalog: PermissionCatalog(registry: try ModulesCommand.registry()), logger: logger)
        let changed = try await CommandErrors.mapped {
            try await UsersCommand.inTenant(slug, global: global, logger: logger) { connection, tenant -> Bool in
                guard let user = try await UserStore(logger: logger).find(email: email, on: connection) else {
                    throw ValidationFailure("no user \(email) in \(slug)")
                }
                // Operators act with the platform's authority, so no grantor limits apply.
                let changed = grant
                    ? try await store.grant(role, to: user.id, tenantID: tenant.id, grantor: nil, on: connection)
                    : try await store.revoke(role, from: user.id, grantor: nil, on: connection)
                if changed {
                    try await AuditLog(logger: logger).record(
                        grant ? "role.granted" : "role.revoked", tenantID: tenant.id, actor: .init(type: .operator, id: Operator.name),
                        subject: user.id.uuidString.lowercased(), details: ["role": .string(role)], on: connection)
                }
                return changed
            }
        }
        Console.line("\(email) \(grant ? "granted" : "revoked") \(role)\(changed ? "" : " (no change)")")
    }
}
