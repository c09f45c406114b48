import AtriumCore
import Crypto
import Foundation
import PostgresNIO

/// The SQL of connections.
enum ConnectionStore {
    static let table = RecordTable<Connection>(
        "crypto_connections", columns: Connection.columns, noun: "connection", order: .ascending("created_at", time: \.createdAt, id: \.id),
        decode: Connection.init)

    /// SHA-256 (hex) of an API key: how the same key connected twice is found, and what
    /// the API shows instead of it.
    static func fingerprint(of apiKey: String) -> String {
        SHA256.hash(data: Data(apiKey.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Inserts a checked connection for `owner`, its key and secret sealed under the
    /// tenant's active data key, bound to this row.
    static func insert(
        id: UUID, _ fields: ConnectionFields, permissions: KeyPermissions, owner: UUID, sealer: Sealer, on transaction: TenantTransaction
    ) async throws -> Connection {
        let key = try await TenantKeys.active(sealer: sealer, on: transaction)
        let tenant = transaction.tenantID
        let sealedKey = try key.seal(fields.apiKey, tenant: tenant, connection: id, field: "api_key")
        let sealedSecret = try key.seal(fields.apiSecret, tenant: tenant, connection: id, field: "api_secret")
        let granted = String(decoding: try JSONEncoder().encode(permissions), as: UTF8.self)
        let sql: SQL = try """
            INSERT INTO crypto_connections (tenant_id, id, owner_id, exchange, label, api_key_sealed, api_secret_sealed, key_version,
                key_fingerprint, key_last4, permissions, markets, next_sync_at)
            VALUES (\(tenant), \(id), \(owner), \(fields.exchange), \(fields.label), \(sealedKey), \(sealedSecret), \(key.version),
                \(fingerprint(of: fields.apiKey)), \(String(fields.apiKey.suffix(4))), \(granted)::jsonb, \(fields.markets ?? []), now())
            RETURNING \(unescaped: table.columns)
            """
        return try await transaction.lastStatement { try await table.one(sql, on: transaction) }
    }

    static func update(_ id: UUID, _ changes: ConnectionChanges, owner: UUID?, on transaction: TenantTransaction) async throws -> Connection {
        let sql: SQL = """
            UPDATE crypto_connections SET label = coalesce(\(changes.label.value), label),
                markets = CASE WHEN \(changes.markets.isSet) THEN coalesce(\(changes.markets.value)::text[], '{}') ELSE markets END,
                owner_id = coalesce(\(owner), owner_id), updated_at = now()
            WHERE id = \(id)
            RETURNING \(unescaped: table.columns)
            """
        return try await transaction.lastStatement { try await table.one(sql, on: transaction) }
    }

    /// Replaces the key and secret of connection `id` (sealed under the active data key),
    /// with what the exchange said the new key may do; the connection is active again.
    static func replaceCredentials(
        of id: UUID, with credentials: ConnectionFields.Credentials, permissions: KeyPermissions, sealer: Sealer, on transaction: TenantTransaction
    ) async throws -> Connection {
        let key = try await TenantKeys.active(sealer: sealer, on: transaction)
        let tenant = transaction.tenantID
        let sealedKey = try key.seal(credentials.apiKey, tenant: tenant, connection: id, field: "api_key")
        let sealedSecret = try key.seal(credentials.apiSecret, tenant: tenant, connection: id, field: "api_secret")
        let granted = String(decoding: try JSONEncoder().encode(permissions), as: UTF8.self)
        let sql: SQL = try """
            UPDATE crypto_connections SET api_key_sealed = \(sealedKey), api_secret_sealed = \(sealedSecret), key_version = \(key.version),
                key_fingerprint = \(fingerprint(of: credentials.apiKey)), key_last4 = \(String(credentials.apiKey.suffix(4))),
                permissions = \(granted)::jsonb, state = 'active', last_error = NULL, next_sync_at = now(), updated_at = now()
            WHERE id = \(id)
            RETURNING \(unescaped: table.columns)
            """
        return try await transaction.lastStatement { try await table.one(sql, on: transaction) }
    }

    /// The key and secret of connection `id` (its `api_key_sealed`, `api_secret_sealed`,
    /// sealed under data-key `version`), opened: for a sync run alone.
    static func credentials(
        of id: UUID, sealedKey: Data, sealedSecret: Data, version: Int, sealer: Sealer, on transaction: TenantTransaction
    ) async throws -> ExchangeCredentials {
        let key = try await TenantKeys.version(version, sealer: sealer, on: transaction)
        return ExchangeCredentials(
            apiKey: try key.open(sealedKey, tenant: transaction.tenantID, connection: id, field: "api_key"),
            apiSecret: try key.open(sealedSecret, tenant: transaction.tenantID, connection: id, field: "api_secret"))
    }
}
