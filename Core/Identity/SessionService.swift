public import Foundation
public import Logging
public import PostgresNIO

/// The RFC 6749 §5.1 token response.
public struct TokenPair: Codable, Sendable, Equatable {
    public var accessToken: String
    public var tokenType: String
    public var expiresIn: Int
    public var refreshToken: String
}

/// Lifetimes of access tokens, refresh tokens and sessions.
public struct SessionSettings: Sendable {
    public var accessTokenLifetime: TimeInterval = 15 * 60
    /// A refresh token unused this long expires (and with it, in effect, the session).
    public var refreshInactivity: TimeInterval = 7 * 24 * 3600
    /// No session outlives this, however active.
    public var sessionLifetime: TimeInterval = 30 * 24 * 3600
    /// Presenting an already-rotated token this soon after its rotation returns the same
    /// successor pair instead of being treated as theft (several tabs refreshing at once).
    public var refreshGrace: TimeInterval = 10
    public init() {}
}

/// Where a request came from, for sessions and the audit log.
public struct ClientInfo: Sendable {
    public var ip: String?
    public var userAgent: String?
    public init(ip: String?, userAgent: String?) {
        self.ip = ip
        self.userAgent = userAgent
    }
}

/// Sessions and their rotating refresh tokens.
///
/// A refresh token is 256 random bits, stored only as an HMAC keyed by the master key,
/// and rotated on every use. Presenting a rotated token after the grace window revokes
/// the whole session (its token family) and is recorded as a security event.
public struct SessionService: Sendable {
    public enum RefreshOutcome: Sendable, Equatable {
        case refreshed(TokenPair)
        case invalid
        /// A rotated token came back after the grace window: the session was revoked.
        case reuseDetected(sessionID: UUID, userID: UUID)
    }

    public struct SessionView: Codable, Sendable, Equatable {
        public var id: UUID
        public var createdAt: Date
        public var lastUsedAt: Date
        public var expiresAt: Date
        public var userAgent: String?
        public var ip: String?
        public var current: Bool
    }

    let keyring: SigningKeyring
    let masterKey: MasterKey
    public let settings: SessionSettings
    let logger: Logger

    public init(keyring: SigningKeyring, masterKey: MasterKey, settings: SessionSettings, logger: Logger) {
        self.keyring = keyring
        self.masterKey = masterKey
        self.settings = settings
        self.logger = logger
    }

    /// Opens a session for `userID` and returns its first token pair.
    public func start(userID: UUID, tenantID: UUID, client: ClientInfo, on connection: PostgresConnection) async throws -> TokenPair {
        let rows = try await connection.query(
            """
            INSERT INTO sessions (tenant_id, user_id, expires_at, user_agent, ip)
            VALUES (\(tenantID), \(userID), now() + make_interval(secs => \(settings.sessionLifetime)), \(client.userAgent), \(client.ip)::inet)
            RETURNING id, now()
            """, logger: logger
        ).collect()
        guard let (sessionID, now) = try rows.first?.decode((UUID, Date).self) else { throw AtriumError.internalError() }
        let refresh = try await insertRefreshToken(tenantID: tenantID, sessionID: sessionID, on: connection)
        return try await pair(userID: userID, tenantID: tenantID, sessionID: sessionID, issuedAt: now, refreshToken: refresh.token)
    }

    /// Rotates `token`. Must run in the tenant's transaction; the row lock serialises
    /// concurrent refreshes of one token, so the second sees the first's successor.
    public func refresh(_ token: String, tenantID: UUID, on connection: PostgresConnection) async throws -> RefreshOutcome {
        let hash = masterKey.tokenHash(token, purpose: "refresh-token")
        // Lock first, then read in a second statement: under READ COMMITTED the second
        // statement sees what a concurrent refresh of the same token committed while we
        // waited (its successor), which a single locking join would not.
        let locked = try await connection.query(
            "SELECT 1 FROM refresh_tokens WHERE token_hash = \(hash) FOR UPDATE", logger: logger
        ).collect()
        guard !locked.isEmpty else { return .invalid }
        let rows = try await connection.query(
            """
            SELECT t.id, t.session_id, s.user_id, t.expires_at > now(), t.used_at IS NOT NULL,
                   coalesce(now() - t.used_at <= make_interval(secs => \(settings.refreshGrace)), false),
                   t.successor_sealed,
                   s.revoked_at IS NULL AND s.expires_at > now() AND u.status = 'active'
            FROM refresh_tokens t
            JOIN sessions s ON s.tenant_id = t.tenant_id AND s.id = t.session_id
            JOIN users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id
            WHERE t.token_hash = \(hash)
            """, logger: logger
        ).collect()
        guard let row = rows.first else { return .invalid }
        let (tokenID, sessionID, userID, unexpired, used, withinGrace, sealedSuccessor, sessionActive) =
            try row.decode((UUID, UUID, UUID, Bool, Bool, Bool, Data?, Bool).self)
        guard sessionActive else { return .invalid }
        if used {
            if withinGrace, let sealedSuccessor {
                let successor = try masterKey.open(sealedSuccessor, context: "refresh-successor:\(tokenID)")
                return .refreshed(try JSONDecoder().decode(TokenPair.self, from: successor))
            }
            try await revoke(sessionID: sessionID, reason: "refresh_token_reuse", on: connection)
            return .reuseDetected(sessionID: sessionID, userID: userID)
        }
        guard unexpired else { return .invalid }
        let successor = try await insertRefreshToken(tenantID: tenantID, sessionID: sessionID, on: connection)
        let successorPair = try await pair(userID: userID, tenantID: tenantID, sessionID: sessionID, issuedAt: successor.createdAt, refreshToken: successor.token)
        // The whole pair is kept (sealed) for the grace window: Ed25519 signatures here are
        // randomised, so re-signing would give a different, if equally valid, access token.
        let sealed = try masterKey.seal(try JSONEncoder().encode(successorPair), context: "refresh-successor:\(tokenID)")
        try await connection.query(
            "UPDATE refresh_tokens SET used_at = now(), successor_id = \(successor.id), successor_sealed = \(sealed) WHERE id = \(tokenID)",
            logger: logger)
        try await connection.query("UPDATE sessions SET last_used_at = now() WHERE id = \(sessionID)", logger: logger)
        return .refreshed(successorPair)
    }

