import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Testing

@testable import AtriumCrypto

/// Rotating a tenant's data key while syncs run: every secret re-sealed under the new
/// version, the old key destroyed, syncs undisturbed; a secret that will not open (sealed
/// for another row) is named and left, and the next run finishes the rotation; a master-key
/// rotation re-wraps the data keys only.
@Suite struct KeyRotationTests {
    static let base = SyncTests.base

    func sealed(_ db: TestDatabase, _ tenant: Tenant) async throws -> [UUID: (Data, Int)] {
        try await db.withOwner { connection in
            try await connection.query(
                "SELECT set_config('app.tenant_id', \(tenant.id.uuidString), false), set_config('app.owner_scope', 'any', false)", logger: TestDatabase.logger)
            var rows: [UUID: (Data, Int)] = [:]
            for try await (id, secret, version) in try await connection.query(
                "SELECT id, api_secret_sealed, key_version FROM crypto_connections", logger: TestDatabase.logger
            ).decode((UUID, Data, Int).self) { rows[id] = (secret, version) }
            return rows
        }
    }

    func versions(_ db: TestDatabase, _ tenant: Tenant) async throws -> [String] {
        try await db.withOwner { connection in
            try await connection.query(
                "SELECT set_config('app.tenant_id', \(tenant.id.uuidString), false)", logger: TestDatabase.logger)
            return try await connection.query("SELECT version || ':' || state FROM crypto_data_keys ORDER BY version", logger: TestDatabase.logger)
                .collect().map { try $0.decode(String.self) }
        }
    }

