import Foundation
public import Hummingbird
public import Logging
public import PostgresNIO

/// Authenticates `Authorization: Bearer <access token or API key>` or `X-Api-Key`.
///
/// A token is accepted only when its signature, algorithm (EdDSA), key id and expiry
/// check out, its `tid` is the tenant of the path, and its session and user are still
/// active — so ending a session or disabling a user takes effect at once, not when the
/// token expires. The principal's permissions come from the user's current roles.
public struct TokenAuthenticator: Authenticator {
    let identity: Identity

    public init(identity: Identity) {
        self.identity = identity
    }

    public func authenticate(_ request: Request, tenant: Tenant, on connection: PostgresConnection, logger: Logger) async throws -> Principal? {
        let bearer = request.headers[.authorization].flatMap { header in
            header.lowercased().hasPrefix("bearer ") ? String(header.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces) : nil
        }
        if let key = request.headers[.apiKey] ?? bearer.flatMap({ $0.hasPrefix("atr_") ? $0 : nil }) {
            let store = APIKeyStore(masterKey: identity.masterKey, logger: logger)
            guard let found = try await store.authenticate(key, tenantID: tenant.id, openingRequestOn: connection) else { return nil }
            return Principal(kind: .apiKey, id: found.id, tenantID: tenant.id, permissions: Set(found.permissions), actingUserID: found.actsFor)
        }
        guard let token = bearer else { return nil }
        guard let claims = await identity.keyring.verify(token), claims.tenantID == tenant.id,
            let userID = claims.userID, let sessionID = claims.sessionID
        else { return nil }
        // One round trip: scope the transaction, and check that the session and user are
        // live; roles and custom-role permissions come along (migration 0012), as a
        // statement each connection prepares once (RequestOpening).
        var found: RequestOpening.Session.Row?
        for try await row in try await connection.execute(
            RequestOpening.Session(tenantID: tenant.id, userID: userID, sessionID: sessionID), logger: logger) {
            found = row
        }
        guard let (roles, customPermissions) = found else { return nil }
        let permissions = identity.catalog.permissions(for: roles).union(customPermissions)
        return Principal(kind: .user, id: userID, tenantID: tenant.id, permissions: permissions, sessionID: sessionID)
    }
}
