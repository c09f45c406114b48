import AtriumCore
import Crypto
import Foundation
import PostgresNIO

/// Rotating a tenant's data key (`atrium crypto rotate-keys`): a new version becomes the
/// active one (new secrets are sealed under it at once), the previous one is retired, and
/// every secret is re-sealed under the new version in batches of 500 connections, a
/// transaction each; a retired version no secret uses any more is deleted, its key
/// destroyed. Rows name their version, so creates and syncs go on throughout, and a run
/// that finds a rotation unfinished (killed, or a secret that would not open) finishes
/// it instead of starting another.
///
/// `rewrapOnly` touches no secret: it re-wraps the data keys themselves under the current
/// master key (what `atrium keys rotate-master` does through `rewrapSecrets`).
enum KeyRotation {
    struct Report: Codable, Sendable {
        var tenant: String
        /// Data keys re-wrapped under the current master key.
        var rewrapped = 0
        /// The version new secrets are sealed under after the run.
        var activeVersion: Int?
        /// Whether this run added that version (false: it finished an earlier rotation, or
        /// the tenant has no secrets).
        var addedVersion = false
        var resealed = 0
        /// Connections whose secrets did not open: left as they were, named for the operator.
        var failed: [UUID] = []
        var deletedVersions: [Int] = []
        var dryRun = false
    }

    static let batchSize = 500

