import Foundation
import HTTPTypes
import Logging
import PostgresNIO

/// `GET auth/oauth/{provider}/start` and `…/callback`: log in with an OpenID Connect
/// provider the tenant has configured.
struct OIDCRoutes {
    let identity: Identity

    struct Callback: Codable, Sendable {}

    func register(_ routes: ModuleRoutes) {
        let identity = self.identity
        let oidc = OIDCLogin(masterKey: identity.masterKey, outbound: identity.outbound, logger: Logger(label: "atrium.oidc"))
        let users = UserStore(logger: Logger(label: "atrium.oidc"))

        routes.on(.get, "oauth/{provider}/start", summary: "Redirect to the provider to log in (authorization code, PKCE S256, state, nonce)",
                  permission: nil, response: Redirect.self, status: .found) { request in
            let provider = try request.parameter("provider")
            let location = try await request.transaction { transaction in
                try await oidc.start(
                    provider: provider, tenantID: transaction.tenantID, redirectURI: Self.callbackURL(identity, request, provider), on: transaction.connection)
            }
            return Redirect(location: location)
        }

        routes.on(.get, "oauth/{provider}/callback", summary: "Where the provider returns; answers with a token pair",
                  permission: nil, query: [.init("code", "Authorization code"), .init("state", "The state sent at start")],
                  response: TokenPair.self) { request in
            let provider = try request.parameter("provider")
            if let error = request.query("error") {
                throw AtriumError.badRequest(code: "oidc_denied", "The provider did not log the user in: \(error).")
            }
            guard let code = request.query("code"), let state = request.query("state") else {
                throw AtriumError.badRequest(code: "oidc_invalid_callback", "The callback needs code and state.")
            }
            return try await request.transaction { transaction in
                guard let verified = try await oidc.finish(
                    provider: provider, tenantID: transaction.tenantID, code: code, state: state,
                    redirectURI: Self.callbackURL(identity, request, provider), on: transaction.connection)
                else {
                    throw AtriumError.badRequest(code: "oidc_invalid_state", "The login expired or was already used; start again.")
                }
                let userID = try await Self.user(for: verified, provider: provider, users: users, request: request, transaction)
                try await AuditLog(logger: transaction.logger).record(
                    "login.succeeded", tenantID: transaction.tenantID,
                    actor: .init(type: .user, id: userID.uuidString.lowercased(), ip: request.client.ip, userAgent: request.client.userAgent),
                    details: ["provider": .string(provider)], on: transaction.connection)
                return try await identity.sessions.start(userID: userID, tenantID: transaction.tenantID, client: request.client, on: transaction.connection)
            }
        }
    }

    static func callbackURL(_ identity: Identity, _ request: TenantRequest, _ provider: String) -> String {
        identity.publicURL.appending(path: "v1/tenants/\(request.tenant.slug)/auth/oauth/\(provider)/callback").absoluteString
    }

    /// The linked user, or one linked now by verified email, or a new one when sign-up is open.
    static func user(
        for verified: OIDCLogin.VerifiedIdentity, provider: String, users: UserStore, request: TenantRequest, _ transaction: TenantTransaction
    ) async throws -> UUID {
        let connection = transaction.connection
        let linked = try await connection.query(
            "SELECT user_id FROM user_identities WHERE provider = \(provider) AND subject = \(verified.subject)", logger: transaction.logger
        ).collect()
        var userID = try linked.first?.decode(UUID.self)
        if userID == nil, let email = verified.email {
            if let existing = try await users.find(email: email, on: connection) {
                guard verified.emailVerified else {
                    throw AtriumError.conflict(
                        code: "account_link_requires_verified_email",
                        "An account with this email exists; the provider must vouch for the email before it can be linked.")
                }
                userID = existing.id
            } else {
                let open = try await connection.query(
                    "SELECT coalesce((settings->>'self_signup')::boolean, false) FROM tenants WHERE id = \(transaction.tenantID)", logger: transaction.logger
                ).collect().first?.decode(Bool.self) ?? false
                guard open else {
                    throw AtriumError.forbidden(code: "signup_disabled", "This tenant does not allow self-signup; ask an administrator for an invitation.")
                }
                userID = try await users.create(
                    tenantID: transaction.tenantID, email: email, passwordHash: nil, roles: ["member"], verified: verified.emailVerified, on: connection
                ).id
            }
            if let userID {
                try await connection.query(
                    "INSERT INTO user_identities (tenant_id, provider, subject, user_id) VALUES (\(transaction.tenantID), \(provider), \(verified.subject), \(userID))",
                    logger: transaction.logger)
            }
        }
        guard let userID else {
            throw AtriumError.badRequest(code: "oidc_no_email", "The provider shared no email address to find or create an account with.")
        }
        guard let user = try await users.find(id: userID, on: connection), user.status == "active" else {
            throw AtriumError.forbidden(code: "account_disabled", "This account is disabled.")
        }
        return userID
    }
}

/// A route answer that sends the client elsewhere (302 with `Location`).
public struct Redirect: Codable, Sendable {
    public var location: String
    public init(location: String) { self.location = location }
}
