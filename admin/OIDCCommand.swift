import ArgumentParser
import AtriumCore
import Foundation
import HTTPTypes
import Logging

struct OIDCCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "oidc", abstract: "Configure a tenant's OpenID Connect login providers.", subcommands: [Add.self, List.self, Remove.self])

    /// A provider as the API writes it (`client_id`), the same JSON in both modes.
    struct RemoteProvider: Codable {
        var name: String
        var issuer: String
        var clientId: String
        var scopes: String
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add or replace a provider. `--name google` needs no issuer; any other issuer is found by OIDC discovery.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var mode: RemoteModeOptions
        @Option(help: "Tenant slug (this machine's database; a login's own tenant otherwise).") var tenant: String?
        @Option(help: "Provider name, used in auth/oauth/{name}/start.") var name: String
        @Option(help: "Issuer URL (discovery at <issuer>/.well-known/openid-configuration).") var issuer: String?
        @Option(help: "OAuth client id.") var clientID: String
        @Flag(help: "Read the client secret from the first line of standard input.") var clientSecretStdin = false
        @Option(help: "Scopes to request.") var scopes: String = "openid email profile"

        func run() async throws {
            guard clientSecretStdin, let secret = readLine(strippingNewline: true), !secret.isEmpty else {
                throw ValidationFailure("give the client secret on standard input with --client-secret-stdin")
            }
            guard let issuer = issuer ?? (name == "google" ? OIDCLogin.googleIssuer : nil) else {
                throw ValidationFailure("--issuer is required for providers other than google")
            }
            if var client = try mode.client(global) {
                try RemoteModeOptions.check(tenant, against: client)
                struct Input: Encodable { var issuer: String; var clientId: String; var clientSecret: String; var scopes: String }
                let provider = try await client.json(
                    .put, "admin/oidc-providers/\(RemoteAdmin.segment(name))",
                    body: Input(issuer: issuer, clientId: clientID, clientSecret: secret, scopes: scopes), as: RemoteProvider.self)
                return Console.line("saved provider \(provider.name) (\(provider.issuer)) for \(client.context.tenant)")
            }
            let logger = global.logger(defaultLevel: .warning)
            let (slug, name, clientID, scopes) = (try RemoteModeOptions.localTenant(tenant), name, clientID, scopes)
            let provider = try await global.withDatabase(logger: logger) { location in
                let masterKey = try await MasterKey.load(environment: ProcessInfo.processInfo.environment, location: location, logger: logger)
                return try await withPostgresConnection(location.owner, logger: logger) { connection in
                    let tenant = try await ModulesCommand.tenant(slug, on: connection, logger: logger)
                    return try await connection.withTenantTransaction(tenant.id, logger: logger) { connection in
                        let provider = try await OIDCLogin(masterKey: masterKey, logger: logger).save(
                            tenantID: tenant.id, name: name, issuer: issuer, clientID: clientID, clientSecret: secret, scopes: scopes, on: connection)
                        try await AuditLog(logger: logger).record(
                            "oidc.provider_saved", tenantID: tenant.id, actor: .init(type: .operator, id: Operator.name),
                            details: ["name": .string(name), "issuer": .string(issuer)], on: connection)
                        return provider
                    }
                }
            }
            Console.line("saved provider \(provider.name) (\(provider.issuer)) for \(slug)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a tenant's providers (never their secrets).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var mode: RemoteModeOptions
        @Option(help: "Tenant slug (this machine's database; a login's own tenant otherwise).") var tenant: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let providers: [RemoteProvider]
            if var client = try mode.client(global) {
                try RemoteModeOptions.check(tenant, against: client)
                providers = try await client.json(.get, "admin/oidc-providers", as: Page<RemoteProvider>.self).data
            } else {
                let logger = global.logger(defaultLevel: .warning)
                providers = try await UsersCommand.inTenant(try RemoteModeOptions.localTenant(tenant), global: global, logger: logger) { connection, _ in
                    try await OIDCLogin.list(on: connection, logger: logger)
                }.map { RemoteProvider(name: $0.name, issuer: $0.issuer, clientId: $0.clientID, scopes: $0.scopes) }
            }
            if json {
                try Console.json(providers)
            } else {
                Console.table(["name", "issuer", "client id", "scopes"], providers.map { [$0.name, $0.issuer, $0.clientId, $0.scopes] })
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a login provider (remote, as the tenant's owner).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var mode: RemoteModeOptions
        @Argument(help: "The provider's name.") var name: String

        func run() async throws {
            guard var client = try mode.client(global) else {
                throw RemoteFailure.usage("log in as the tenant's owner first (`atrium login`); providers are removed through the server")
            }
            _ = try await client.send(.delete, "admin/oidc-providers/\(RemoteAdmin.segment(name))")
            Console.line("removed provider \(name) from \(client.context.tenant)")
        }
    }
}