    @Test func aRotationReSealsEverySecretWhileSyncsRunAndFinishesAfterAFailure() async throws {
        try await ExchangeSimulator.with { exchange in
            let letters = ["P", "Q", "R"]
            for letter in letters {
                try await exchange.account(key: String(repeating: letter, count: 64), secret: SyncTests.secret, balances: ["BTC": "1", "USDT": "10"])
            }
            try await SyncTests.withAnn(exchange) { client, db, tenant, token, environment in
                var created: [UUID] = []
                for letter in letters {
                    let made = try await client.send(
                        .post, Self.base + "/connections", token: token,
                        json: #"{"exchange":"binance","label":"\#(letter)","api_key":"\#(String(repeating: letter, count: 64))","api_secret":"\#(SyncTests.secret)"}"#)
                    created.append(try #require(json(made)["id"]?.string.flatMap(UUID.init(uuidString:))))
                }
                let ids = created
                let before = try await sealed(db, tenant)
                #expect(Set(before.values.map(\.1)) == [1])
                func sync(_ id: UUID) async throws {
                    try await db.withApp { database in
                        try await runJob(
                            CryptoSync.kind, of: CryptoModule(), tenantID: tenant.id, payload: .init(connection: id, full: true), database: database,
                            environment: environment, masterKey: db.masterKey)
                    }
                }
                func rotate() async throws -> KeyRotation.Report {
                    try await db.withApp { database in
                        let context = try jobContext("crypto.command", of: CryptoModule(), tenantID: tenant.id, database: database, masterKey: db.masterKey)
                        return try await KeyRotation.run(tenant: "coin", rewrapOnly: false, dryRun: false, context: context)
                    }
                }

                // A dry run changes nothing.
                let dry = try await db.withApp { database in
                    let context = try jobContext("crypto.command", of: CryptoModule(), tenantID: tenant.id, database: database, masterKey: db.masterKey)
                    return try await KeyRotation.run(tenant: "coin", rewrapOnly: false, dryRun: true, context: context)
                }
                #expect(dry.resealed == 3 && dry.activeVersion == 2)
                #expect(try await versions(db, tenant) == ["1:active"])

                // Rotation and syncs at once.
                let report = try await withThrowingTaskGroup(of: KeyRotation.Report?.self) { group in
                    group.addTask { try await rotate() }
                    for id in ids { group.addTask { try await sync(id); return nil } }
                    return try await group.reduce(into: [KeyRotation.Report]()) { if let report = $1 { $0.append(report) } }.first
                }
                #expect(report?.resealed == 3 && report?.addedVersion == true && report?.deletedVersions == [1], "\(String(describing: report))")
                let after = try await sealed(db, tenant)
                #expect(Set(after.values.map(\.1)) == [2])
                #expect(after.allSatisfy { $0.value.0 != before[$0.key]?.0 }, "every secret sealed anew")
                #expect(try await versions(db, tenant) == ["2:active"], "version 1 and its key are gone")
                let runs = try await SyncTests().count(db, "SELECT count(*)::int FROM crypto_sync_runs WHERE outcome = 'succeeded'")
                #expect(runs == 3, "the syncs ran through the rotation")
                try await sync(ids[0])
                #expect(try await SyncTests().count(db, "SELECT count(*)::int FROM crypto_sync_runs WHERE outcome = 'succeeded'") == 4, "the new seal opens")

                // A secret moved from another row does not open (its associated data names
                // its own connection): named, left, and the old key kept for it.
                try await db.withOwner { connection in
                    try await connection.query(
                        "SELECT set_config('app.tenant_id', \(tenant.id.uuidString), false), set_config('app.owner_scope', 'any', false)", logger: TestDatabase.logger)
                    try await connection.query(
                        """
                        UPDATE crypto_connections SET api_secret_sealed = (SELECT api_secret_sealed FROM crypto_connections WHERE id = \(ids[1]))
                        WHERE id = \(ids[0])
                        """, logger: TestDatabase.logger)
                }
                let broken = try await rotate()
                #expect(broken.failed == [ids[0]] && broken.resealed == 2 && broken.deletedVersions.isEmpty, "\(broken)")
                #expect(try await versions(db, tenant) == ["2:retired", "3:active"])
                // A sync meanwhile cannot open it either: the connection waits for new
                // credentials and the job ends (no retries, no dead job).
                try await sync(ids[0])
                let waiting = json(try await client.send(.get, Self.base + "/connections/\(ids[0])", token: token))
                #expect(waiting["state"]?.string == "auth_failed" && waiting["last_error"]?.string?.contains("does not open") == true, "\(waiting)")

                // Put right, the next run finishes the rotation instead of starting another.
                try await db.withOwner { connection in
                    try await connection.query(
                        "SELECT set_config('app.tenant_id', \(tenant.id.uuidString), false), set_config('app.owner_scope', 'any', false)", logger: TestDatabase.logger)
                    try await connection.query(
                        "UPDATE crypto_connections SET api_secret_sealed = \(after[ids[0]]?.0 ?? Data()) WHERE id = \(ids[0])", logger: TestDatabase.logger)
                }
                let finished = try await rotate()
                #expect(finished.addedVersion == false && finished.resealed == 1 && finished.deletedVersions == [2], "\(finished)")
                #expect(try await versions(db, tenant) == ["3:active"])
                let audited = try await SyncTests().count(db, "SELECT count(*)::int FROM audit_events WHERE action = 'crypto.keys.rotated'")
                #expect(audited == 3)

                // A master-key rotation re-wraps the data key; the secrets stay as they are.
                let newMaster = MasterKey.generate()
                let rotation = MasterKeyRotation(masterKey: newMaster.retiring([db.masterKey]), registry: try ModuleRegistry([CryptoModule()]), logger: TestDatabase.logger)
                let resealedSecrets = try await sealed(db, tenant)
                _ = try await db.withOwner { try await rotation.run(on: $0) }
                #expect(try await sealed(db, tenant).allSatisfy { $0.value.0 == resealedSecrets[$0.key]?.0 })
                try await db.withApp { database in
                    try await runJob(
                        CryptoSync.kind, of: CryptoModule(), tenantID: tenant.id, payload: .init(connection: ids[2], full: true), database: database,
                        environment: environment, masterKey: newMaster)
                }
                let last = json(try await client.send(.get, Self.base + "/connections/\(ids[2])/runs", token: token))["data"]?.array?.first
                #expect(last?["outcome"]?.string == "succeeded", "opens under the new master key alone")

                // After connecting, syncing, failing and rotating: no key or secret as text
                // in any row of any table (job payloads, audit, runs, usage included).
                let everything = try await db.withOwner { connection in
                    try await connection.query(
                        "SELECT set_config('app.tenant_id', \(tenant.id.uuidString), false), set_config('app.owner_scope', 'any', false)", logger: TestDatabase.logger)
                    let tables = try await connection.query(
                        "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", logger: TestDatabase.logger
                    ).collect().map { try $0.decode(String.self) }
                    var text = ""
                    for table in tables {
                        let rows = try await connection.query(
                            PostgresQuery(unsafeSQL: "SELECT coalesce(string_agg(t::text, ' '), '') FROM \(table) t"), logger: TestDatabase.logger)
                        text += try await rows.collect().first?.decode(String.self) ?? ""
                    }
                    return (tables.count, text)
                }
                #expect(everything.0 > 30 && everything.1.contains("crypto.keys.rotated"), "the scan reads the audit log too")
                for letter in letters { #expect(!everything.1.contains(String(repeating: letter, count: 64))) }
                #expect(!everything.1.contains(SyncTests.secret))
            }
        }
    }
}