    /// Revokes one session; returns false when there was no such active session.
    @discardableResult
    public func revoke(sessionID: UUID, userID: UUID? = nil, reason: String, on connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query(
            """
            UPDATE sessions SET revoked_at = now(), revoked_reason = \(reason)
            WHERE id = \(sessionID) AND revoked_at IS NULL AND (\(userID)::uuid IS NULL OR user_id = \(userID)) RETURNING 1
            """, logger: logger
        ).collect()
        return !rows.isEmpty
    }

    /// Revokes every session of a user except `keeping`; returns how many ended.
    @discardableResult
    public func revokeAll(userID: UUID, keeping: UUID? = nil, reason: String, on connection: PostgresConnection) async throws -> Int {
        try await Self.revokeAll(userID: userID, keeping: keeping, reason: reason, logger: logger, on: connection)
    }

    /// The same, for callers without the token machinery (user status changes, the CLI).
    @discardableResult
    public static func revokeAll(userID: UUID, keeping: UUID? = nil, reason: String, logger: Logger, on connection: PostgresConnection) async throws -> Int {
        try await connection.query(
            """
            UPDATE sessions SET revoked_at = now(), revoked_reason = \(reason)
            WHERE user_id = \(userID) AND revoked_at IS NULL AND (\(keeping)::uuid IS NULL OR id <> \(keeping)) RETURNING 1
            """, logger: logger
        ).collect().count
    }

    /// The user's live sessions, newest first.
    public func list(userID: UUID, current: UUID?, on connection: PostgresConnection) async throws -> [SessionView] {
        let rows = try await connection.query(
            """
            SELECT id, created_at, last_used_at, expires_at, user_agent, host(ip) FROM sessions
            WHERE user_id = \(userID) AND revoked_at IS NULL AND expires_at > now() ORDER BY created_at DESC
            """, logger: logger)
        var sessions: [SessionView] = []
        for try await (id, created, used, expires, agent, ip) in rows.decode((UUID, Date, Date, Date, String?, String?).self) {
            sessions.append(SessionView(id: id, createdAt: created, lastUsedAt: used, expiresAt: expires, userAgent: agent, ip: ip, current: id == current))
        }
        return sessions
    }

    // MARK: - Internals

    private func insertRefreshToken(tenantID: UUID, sessionID: UUID, on connection: PostgresConnection) async throws -> (id: UUID, token: String, createdAt: Date) {
        let token = SecureRandom.base64URL(bytes: 32)
        let hash = masterKey.tokenHash(token, purpose: "refresh-token")
        let rows = try await connection.query(
            """
            INSERT INTO refresh_tokens (tenant_id, session_id, token_hash, expires_at)
            VALUES (\(tenantID), \(sessionID), \(hash), now() + make_interval(secs => \(settings.refreshInactivity)))
            RETURNING id, created_at
            """, logger: logger
        ).collect()
        guard let (id, created) = try rows.first?.decode((UUID, Date).self) else { throw AtriumError.internalError() }
        return (id, token, created)
    }

    private func pair(userID: UUID, tenantID: UUID, sessionID: UUID, issuedAt: Date, refreshToken: String) async throws -> TokenPair {
        let claims = AccessTokenClaims(userID: userID, tenantID: tenantID, sessionID: sessionID, issuedAt: issuedAt, lifetime: settings.accessTokenLifetime)
        let access = try await keyring.sign(claims)
        return TokenPair(accessToken: access, tokenType: "Bearer", expiresIn: Int(settings.accessTokenLifetime), refreshToken: refreshToken)
    }
}
