import ArgumentParser
import AtriumCore
import Foundation
import HTTPTypes
import Logging
import PostgresNIO

struct APIKeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api-keys", abstract: "Create, list and revoke a tenant's API keys.", subcommands: [Create.self, List.self, Revoke.self])

    static func store(_ global: GlobalOptions, location: DatabaseLocation, logger: Logger) async throws -> APIKeyStore {
        APIKeyStore(
            masterKey: try await MasterKey.load(environment: ProcessInfo.processInfo.environment, location: location, logger: logger),
            logger: logger)
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an API key and print it (the only time it is shown).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var mode: RemoteModeOptions
        @Option(help: "Tenant slug (this machine's database; a login's own tenant otherwise).") var tenant: String?
        @Option(help: "A name that says what the key is for.") var name: String
        @Option(
            name: .customLong("permission"),
            help: "A permission the key holds (repeat for more; at least one). A key can do only what it is given, whatever its creator may do: for example --permission sales.records.any --permission sales.records.import. `atrium roles list --tenant T` shows which role holds which permission.")
        var permissions: [String] = []
        @Option(help: "Expiry as an RFC 3339 time.") var expires: String?
        @Option(help: "Email of the user the key acts for: records it creates are theirs, and owner scope applies as to them (for a service, create a user for it). Without it the key can use no owned records.")
        var actsFor: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            if var client = try mode.client(global) {
                try RemoteModeOptions.check(tenant, against: client)
                return try APIKeysCommand.show(try await remoteCreate(&client), json: json)
            }
            let logger = global.logger(defaultLevel: .warning)
            let catalog = PermissionCatalog(registry: try ModulesCommand.registry())
            let known = catalog.permissions.map(\.name).sorted()
            if permissions.isEmpty {
                throw ValidationFailure("give the key at least one --permission (it can do nothing else); permissions: \(known.joined(separator: ", "))")
            }
            if let unknown = permissions.first(where: { !known.contains($0) }) {
                throw ValidationFailure("'\(unknown)' is not a permission; permissions: \(known.joined(separator: ", "))")
            }
            var expiresAt: Date?
            if let expires {
                guard let date = ISO8601DateFormatter().date(from: expires) else { throw ValidationFailure("--expires must be an RFC 3339 time") }
                expiresAt = date
            }
            let (slug, name, permissions, expiry, actsForEmail) = (try RemoteModeOptions.localTenant(tenant), name, permissions, expiresAt, actsFor)
            let created = try await global.withDatabase(logger: logger) { location in
                let store = try await APIKeysCommand.store(global, location: location, logger: logger)
                return try await withPostgresConnection(location.owner, logger: logger) { connection in
                    let tenant = try await ModulesCommand.tenant(slug, on: connection, logger: logger)
                    return try await connection.withTenantTransaction(tenant.id, logger: logger) { connection in
                        var actsFor: UUID?
                        if let actsForEmail {
                            guard let user = try await UserStore(logger: logger).find(email: actsForEmail, on: connection) else {
                                throw ValidationFailure("--acts-for: \(actsForEmail) is not a user of \(slug)")
                            }
                            actsFor = user.id
                        }
                        let created = try await store.create(
                            tenantID: tenant.id, name: name, permissions: permissions, expiresAt: expiry, createdBy: "operator:\(Operator.name)",
                            actsFor: actsFor, on: connection)
                        try await AuditLog(logger: logger).record(
                            "api_key.created", tenantID: tenant.id, actor: .init(type: .operator, id: Operator.name),
                            subject: created.apiKey.id.uuidString.lowercased(), details: ["name": .string(name)], on: connection)
                        return created
                    }
                }
            }
            try APIKeysCommand.show(created, json: json)
        }

        /// The key made by the server, as the logged-in admin (who can give it only what they hold).
        func remoteCreate(_ client: inout RemoteClient) async throws -> APIKeyStore.CreatedKey {
            struct NewKey: Encodable {
                var name: String
                var permissions: [String]
                var expiresAt: Date?
                var actsFor: UUID?
            }
            var expiresAt: Date?
            if let expires {
                guard let date = ISO8601DateFormatter().date(from: expires) else { throw RemoteFailure.usage("--expires must be an RFC 3339 time") }
                expiresAt = date
            }
            var actsForID: UUID?
            if let actsFor { actsForID = try await RemoteAdmin.userID(actsFor, &client) }
            return try await client.json(
                .post, "admin/api-keys", body: NewKey(name: name, permissions: permissions, expiresAt: expiresAt, actsFor: actsForID),
                as: APIKeyStore.CreatedKey.self)
        }
    }

    /// A new key: printed once (JSON, or the key on standard output and its id on standard error).
    static func show(_ created: APIKeyStore.CreatedKey, json: Bool) throws {
        if json {
            try Console.json(created)
        } else {
            Console.line(created.key)
            Console.error("Store this key now: it is not shown again. Id \(created.apiKey.id.uuidString.lowercased()).")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a tenant's API keys (never their secrets).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var mode: RemoteModeOptions
        @Option(help: "Tenant slug (this machine's database; a login's own tenant otherwise).") var tenant: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let keys: [APIKeyStore.APIKey]
            if var client = try mode.client(global) {
                try RemoteModeOptions.check(tenant, against: client)
                keys = try await client.json(.get, "admin/api-keys", as: Page<APIKeyStore.APIKey>.self).data
            } else {
                keys = try await localKeys()
            }
            if json {
                try Console.json(keys)
            } else {
                Console.table(["id", "name", "permissions", "last used", "revoked"], keys.map {
                    [$0.id.uuidString.lowercased(), $0.name, $0.permissions.joined(separator: " "), Console.timestamp($0.lastUsedAt), Console.timestamp($0.revokedAt)]
                })
            }
        }

        private func localKeys() async throws -> [APIKeyStore.APIKey] {
            let logger = global.logger(defaultLevel: .warning)
            let slug = try RemoteModeOptions.localTenant(tenant)
            return try await global.withDatabase(logger: logger) { location in
                let store = try await APIKeysCommand.store(global, location: location, logger: logger)
                return try await withPostgresConnection(location.owner, logger: logger) { connection in
                    let tenant = try await ModulesCommand.tenant(slug, on: connection, logger: logger)
                    return try await connection.withTenantTransaction(tenant.id, logger: logger) { try await store.list(on: $0) }
                }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke an API key.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var mode: RemoteModeOptions
        @Option(help: "Tenant slug (this machine's database; a login's own tenant otherwise).") var tenant: String?
        @Argument(help: "Key id.") var id: String

        func run() async throws {
            guard let keyID = UUID(uuidString: id) else { throw RemoteFailure.usage("'\(id)' is not a key id") }
            if var client = try mode.client(global) {
                try RemoteModeOptions.check(tenant, against: client)
                _ = try await client.send(.delete, "admin/api-keys/\(keyID.lowercasedString)")
                return Console.line("revoked \(id)")
            }
            let logger = global.logger(defaultLevel: .warning)
            let slug = try RemoteModeOptions.localTenant(tenant)
            let revoked = try await global.withDatabase(logger: logger) { location in
                let store = try await APIKeysCommand.store(global, location: location, logger: logger)
                return try await withPostgresConnection(location.owner, logger: logger) { connection in
                    let tenant = try await ModulesCommand.tenant(slug, on: connection, logger: logger)
                    return try await connection.withTenantTransaction(tenant.id, logger: logger) { connection in
                        guard try await store.revoke(keyID, on: connection) else { return false }
                        try await AuditLog(logger: logger).record(
                            "api_key.revoked", tenantID: tenant.id, actor: .init(type: .operator, id: Operator.name), subject: keyID.uuidString.lowercased(),
                            on: connection)
                        return true
                    }
                }
            }
            guard revoked else { throw ValidationFailure("no unrevoked key \(id) in \(slug)") }
            Console.line("revoked \(id)")
        }
    }
}
