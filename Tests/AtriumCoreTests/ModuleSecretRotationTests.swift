import AtriumCore
import AtriumTesting
import Foundation
import Logging
import PostgresNIO
import Testing

/// A module that keeps one sealed secret per row, and re-wraps them when asked.
struct VaultModule: AtriumModule {
    var id: String { "vault" }
    var version: String { "1.0.0" }
    var requiredKernelVersion: String { "0.1" }
    func routes(_ routes: ModuleRoutes) {}

    func migrations() throws -> [Migration] {
        [Migration(owner: "vault", version: 1, fileName: "0001_secrets.sql", sql: """
            CREATE TABLE vault_secrets (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                name text NOT NULL,
                sealed bytea NOT NULL,
                PRIMARY KEY (tenant_id, name)
            );
            CALL atrium_tenant_table('vault_secrets');
            """)]
    }

    func rewrapSecrets(_ sealer: Sealer, on transaction: TenantTransaction) async throws -> Int {
        var changed = 0
        for row in try await transaction.connection.query("SELECT name, sealed FROM vault_secrets", logger: transaction.logger).collect() {
            let (name, sealed) = try row.decode((String, Data).self)
            guard let rewrapped = try sealer.rewrap(sealed) else { continue }
            try await transaction.connection.query("UPDATE vault_secrets SET sealed = \(rewrapped) WHERE name = \(name)", logger: transaction.logger)
            changed += 1
        }
        return changed
    }
}

@Suite struct ModuleSecretRotationTests {
    @Test func rotationRewrapsEveryTenantsModuleSecretsOnce() async throws {
        let logger = TestDatabase.logger
        let db = try await TestDatabase.create(modules: [VaultModule()])
        let tenants = [try await db.createTenant("acme", modules: ["vault"]), try await db.createTenant("globex")]
        let (old, new) = (MasterKey.generate(), MasterKey.generate())
        let oldSealer = old.sealer(scope: "module:vault")
        for tenant in tenants {
            try await db.withOwner { connection in
                try await connection.withTenantTransaction(tenant.id, logger: logger) { connection in
                    let sealed = try oldSealer.seal("secret of \(tenant.slug)", associatedData: tenant.id.uuidString)
                    try await connection.query("INSERT INTO vault_secrets (tenant_id, name, sealed) VALUES (\(tenant.id), 'api', \(sealed))", logger: logger)
                }
            }
        }
        let registry = try ModuleRegistry([VaultModule()])
        let rotation = MasterKeyRotation(masterKey: new.retiring([old]), registry: registry, logger: logger)
        let first = try await db.withOwner { try await rotation.run(on: $0) }
        #expect(first.moduleSecrets == ["vault": 2])
        #expect(first.hashingRoot == "stored")
        let second = try await db.withOwner { try await rotation.run(on: $0) }
        #expect(second.resealed == 0)
        #expect(second.hashingRoot == "unchanged")
        // The new key alone opens every tenant's secret.
        let newSealer = new.sealer(scope: "module:vault")
        for tenant in tenants {
            let sealed = try await db.withOwner { connection in
                try await connection.withTenantTransaction(tenant.id, logger: logger) { connection in
                    try await connection.query("SELECT sealed FROM vault_secrets", logger: logger).first().decode(Data.self)
                }
            }
            #expect(try newSealer.open(sealed, associatedData: tenant.id.uuidString) == "secret of \(tenant.slug)")
        }
    }
}
