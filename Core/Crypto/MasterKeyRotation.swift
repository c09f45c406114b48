import Crypto
import Foundation
public import Logging
public import PostgresNIO

extension MasterKey {
    static let hashingRootName = "hashing-root"
    static let hashingRootContext = "kernel-key:hashing-root"

    /// This key with the hashing root a rotation stored (see `hashingRoot`), read from
    /// `kernel_keys`. Every process that hashes tokens or signs links loads it at start;
    /// before the first rotation there is none and the master key is the root.
    public func loadingHashingRoot(on connection: PostgresConnection, logger: Logger) async throws -> MasterKey {
        let row = try await connection.query(
            "SELECT sealed FROM kernel_keys WHERE name = \(Self.hashingRootName)", logger: logger
        ).collect().first
        guard let sealed = try row?.decode(Data.self) else {
            // Not rotated yet. A server restarted with a new key (and the old one as
            // previous) before `rotate-master` ran keeps hashing under the old one, as
            // that run will store it.
            guard let previous = retired.first else { return self }
            guard retired.count == 1 else {
                throw ConfigurationError("ATRIUM_MASTER_KEY_PREVIOUS names several keys but no rotation has run: name only the key in use until now")
            }
            var loaded = self
            loaded.hashingRoot = previous
            return loaded
        }
        let raw: Data
        do {
            raw = try open(sealed, context: Self.hashingRootContext)
        } catch {
            throw ConfigurationError(
                "ATRIUM_MASTER_KEY does not open the kernel's keys: after a rotation, set the key in use before as ATRIUM_MASTER_KEY_PREVIOUS")
        }
        var loaded = self
        loaded.hashingRoot = SymmetricKey(data: raw)
        return loaded
    }
}

/// Moves every secret sealed under a retired master key to the current one:
/// `atrium keys rotate-master`, run after setting the new key as `ATRIUM_MASTER_KEY` and
/// the old one as `ATRIUM_MASTER_KEY_PREVIOUS`.
///
/// It re-seals the kernel's secrets (signing keys; per tenant, TOTP secrets, OIDC client
/// secrets and webhook secrets) and asks each module to re-wrap its own
/// (`AtriumModule.rewrapSecrets`), one tenant per transaction. A value already under the
/// current key is left alone, so a run that stopped half way is finished by running it
/// again, and a second run changes nothing. Token hashes and link signatures do not
/// change: they are keyed by the hashing root, which the first rotation stores (the key
/// they were made with, sealed) and later rotations re-seal.
public struct MasterKeyRotation: Sendable {
    public struct Report: Sendable, Equatable, Codable {
        public var hashingRoot: String = "unchanged"
        public var signingKeys = 0
        public var totpSecrets = 0
        public var oidcSecrets = 0
        public var webhookSecrets = 0
        public var moduleSecrets: [String: Int] = [:]

        public var resealed: Int { signingKeys + totpSecrets + oidcSecrets + webhookSecrets + moduleSecrets.values.reduce(0, +) }
    }

    let masterKey: MasterKey
    let registry: ModuleRegistry
    let logger: Logger

    public init(masterKey: MasterKey, registry: ModuleRegistry, logger: Logger) {
        self.masterKey = masterKey
        self.registry = registry
        self.logger = logger
    }

    /// Runs the rotation on an owner-role connection.
    public func run(on connection: PostgresConnection) async throws -> Report {
        var report = Report()
        report.hashingRoot = try await rotateHashingRoot(on: connection)
        for row in try await connection.query("SELECT kid, private_key_sealed FROM signing_keys", logger: logger).collect() {
            let (kid, sealed) = try row.decode((String, Data).self)
            if let resealed = try masterKey.reseal(sealed, context: SigningKeyring.sealContext(kid: kid)) {
                try await connection.query("UPDATE signing_keys SET private_key_sealed = \(resealed) WHERE kid = \(kid)", logger: logger)
                report.signingKeys += 1
            }
        }
        for tenant in try await TenantStore(logger: logger).list(on: connection) {
            let counts = try await connection.withTenantTransaction(tenant.id, logger: logger) { connection in
                try await rotateTenant(tenant.id, on: connection)
            }
            report.totpSecrets += counts.totp
            report.oidcSecrets += counts.oidc
            report.webhookSecrets += counts.webhook
            for (module, count) in counts.modules { report.moduleSecrets[module, default: 0] += count }
            logger.info("tenant secrets re-sealed", metadata: ["tenant": "\(tenant.slug)"])
        }
        return report
    }

