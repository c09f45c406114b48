import Foundation
import HTTPTypes
import Logging

/// `/v1/tenants/{tenant}/admin/oidc-providers`: a tenant's owner configures its OpenID
/// Connect login providers over the API (what `atrium oidc` does on the database).
///
/// Owners only (`kernel.sso.manage`): a provider vouches for email addresses, so whoever
/// may add one could sign in as any user of the tenant, the owner included.
struct OIDCAdminRoutes {
    let identity: Identity

    struct ProviderList: Codable, Sendable { var data: [OIDCLogin.Provider] }

    struct ProviderInput: Codable, Sendable {
        /// Discovery at `<issuer>/.well-known/openid-configuration`; Google's when absent and the name is `google`.
        var issuer: String?
        var clientId: String
        /// Sealed at rest with the master key; never answered.
        var clientSecret: String
        var scopes: String?
    }

    func register(_ routes: ModuleRoutes) {
        let identity = self.identity
        let permission = "kernel.sso.manage"
        routes.on(.get, "admin/oidc-providers", summary: "The tenant's OpenID Connect login providers (never their secrets)", permission: permission,
                  response: ProviderList.self) { request in
            ProviderList(data: try await request.transaction { transaction in
                try await OIDCLogin.list(on: transaction.connection, logger: transaction.logger)
            })
        }

        routes.on(.put, "admin/oidc-providers/{name}", summary: "Add or replace a login provider (its client secret is stored sealed)",
                  permission: permission, body: ProviderInput.self, response: OIDCLogin.Provider.self) { request, input in
            let name = try request.parameter("name")
            guard let issuer = input.issuer ?? (name == "google" ? OIDCLogin.googleIssuer : nil) else {
                throw AtriumError.validation(field: "issuer", "is required for providers other than google")
            }
            guard !input.clientSecret.isEmpty else { throw AtriumError.validation(field: "client_secret", "is required") }
            let principal = try request.requirePrincipal()
            return try await request.transaction { transaction in
                let provider = try await OIDCLogin(masterKey: identity.masterKey, outbound: identity.outbound, logger: transaction.logger).save(
                    tenantID: transaction.tenantID, name: name, issuer: issuer, clientID: input.clientId, clientSecret: input.clientSecret,
                    scopes: input.scopes ?? "openid email profile", on: transaction.connection)
                try await AdminRoutes.audit(
                    "oidc.provider_saved", request, principal, subject: name, details: ["issuer": .string(issuer)], transaction)
                return provider
            }
        }

        routes.on(.delete, "admin/oidc-providers/{name}", summary: "Remove a login provider", permission: permission,
                  response: NoContent.self, status: .noContent) { request in
            let name = try request.parameter("name")
            let principal = try request.requirePrincipal()
            try await request.transaction { transaction in
                guard try await OIDCLogin.remove(name, on: transaction.connection, logger: transaction.logger) else {
                    throw AtriumError.notFound("No provider named '\(name)'.")
                }
                try await AdminRoutes.audit("oidc.provider_removed", request, principal, subject: name, transaction)
            }
            return NoContent()
        }
    }
}
