import ArgumentParser
import AtriumCore
import Foundation
import HTTPTypes
import Logging
import PostgresNIO

struct UsersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users", abstract: "Create, list, disable and enable a tenant's users (recorded in its audit log).",
        subcommands: [Create.self, Invite.self, List.self, Disable.self, Enable.self])

    /// Runs `body` in a transaction of the tenant named `slug`, on the owner connection.
    static func inTenant<Result: Sendable>(
        _ slug: String, global: GlobalOptions, logger: Logger, _ body: @escaping @Sendable (PostgresConnection, Tenant) async throws -> Result
    ) async throws -> Result {
        try await TenantsCommand.withOwner(global, logger: logger) { connection, _ in
            let tenant = try await ModulesCommand.tenant(slug, on: connection, logger: logger)
            return try await connection.withTenantTransaction(tenant.id, logger: logger) { connection in try await body(connection, tenant) }
        }
    }

    static func render(_ users: [User], json: Bool) throws {
        if json {
            try Console.json(users)
        } else {
            Console.table(["email", "status", "roles", "id", "created"], users.map {
                [$0.email, $0.status, $0.roles.joined(separator: ","), $0.id.uuidString.lowercased(), Console.timestamp($0.createdAt)]
            })
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a user with a password and roles.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Tenant slug.") var tenant: String
        @Option(help: "Email address (unique per tenant, case-insensitive).") var email: String
        @Option(help: "Password (visible in the process list; prefer --password-stdin).") var password: String?
        @Flag(help: "Read the password from the first line of standard input.") var passwordStdin = false
        @Option(name: .customLong("role"), help: "Role to grant (repeatable; default member).") var roles: [String] = []
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            if (password == nil) == !passwordStdin { throw ValidationError("give exactly one of --password and --password-stdin") }
        }

        func run() async throws {
            let logger = global.logger(defaultLevel: .warning)
            let secret = try password ?? {
                guard let line = readLine(strippingNewline: true), !line.isEmpty else { throw ValidationFailure("no password on standard input") }
                return line
            }()
            let roles = self.roles.isEmpty ? ["member"] : self.roles
            let catalog = PermissionCatalog(registry: try ModulesCommand.registry())
            if let unknown = roles.first(where: { !catalog.isRole($0) }) {
                throw ValidationFailure("unknown role '\(unknown)'; roles are \(catalog.roleNames.joined(separator: ", "))")
            }
            let email = self.email
            try CommandErrors.mappedSync {
                try PasswordPolicy.validate(email: email)
                try PasswordPolicy.validate(secret, email: email)
            }
            let hash = try await PasswordHasher(parameters: try AtriumConfiguration.hashing(ProcessInfo.processInfo.environment)).hash(secret)
            let user = try await UsersCommand.inTenant(tenant, global: global, logger: logger) { connection, tenant in
                let user = try await UserStore(logger: logger).create(
                    tenantID: tenant.id, email: email, passwordHash: hash, roles: roles, verified: true, on: connection)
                try await AuditLog(logger: logger).record(
                    "user.created", tenantID: tenant.id, actor: .init(type: .operator, id: Operator.name), subject: user.id.uuidString.lowercased(),
                    details: ["email": .string(email), "roles": .array(roles.map(JSONValue.string))], on: connection)
                return user
            }
            try render([user], json: json)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a tenant's users (remotely when logged in).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var mode: RemoteModeOptions
        @Option(help: "Tenant slug (this machine's database; a login's own tenant otherwise).") var tenant: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            if var client = try mode.client(global) {
                try RemoteModeOptions.check(tenant, against: client)
                return try render(try await client.json(.get, "admin/users", as: Page<User>.self).data, json: json)
            }
            let logger = global.logger(defaultLevel: .warning)
            let users = try await UsersCommand.inTenant(try RemoteModeOptions.localTenant(tenant), global: global, logger: logger) { connection, _ in
                try await UserStore(logger: logger).list(on: connection)
            }
            try render(users, json: json)
        }
    }

    struct Invite: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Invite someone by email with a role (remote: the server mails the link; on this machine use users create).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var mode: RemoteModeOptions
        @Option(help: "Email address to invite.") var email: String
        @Option(help: "The role the account gets (default member).") var role: String?

        func run() async throws {
            guard var client = try mode.client(global) else {
                throw RemoteFailure.usage("an invitation is mailed by a server: log in first (`atrium login`), or create the user here with `atrium users create`")
            }
            struct Invitation: Encodable { var email: String; var role: String? }
            _ = try await client.send(.post, "admin/users/invite", body: try AtriumJSON.encoder.encode(Invitation(email: email, role: role)))
            Console.line("invited \(email) as \(role ?? "member"); the invitation is on its way by mail")
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a user; all of their sessions end at once.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var mode: RemoteModeOptions
        @Option(help: "Tenant slug (this machine's database; a login's own tenant otherwise).") var tenant: String?
        @Option(help: "Email of the user.") var email: String
        func run() async throws { try await UsersCommand.setStatus("disabled", tenant: tenant, email: email, mode: mode, global: global) }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a disabled user.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var mode: RemoteModeOptions
        @Option(help: "Tenant slug (this machine's database; a login's own tenant otherwise).") var tenant: String?
        @Option(help: "Email of the user.") var email: String
        func run() async throws { try await UsersCommand.setStatus("active", tenant: tenant, email: email, mode: mode, global: global) }
    }

    static func setStatus(_ status: String, tenant: String?, email: String, mode: RemoteModeOptions, global: GlobalOptions) async throws {
        if var client = try mode.client(global) {
            try RemoteModeOptions.check(tenant, against: client)
            let id = try await RemoteAdmin.userID(email, &client)
            _ = try await client.send(.post, "admin/users/\(id.lowercasedString)/\(status == "disabled" ? "disable" : "enable")")
            return Console.line("\(email) \(status == "disabled" ? "disabled" : "enabled")")
        }
        let slug = try RemoteModeOptions.localTenant(tenant)
        let logger = global.logger(defaultLevel: .warning)
        let roles = RoleStore(catalog: PermissionCatalog(registry: try ModulesCommand.registry()), logger: logger)
        let changed = try await CommandErrors.mapped {
            try await inTenant(slug, global: global, logger: logger) { connection, tenant -> Bool in
                let users = UserStore(logger: logger)
                guard let user = try await users.find(email: email, on: connection) else { return false }
                if status == "disabled" { try await roles.ensureAnotherOwner(than: user.id, on: connection) }
                guard try await users.setStatus(status, userID: user.id, on: connection) else { return false }
                try await AuditLog(logger: logger).record(
                    status == "disabled" ? "user.disabled" : "user.enabled", tenantID: tenant.id, actor: .init(type: .operator, id: Operator.name),
                    subject: user.id.uuidString.lowercased(), on: connection)
                return true
            }
        }
        guard changed else { throw ValidationFailure("no user \(email) in \(slug) that is not already \(status)") }
        Console.line("\(email) \(status == "disabled" ? "disabled" : "enabled")")
    }
}

/// Who runs the CLI, for the audit log: the OS user.
enum Operator {
    static var name: String { ProcessInfo.processInfo.environment["SUDO_USER"] ?? ProcessInfo.processInfo.environment["USER"] ?? "operator" }
}
