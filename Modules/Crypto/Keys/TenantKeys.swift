import AtriumCore
import Crypto
import Foundation
import PostgresNIO

/// A tenant's data key: 256 random bits that seal the tenant's exchange secrets,
/// itself kept sealed by the module's sealer (`crypto_data_keys`). Rows name the version
/// they were sealed under, so a rotation can add a version while rows sealed under the
/// old one keep opening.
struct DataKey: Sendable {
    let version: Int
    let key: SymmetricKey

    /// What a secret of `connection` in `field` is bound to: sealed for one row and
    /// column of one tenant, it opens nowhere else.
    static func associatedData(tenant: UUID, connection: UUID, field: String) -> Data {
        Data("crypto:v1:\(tenant.uuidString.lowercased()):\(connection.uuidString.lowercased()):\(field)".utf8)
    }

    func seal(_ secret: String, tenant: UUID, connection: UUID, field: String) throws -> Data {
        let box = try AES.GCM.seal(Data(secret.utf8), using: key, authenticating: Self.associatedData(tenant: tenant, connection: connection, field: field))
        guard let combined = box.combined else { throw CryptoKeyError("AES-GCM produced no combined box") }
        return combined
    }

    func open(_ sealed: Data, tenant: UUID, connection: UUID, field: String) throws -> String {
        do {
            let box = try AES.GCM.SealedBox(combined: sealed)
            let plain = try AES.GCM.open(box, using: key, authenticating: Self.associatedData(tenant: tenant, connection: connection, field: field))
            return String(decoding: plain, as: UTF8.self)
        } catch {
            throw CryptoKeyError("the \(field) of connection \(connection.uuidString.lowercased()) does not open (moved from another row, or damaged)")
        }
    }
}

enum TenantKeys {
    /// What the sealer binds a wrapped data key to.
    static func associatedData(tenant: UUID, version: Int) -> String {
        "crypto:data-key:\(tenant.uuidString.lowercased()):\(version)"
    }

    /// The tenant's active data key, made (version 1) on first use. Two first uses at
    /// once both insert; the unique active index keeps one, and both read it back.
    static func active(sealer: Sealer, on transaction: TenantTransaction) async throws -> DataKey {
        if let key = try await readActive(sealer: sealer, on: transaction) { return key }
        let fresh = SymmetricKey(size: .bits256)
        let wrapped = try sealer.seal(fresh.withUnsafeBytes { Data($0) }, associatedData: Data(associatedData(tenant: transaction.tenantID, version: 1).utf8))
        try await transaction.query(
            """
            INSERT INTO crypto_data_keys (tenant_id, version, kek_id, wrapped) VALUES (\(transaction.tenantID), 1, \(sealer.currentKeyID), \(wrapped))
            ON CONFLICT DO NOTHING
            """)
        guard let key = try await readActive(sealer: sealer, on: transaction) else {
            throw CryptoKeyError("the tenant's data key could not be made")
        }
        return key
    }

    /// The data key of `version`, whatever its state: what a row sealed under it opens with.
    static func version(_ version: Int, sealer: Sealer, on transaction: TenantTransaction) async throws -> DataKey {
        let rows = try await transaction.query("SELECT version, wrapped FROM crypto_data_keys WHERE version = \(version)")
        guard let key = try open(rows.first, sealer: sealer, tenant: transaction.tenantID) else {
            throw CryptoKeyError("the tenant has no data key version \(version)")
        }
        return key
    }

    private static func readActive(sealer: Sealer, on transaction: TenantTransaction) async throws -> DataKey? {
        let rows = try await transaction.query("SELECT version, wrapped FROM crypto_data_keys WHERE state = 'active'")
        return try open(rows.first, sealer: sealer, tenant: transaction.tenantID)
    }

    private static func open(_ row: PostgresRow?, sealer: Sealer, tenant: UUID) throws -> DataKey? {
        guard let row else { return nil }
        let (version, wrapped) = try row.decode((Int, Data).self)
        return try open(version: version, wrapped: wrapped, sealer: sealer, tenant: tenant)
    }

    /// The data key of `version` from its wrapped bytes (read with the row it seals).
    static func open(version: Int, wrapped: Data, sealer: Sealer, tenant: UUID) throws -> DataKey {
        let raw = try sealer.open(wrapped, associatedData: Data(associatedData(tenant: tenant, version: version).utf8))
        return DataKey(version: version, key: SymmetricKey(data: raw))
    }
}

/// A key or secret that does not open, or a data key that is missing: named by what it
/// belongs to, never by its bytes.
struct CryptoKeyError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
