public import Foundation
public import Logging
public import PostgresNIO

/// API keys: named, scoped to a subset of permissions, optionally expiring, revocable.
///
/// A key reads `atr_<32 hex id>_<43 base64url secret>`. The id finds the row within the
/// path's tenant; the secret is compared as an HMAC keyed by the master key, so neither
/// a database dump nor a timing difference reveals a usable key.
public struct APIKeyStore: Sendable {
    public struct APIKey: Sendable, Codable, Equatable {
        public var id: UUID
        public var name: String
        public var permissions: [String]
        public var createdBy: String
        /// The user whose rows the key reads and writes as their owner; nil for a key of no
        /// user, which cannot use owned records.
        public var actsFor: UUID?
        public var createdAt: Date
        public var expiresAt: Date?
        public var lastUsedAt: Date?
        public var revokedAt: Date?
    }

    /// A new key with its secret, which exists only in this value.
    public struct CreatedKey: Sendable, Codable, Equatable {
        public var key: String
        public var apiKey: APIKey
    }

    let masterKey: MasterKey
    let logger: Logger

    public init(masterKey: MasterKey, logger: Logger) {
        self.masterKey = masterKey
        self.logger = logger
    }

    public func create(
        tenantID: UUID, name: String, permissions: [String], expiresAt: Date?, createdBy: String, actsFor: UUID?,
        on connection: PostgresConnection
    ) async throws -> CreatedKey {
        guard (1...100).contains(InputDomain.length(name)) else { throw AtriumError.validation(field: "name", "must be 1-100 characters") }
        if let expiresAt, expiresAt <= Date() { throw AtriumError.validation(field: "expires_at", "must be in the future") }
        let id = UUID()
        let secret = SecureRandom.base64URL(bytes: 32)
        let hash = masterKey.tokenHash(secret, purpose: "api-key")
        let rows = try await connection.query(
            """
            INSERT INTO api_keys (tenant_id, id, name, secret_hash, permissions, created_by, acts_for, expires_at)
            SELECT \(tenantID), \(id), \(name), \(hash), \(Array(Set(permissions)).sorted()), \(createdBy), \(actsFor), \(expiresAt)
            WHERE \(actsFor)::uuid IS NULL OR EXISTS (SELECT 1 FROM users WHERE id = \(actsFor) AND status = 'active')
            RETURNING id, name, permissions, created_by, acts_for, created_at, expires_at, last_used_at, revoked_at
            """, logger: logger)
        guard let key = try await decode(rows).first else { throw AtriumError.validation(field: "acts_for", "is not an active user of this tenant") }
        let compactID = id.uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        return CreatedKey(key: "atr_\(compactID)_\(secret)", apiKey: key)
    }

    public func list(on connection: PostgresConnection) async throws -> [APIKey] {
        try await decode(connection.query(
            "SELECT id, name, permissions, created_by, acts_for, created_at, expires_at, last_used_at, revoked_at FROM api_keys ORDER BY created_at DESC",
            logger: logger))
    }

    /// Revokes a key; false when there is no such unrevoked key in this tenant.
    public func revoke(_ id: UUID, on connection: PostgresConnection) async throws -> Bool {
        try await !connection.query("UPDATE api_keys SET revoked_at = now() WHERE id = \(id) AND revoked_at IS NULL RETURNING 1", logger: logger)
            .collect().isEmpty
    }

    /// The key's id and permissions when `presented` is a live key of this tenant, as the
    /// first statement of an authenticated request: one round trip that also scopes the
    /// open transaction to the tenant and the key (see `Authenticator`). Last use is
    /// tracked to the minute, so a busy key does not write on every request.
    public func authenticate(
        _ presented: String, tenantID: UUID, openingRequestOn connection: PostgresConnection
    ) async throws -> (id: UUID, permissions: [String], actsFor: UUID?)? {
        let parts = presented.split(separator: "_", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "atr", parts[1].count == 32, let id = Self.uuid(fromCompact: String(parts[1])) else { return nil }
        var found: RequestOpening.APIKey.Row?
        for try await row in try await connection.execute(RequestOpening.APIKey(tenantID: tenantID, keyID: id), logger: logger) {
            found = row
        }
        guard let (stored, permissions, stale, actsFor) = found else { return nil }
        guard ConstantTime.equal(stored, masterKey.tokenHash(String(parts[2]), purpose: "api-key")) else { return nil }
        if stale { try await connection.query("UPDATE api_keys SET last_used_at = now() WHERE id = \(id)", logger: logger) }
        return (id, permissions, actsFor)
    }

    static func uuid(fromCompact hex: String) -> UUID? {
        guard hex.count == 32, hex.allSatisfy(\.isHexDigit) else { return nil }
        let characters = Array(hex)
        let groups = [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(characters[$0]) }
        return UUID(uuidString: groups.joined(separator: "-"))
    }

    private func decode(_ rows: PostgresRowSequence) async throws -> [APIKey] {
        var keys: [APIKey] = []
        for try await row in rows.decode((UUID, String, [String], String, UUID?, Date, Date?, Date?, Date?).self) {
            keys.append(APIKey(
                id: row.0, name: row.1, permissions: row.2, createdBy: row.3, actsFor: row.4, createdAt: row.5, expiresAt: row.6, lastUsedAt: row.7,
                revokedAt: row.8))
        }
        return keys
    }
}

/// Comparisons whose time does not depend on where the inputs differ.
public enum ConstantTime {
    public static func equal(_ left: Data, _ right: Data) -> Bool {
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(left, right) { difference |= a ^ b }
        return difference == 0
    }
}