    private func rotateHashingRoot(on connection: PostgresConnection) async throws -> String {
        let row = try await connection.query(
            "SELECT sealed FROM kernel_keys WHERE name = \(MasterKey.hashingRootName) FOR UPDATE", logger: logger
        ).collect().first
        if let sealed = try row?.decode(Data.self) {
            guard let resealed = try masterKey.reseal(sealed, context: MasterKey.hashingRootContext) else { return "unchanged" }
            try await connection.query(
                "UPDATE kernel_keys SET sealed = \(resealed), updated_at = now() WHERE name = \(MasterKey.hashingRootName)", logger: logger)
            return "re-sealed"
        }
        // First rotation: tokens so far were hashed under the key in use before this one.
        guard masterKey.retired.count <= 1 else {
            throw ConfigurationError(
                "the first rotation needs exactly one previous key: set ATRIUM_MASTER_KEY_PREVIOUS to the key in use until now")
        }
        let root = (masterKey.retired.first ?? masterKey.key).withUnsafeBytes { Data($0) }
        try await connection.query(
            """
            INSERT INTO kernel_keys (name, sealed) VALUES (\(MasterKey.hashingRootName), \(try masterKey.seal(root, context: MasterKey.hashingRootContext)))
            """, logger: logger)
        return "stored"
    }

    struct TenantCounts {
        var totp = 0
        var oidc = 0
        var webhook = 0
        var modules: [String: Int] = [:]
    }

    private func rotateTenant(_ tenantID: UUID, on connection: PostgresConnection) async throws -> TenantCounts {
        var counts = TenantCounts()
        for row in try await connection.query("SELECT user_id, secret_sealed FROM user_totp", logger: logger).collect() {
            let (userID, sealed) = try row.decode((UUID, Data).self)
            if let resealed = try masterKey.reseal(sealed, context: TOTPService.sealContext(tenantID: tenantID, userID: userID)) {
                try await connection.query("UPDATE user_totp SET secret_sealed = \(resealed) WHERE user_id = \(userID)", logger: logger)
                counts.totp += 1
            }
        }
        for row in try await connection.query("SELECT name, client_secret_sealed FROM oidc_providers", logger: logger).collect() {
            let (name, sealed) = try row.decode((String, Data).self)
            if let resealed = try masterKey.reseal(sealed, context: OIDCLogin.sealContext(tenantID: tenantID, provider: name)) {
                try await connection.query("UPDATE oidc_providers SET client_secret_sealed = \(resealed) WHERE name = \(name)", logger: logger)
                counts.oidc += 1
            }
        }
        for row in try await connection.query("SELECT secret_sealed FROM webhook_endpoints", logger: logger).collect() {
            let sealed = try row.decode(Data.self)
            if let resealed = try masterKey.reseal(sealed, context: Webhooks.sealContext(tenantID)) {
                try await connection.query("UPDATE webhook_endpoints SET secret_sealed = \(resealed)", logger: logger)
                counts.webhook += 1
            }
        }
        try await connection.scopeToAllOwners(logger: logger)
        let transaction = TenantTransaction(
            connection: connection, tenantID: tenantID, principalID: nil, logger: logger, jobs: JobQueue(logger: logger),
            metering: Metering(registry: registry, logger: logger), channels: registry.channels)
        for module in registry.modules {
            let rewrapped = try await module.rewrapSecrets(masterKey.sealer(scope: "module:\(module.id)"), on: transaction)
            if rewrapped > 0 { counts.modules[module.id, default: 0] += rewrapped }
        }
        return counts
    }
}

extension MasterKey {
    /// The master key of the environment (`ATRIUM_MASTER_KEY`, `ATRIUM_MASTER_KEY_PREVIOUS`,
    /// or the embedded database's key file) with its hashing root loaded: what every
    /// command and server uses, so none hashes a token under the wrong key.
    public static func load(environment: [String: String], location: DatabaseLocation, logger: Logger) async throws -> MasterKey {
        let key = try load(environment: environment, dataDirectory: location.embedded?.dataDirectory)
        return try await withPostgresConnection(location.owner, logger: logger) { connection in
            try await key.loadingHashingRoot(on: connection, logger: logger)
        }
    }
}
