import Foundation
public import Hummingbird
public import Logging
import PostgresNIO

/// Authenticates `Authorization: Bearer <access token>` for the identity layer.
///
/// A token is accepted only when its signature, algorithm (EdDSA), key id and expiry
/// check out, its `tid` is the tenant of the path, and its session and user are still
/// active — so ending a session or disabling a user takes effect at once, not when the
/// token expires. The principal's permissions come from the user's current roles.
public struct TokenAuthenticator: Authenticator {
    let identity: Identity
    let database: Database

    public init(identity: Identity, database: Database) {
        self.identity = identity
        self.database = database
    }

    public func authenticate(_ request: Request, tenant: Tenant, logger: Logger) async throws -> Principal? {
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else { return nil }
        let token = String(header.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces)
        guard let claims = await identity.keyring.verify(token), claims.tenantID == tenant.id,
            let userID = claims.userID, let sessionID = claims.sessionID
        else { return nil }
        let roles = try await database.withTenantTransaction(tenant.id, logger: logger) { connection -> [String]? in
            let rows = try await connection.query(
                """
                SELECT coalesce(array_agg(r.role) FILTER (WHERE r.role IS NOT NULL), '{}')
                FROM sessions s
                JOIN users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id AND u.status = 'active'
                LEFT JOIN user_roles r ON r.tenant_id = u.tenant_id AND r.user_id = u.id
                WHERE s.id = \(sessionID) AND s.user_id = \(userID) AND s.revoked_at IS NULL AND s.expires_at > now()
                GROUP BY s.id
                """, logger: logger
            ).collect()
            return try rows.first?.decode([String].self)
        }
        guard let roles else { return nil }
        return Principal(kind: .user, id: userID, tenantID: tenant.id, permissions: identity.catalog.permissions(for: roles), sessionID: sessionID)
    }
}