    /// Lowercase hex, as `decode(…, 'hex')` reads it (a table lookup: a rotation writes
    /// two per connection).
    static func hex(_ data: Data) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(data.count * 2)
        for byte in data {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Re-wraps every data key of the transaction's tenant not under `sealer`'s current
    /// key; returns how many (none changed with `dryRun`).
    static func rewrap(sealer: Sealer, dryRun: Bool = false, on transaction: TenantTransaction) async throws -> Int {
        let rows = try await transaction.query("SELECT version, wrapped FROM crypto_data_keys ORDER BY version FOR UPDATE")
        var changed = 0
        for row in rows {
            let (version, wrapped) = try row.decode((Int, Data).self)
            guard let rewrapped = try sealer.rewrap(wrapped) else { continue }
            changed += 1
            if dryRun { continue }
            try await transaction.query(
                "UPDATE crypto_data_keys SET wrapped = \(rewrapped), kek_id = \(sealer.currentKeyID) WHERE version = \(version)")
        }
        return changed
    }

    static func run(tenant slug: String, rewrapOnly: Bool, dryRun: Bool, context: JobContext) async throws -> Report {
        let sealer = context.module.sealer
        var report = Report(tenant: slug, dryRun: dryRun)
        report.rewrapped = try await context.transaction(seesAllOwners: true) { try await rewrap(sealer: sealer, dryRun: dryRun, on: $0) }
        if rewrapOnly { return report }

        // The version to seal under: a new one, unless an earlier rotation is unfinished.
        let (active, added, pending) = try await context.transaction(seesAllOwners: true) { transaction -> (Int?, Bool, Int) in
            let current = try await transaction.query("SELECT version FROM crypto_data_keys WHERE state = 'active' FOR UPDATE").first?.decode(Int.self)
            guard let current else { return (nil, false, 0) }
            let behind = try await transaction.query("SELECT count(*)::int FROM crypto_connections WHERE key_version <> \(current)").first?.decode(Int.self) ?? 0
            let total = try await transaction.query("SELECT count(*)::int FROM crypto_connections").first?.decode(Int.self) ?? 0
            if behind > 0 || total == 0 { return (current, false, behind) }
            let next = (try await transaction.query("SELECT max(version) FROM crypto_data_keys").first?.decode(Int.self) ?? current) + 1
            if dryRun { return (next, true, total) }
            let fresh = SymmetricKey(size: .bits256)
            let wrapped = try sealer.seal(fresh.withUnsafeBytes { Data($0) }, associatedData: Data(TenantKeys.associatedData(tenant: transaction.tenantID, version: next).utf8))
            try await transaction.query("UPDATE crypto_data_keys SET state = 'retired' WHERE version = \(current)")
            try await transaction.query(
                "INSERT INTO crypto_data_keys (tenant_id, version, kek_id, wrapped) VALUES (\(transaction.tenantID), \(next), \(sealer.currentKeyID), \(wrapped))")
            return (next, true, total)
        }
        report.activeVersion = active
        report.addedVersion = added
        guard let active else { return report }
        if dryRun {
            report.resealed = pending
            return report
        }

        // Batches of secrets not yet under the active version, each in its own transaction.
        while true {
            let skipped = report.failed
            let batch = try await context.transaction(seesAllOwners: true) { transaction -> (resealed: Int, failed: [UUID]) in
                let rows = try await transaction.query(
                    """
                    SELECT id, api_key_sealed, api_secret_sealed, key_version FROM crypto_connections
                    WHERE key_version <> \(active) AND NOT (id = ANY(\(skipped)::uuid[]))
                    ORDER BY id LIMIT \(batchSize) FOR UPDATE
                    """)
                let target = try await TenantKeys.version(active, sealer: sealer, on: transaction)
                var keys: [Int: DataKey] = [:]
                // Sealed bytes travel as hex: bytea arrays have no binding here.
                var ids: [UUID] = [], sealedKeys: [String] = [], sealedSecrets: [String] = []
                var failed: [UUID] = []
                for row in rows {
                    let (id, sealedKey, sealedSecret, version) = try row.decode((UUID, Data, Data, Int).self)
                    do {
                        let key: DataKey
                        if let known = keys[version] {
                            key = known
                        } else {
                            key = try await TenantKeys.version(version, sealer: sealer, on: transaction)
                            keys[version] = key
                        }
                        let tenant = transaction.tenantID
                        let apiKey = try key.open(sealedKey, tenant: tenant, connection: id, field: "api_key")
                        let apiSecret = try key.open(sealedSecret, tenant: tenant, connection: id, field: "api_secret")
                        sealedKeys.append(hex(try target.seal(apiKey, tenant: tenant, connection: id, field: "api_key")))
                        sealedSecrets.append(hex(try target.seal(apiSecret, tenant: tenant, connection: id, field: "api_secret")))
                        ids.append(id)
                    } catch let error as CryptoKeyError {
                        context.logger.error("a connection's secret does not open", metadata: ["connection": "\(id)", "error": "\(error)"])
                        failed.append(id)
                    }
                }
                if !ids.isEmpty {
                    try await transaction.query(
                        """
                        UPDATE crypto_connections c
                        SET api_key_sealed = decode(r.api_key, 'hex'), api_secret_sealed = decode(r.api_secret, 'hex'), key_version = \(active)
                        FROM unnest(\(ids)::uuid[], \(sealedKeys)::text[], \(sealedSecrets)::text[]) AS r (id, api_key, api_secret)
                        WHERE c.id = r.id
                        """)
                }
                return (ids.count, failed)
            }
            report.resealed += batch.resealed
            report.failed += batch.failed
            if batch.resealed + batch.failed.count == 0 { break }
        }

        // Retired versions nothing is sealed under any more go, their keys with them.
        let done = report
        report.deletedVersions = try await context.transaction(seesAllOwners: true) { transaction in
            let deleted = try await transaction.query(
                """
                DELETE FROM crypto_data_keys k WHERE k.state = 'retired'
                  AND NOT EXISTS (SELECT 1 FROM crypto_connections c WHERE c.key_version = k.version)
                RETURNING version
                """
            ).map { try $0.decode(Int.self) }
            try await AuditLog(logger: context.logger).record(
                "crypto.keys.rotated", tenantID: transaction.tenantID, actor: .init(type: .operator), subject: "data-key:\(active)",
                details: [
                    "active_version": .number(Double(active)), "added_version": .bool(added), "resealed": .number(Double(done.resealed)),
                    "rewrapped": .number(Double(done.rewrapped)), "failed": .array(done.failed.map { .string($0.uuidString.lowercased()) }),
                    "deleted_versions": .array(deleted.map { .number(Double($0)) }),
                ],
                on: transaction.connection)
            return deleted.sorted()
        }
        return report
    }
}
