import Foundation
public import Hummingbird
public import Logging
import PostgresNIO

/// Authenticates `Authorization: Bearer <access token or API key>` or `X-Api-Key`.
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
        let bearer = request.headers[.authorization].flatMap { header in
            header.lowercased().hasPrefix("bearer ") ? String(header.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces) : nil
        }
        if let key = request.headers[.apiKey] ?? bearer.flatMap({ $0.hasPrefix("atr_") ? $0 : nil }) {
            return try await authenticateKey(key, tenant: tenant, logger: logger)
        }
        guard let token = bearer else { return nil }
        guard let claims = await identity.keyring.verify(token), claims.tenantID == tenant.id,
            let userID = claims.userID, let sessionID = claims.sessionID
        else { return nil }
        let grants = try await database.withTenantTransaction(tenant.id, logger: logger) { connection -> ([String], [String])? in
            // One round trip: the session and user must be live; roles and custom-role permissions come along.
            let rows = try await connection.query(
                """
                SELECT coalesce(array_agg(DISTINCT r.role) FILTER (WHERE r.role IS NOT NULL), '{}'),
                       coalesce((SELECT array_agg(DISTINCT p) FROM user_roles ur
                                 JOIN roles c ON c.tenant_id = ur.tenant_id AND c.name = ur.role, unnest(c.permissions) p
                                 WHERE ur.user_id = \(userID)), '{}')
                FROM sessions s
                JOIN users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id AND u.status = 'active'
                LEFT JOIN user_roles r ON r.tenant_id = u.tenant_id AND r.user_id = u.id
                WHERE s.id = \(sessionID) AND s.user_id = \(userID) AND s.revoked_at IS NULL AND s.expires_at > now()
                GROUP BY s.id
                """, logger: logger
            ).collect()
            return try rows.first?.decode(([String], [String]).self)
        }
        guard let (roles, customPermissions) = grants else { return nil }
        let permissions = identity.catalog.permissions(for: roles).union(customPermissions)
        return Principal(kind: .user, id: userID, tenantID: tenant.id, permissions: permissions, sessionID: sessionID)
    }

    private func authenticateKey(_ key: String, tenant: Tenant, logger: Logger) async throws -> Principal? {
        let store = APIKeyStore(masterKey: identity.masterKey, logger: logger)
        let found = try await database.withTenantTransaction(tenant.id, logger: logger) { connection in
            try await store.authenticate(key, on: connection)
        }
        guard let found else { return nil }
        return Principal(kind: .apiKey, id: found.id, tenantID: tenant.id, permissions: Set(found.permissions))
    }
}
