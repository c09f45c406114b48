import AtriumCore
import AtriumTesting
import Foundation
import Logging
import PostgresNIO
import Testing

/// A module that keeps one sealed secret per row, and re-wraps them when asked.
struct VaultModule: AtriumModule {
    /// A tenant whose re-wrap fails, as a rotation interrupted half way would.
    var failingTenant: UUID?
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
        struct Interrupted: Error {}
        if transaction.tenantID == failingTenant { throw Interrupted() }
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
    let logger = TestDatabase.logger

    /// Two tenants, each with one vault secret sealed under `old`.
    func tenantsWithSecrets(_ db: TestDatabase, sealedUnder old: MasterKey) async throws -> [Tenant] {
        let tenants = [try await db.createTenant("acme", modules: ["vault"]), try await db.createTenant("globex")]
        let oldSealer = old.sealer(scope: "module:vault")
        for tenant in tenants {
            try await db.withOwner { connection in
                try await connection.withTenantTransaction(tenant.id, logger: logger) { connection in
                    let sealed = try oldSealer.seal("secret of \(tenant.slug)", associatedData: tenant.id.uuidString)
                    try await connection.query("INSERT INTO vault_secrets (tenant_id, name, sealed) VALUES (\(tenant.id), 'api', \(sealed))", logger: logger)
                }
            }
        }
        return tenants
    }

    /// Each tenant's secret opens under `new` alone.
    func expectOpens(_ db: TestDatabase, _ tenants: [Tenant], under new: MasterKey) async throws {
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

    @Test func rotationRewrapsEveryTenantsModuleSecretsOnce() async throws {
        let db = try await TestDatabase.create(modules: [VaultModule()])
        let (old, new) = (MasterKey.generate(), MasterKey.generate())
        let tenants = try await tenantsWithSecrets(db, sealedUnder: old)
        let registry = try ModuleRegistry([VaultModule()])
        let rotation = MasterKeyRotation(masterKey: new.retiring([old]), registry: registry, logger: logger)
        let first = try await db.withOwner { try await rotation.run(on: $0) }
        #expect(first.moduleSecrets == ["vault": 2])
        #expect(first.hashingRoot == "stored")
        let second = try await db.withOwner { try await rotation.run(on: $0) }
        #expect(second.resealed == 0)
        #expect(second.hashingRoot == "unchanged")
        // The new key alone opens every tenant's secret.
        try await expectOpens(db, tenants, under: new)
    }

    /// The README's promise: a rotation that stopped half way (one tenant committed, the
    /// next failed) is finished by running it again, which re-seals only what is left.
    @Test func aRerunFinishesAnInterruptedRotation() async throws {
        let db = try await TestDatabase.create(modules: [VaultModule()])
        let (old, new) = (MasterKey.generate(), MasterKey.generate())
        let tenants = try await tenantsWithSecrets(db, sealedUnder: old)
        let key = new.retiring([old])
        let order = try await db.withOwner { try await TenantStore(logger: logger).list(on: $0).map(\.id) }
        let last = try #require(order.last)
        let interrupted = MasterKeyRotation(masterKey: key, registry: try ModuleRegistry([VaultModule(failingTenant: last)]), logger: logger)
        await #expect(throws: (any Error).self) { try await db.withOwner { try await interrupted.run(on: $0) } }

        let rotation = MasterKeyRotation(masterKey: key, registry: try ModuleRegistry([VaultModule()]), logger: logger)
        let rerun = try await db.withOwner { try await rotation.run(on: $0) }
        #expect(rerun.moduleSecrets == ["vault": 1], "only the interrupted tenant's secret was left")
        #expect(rerun.hashingRoot == "unchanged", "the interrupted run had stored it")
        try await expectOpens(db, tenants, under: new)
        #expect(try await db.withOwner { try await rotation.run(on: $0) }.resealed == 0)
    }
}
