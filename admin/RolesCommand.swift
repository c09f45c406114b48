import ArgumentParser
import AtriumCore
import Foundation
import HTTPTypes
import Logging
import PostgresNIO

struct RolesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "roles", abstract: "List a tenant's roles; grant or revoke a user's role (the last owner is kept).",
        subcommands: [List.self, Create.self, Grant.self, Revoke.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the tenant's roles and their permissions.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var mode: RemoteModeOptions
        @Option(help: "Tenant slug (this machine's database; a login's own tenant otherwise).") var tenant: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let roles: [RoleStore.Role]
            if var client = try mode.client(global) {
                try RemoteModeOptions.check(tenant, against: client)
                roles = try await client.json(.get, "admin/roles", as: Page<RoleStore.Role>.self).data
            } else {
                let logger = global.logger(defaultLevel: .warning)
                let store = RoleStore(catalog: PermissionCatalog(registry: try ModulesCommand.registry()), logger: logger)
                roles = try await UsersCommand.inTenant(try RemoteModeOptions.localTenant(tenant), global: global, logger: logger) { connection, _ in
                    try await store.list(on: connection)
                }
            }
            if json {
                try Console.json(roles)
            } else {
                Console.table(["role", "kind", "permissions"], roles.map { [$0.name, $0.kind, $0.permissions.joined(separator: " ")] })
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a custom role from catalog permissions (remote: as the logged-in admin).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var mode: RemoteModeOptions
        @Option(help: "Role name (lowercase letters, digits, _ and -).") var name: String
        @Option(help: "What the role is for.") var description: String?
        @Option(name: .customLong("permission"), help: "A permission the role carries (repeatable; `atrium api GET admin/permissions` lists them).")
        var permissions: [String] = []
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            guard var client = try mode.client(global) else {
                throw RemoteFailure.usage("custom roles are created by a tenant's admin: log in first (`atrium login`)")
            }
            struct NewRole: Encodable { var name: String; var description: String?; var permissions: [String] }
            let role = try await client.json(.post, "admin/roles", body: NewRole(name: name, description: description, permissions: permissions),
                                             as: RoleStore.Role.self)
            if json { return try Console.json(role) }
            Console.line("created role \(role.name): \(role.permissions.joined(separator: " "))")
        }
    }

    struct Grant: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Grant a role to a user.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var mode: RemoteModeOptions
        @Option(help: "Tenant slug (this machine's database; a login's own tenant otherwise).") var tenant: String?
        @Option(help: "Email of the user.") var email: String
        @Option(help: "Role name.") var role: String
        func run() async throws { try await RolesCommand.change(grant: true, tenant: tenant, email: email, role: role, mode: mode, global: global) }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take a role from a user.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var mode: RemoteModeOptions
        @Option(help: "Tenant slug (this machine's database; a login's own tenant otherwise).") var tenant: String?
        @Option(help: "Email of the user.") var email: String
        @Option(help: "Role name.") var role: String
        func run() async throws { try await RolesCommand.change(grant: false, tenant: tenant, email: email, role: role, mode: mode, global: global) }
    }

    static func change(grant: Bool, tenant: String?, email: String, role: String, mode: RemoteModeOptions, global: GlobalOptions) async throws {
        if var client = try mode.client(global) {
            try RemoteModeOptions.check(tenant, against: client)
            let id = try await RemoteAdmin.userID(email, &client)
            if grant {
                struct Grant: Encodable { var role: String }
                _ = try await client.send(.post, "admin/users/\(id.lowercasedString)/roles", body: try AtriumJSON.encoder.encode(Grant(role: role)))
            } else {
                _ = try await client.send(.delete, "admin/users/\(id.lowercasedString)/roles/\(RemoteAdmin.segment(role))")
            }
            return Console.line("\(email) \(grant ? "granted" : "revoked") \(role)")
        }
        let slug = try RemoteModeOptions.localTenant(tenant)
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
