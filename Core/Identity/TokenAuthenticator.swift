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
    /// Sessions checked before; nil checks every request's session in the database.
    let sessions: SessionCache?

    public init(identity: Identity, sessions: SessionCache? = nil) {
        self.identity = identity
        self.sessions = sessions
    }

    public func authenticate(_ request: Request, tenant: Tenant, on connection: PostgresConnection, logger: Logger) async throws -> Principal? {
        let bearer = request.headers[.authorization].flatMap(Self.bearerToken)
        if let key = request.headers[.apiKey] ?? bearer.flatMap({ $0.hasPrefix("atr_") ? $0 : nil }) {
            let store = APIKeyStore(masterKey: identity.masterKey, logger: logger)
            guard let found = try await store.authenticate(key, tenantID: tenant.id, openingRequestOn: connection) else { return nil }
            return Principal(kind: .apiKey, id: found.id, tenantID: tenant.id, permissions: Set(found.permissions), actingUserID: found.actsFor)
        }
        guard let token = bearer else { return nil }
        guard let claims = await identity.keyring.verify(token), claims.tenantID == tenant.id,
            let userID = claims.userID, let sessionID = claims.sessionID
        else { return nil }
        // A session checked before (and nothing about it changed since, see SessionCache)
        // needs only the transaction's scope; any other is checked, and its roles and
        // custom-role permissions read, in the one statement that scopes the transaction
        // (migration 0019). Both are statements each connection prepares once.
        if let cached = sessions?.session(sessionID, tenantID: tenant.id, userID: userID) {
            try await connection.scopeTransaction(toTenant: tenant.id, principal: userID, logger: logger)
            return Principal(kind: .user, id: userID, tenantID: tenant.id, permissions: cached.permissions, sessionID: sessionID)
        }
        let generation = sessions?.generation
        var found: RequestOpening.Session.Row?
        for try await row in try await connection.execute(
            RequestOpening.Session(tenantID: tenant.id, userID: userID, sessionID: sessionID), logger: logger) {
            found = row
        }
        guard let (roles, customPermissions, expiresAt) = found else { return nil }
        let permissions = identity.catalog.permissions(for: roles).union(customPermissions)
        if let sessions, let generation {
            sessions.store(
                sessionID, SessionCache.Session(tenantID: tenant.id, userID: userID, permissions: permissions, expiresAt: expiresAt), readAfter: generation)
        }
        return Principal(kind: .user, id: userID, tenantID: tenant.id, permissions: permissions, sessionID: sessionID)
    }

    /// The token of `Bearer <token>` (scheme case-insensitive, spaces and tabs around the
    /// token ignored), nil for any other scheme. Compared on bytes: Foundation's
    /// `trimmingCharacters` alone was 1% of an authenticated request's CPU.
    static func bearerToken(_ header: String) -> String? {
        let bytes = Array(header.utf8)
        let scheme = Array("bearer ".utf8)
        guard bytes.count >= scheme.count, zip(bytes, scheme).allSatisfy({ $0 == $1 || ($1 != UInt8(ascii: " ") && $0 | 0x20 == $1) }) else { return nil }
        let isBlank = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        var token = bytes[scheme.count...]
        while let first = token.first, isBlank(first) { token.removeFirst() }
        while let last = token.last, isBlank(last) { token.removeLast() }
        return String(decoding: token, as: UTF8.self)
    }
}
