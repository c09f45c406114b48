import Crypto
import Foundation
import JWTKit
public import Logging
import PostgresNIO

/// The Ed25519 keys that sign and verify access tokens, kept in PostgreSQL (private keys
/// sealed with the master key) and cached in memory.
///
/// Every server signs with the newest active key. A token whose `kid` is unknown makes
/// the keyring reload once (rate-limited), so a key rotated on another server verifies
/// here too; a retired key keeps verifying until its last tokens have expired.
public actor SigningKeyring {
    struct StoredKey: Sendable {
        var kid: String
        var privateKey: Curve25519.Signing.PrivateKey
        var createdAt: Date
        var retired: Bool
    }

    let database: Database
    let masterKey: MasterKey
    let logger: Logger
    private var keys: JWTKeyCollection = JWTKeyCollection()
    private var stored: [StoredKey] = []
    private var loadedAt: ContinuousClock.Instant?
    private var refresh: Task<Void, Never>?

    public init(database: Database, masterKey: MasterKey, logger: Logger) {
        // Reloaded while a request holds its connection: from the shared pool.
        self.database = database.sharedPoolOnly
        self.masterKey = masterKey
        self.logger = logger
    }

    /// Loads the keys, creating the first one when there is none. Called lazily on first
    /// use, so building the keyring needs no running database.
    public func prepare() async throws {
        guard loadedAt == nil || activeKey == nil else { return }
        try await reload()
        if activeKey == nil {
            try await rotate()
        }
    }

    /// Adds a new signing key; the previous ones keep verifying for `overlap`.
    @discardableResult
    public func rotate(overlap: Duration = .seconds(3600)) async throws -> String {
        let key = Curve25519.Signing.PrivateKey()
        let kid = "atr-" + SecureRandom.hex(bytes: 8)
        let sealed = try masterKey.seal(key.rawRepresentation, context: Self.sealContext(kid: kid))
        let overlapSeconds = Double(overlap.components.seconds)
        try await database.withTransaction(logger: logger) { connection in
            try await connection.query(
                """
                UPDATE signing_keys SET retired_at = now(), verify_until = now() + make_interval(secs => \(overlapSeconds))
                WHERE retired_at IS NULL
                """, logger: logger)
            try await connection.query(
                "INSERT INTO signing_keys (kid, public_key, private_key_sealed) VALUES (\(kid), \(Data(key.publicKey.rawRepresentation)), \(sealed))",
                logger: logger)
        }
        logger.notice("signing key added", metadata: ["key.id": "\(kid)"])
        try await reload()
        return kid
    }

    /// Signs `claims` with the newest active key.
    public func sign(_ claims: AccessTokenClaims) async throws -> String {
        try await prepare()
        // A key rotated on another server is picked up within a minute, by a reload in the
        // background: signing runs inside the caller's transaction, and waiting there for a
        // second pooled connection could exhaust the pool under a burst of sign-ins.
        if let loadedAt, ContinuousClock.now - loadedAt > .seconds(60), refresh == nil {
            refresh = Task {
                do { try await self.reload() } catch {
                    logger.warning("signing keys not reloaded; retrying on a later sign-in", metadata: ["error": "\(String(reflecting: error))"])
                }
                self.refreshEnded()
            }
        }
        guard let active = activeKey else { throw ConfigurationError("no active signing key") }
        return try await keys.sign(claims, kid: JWKIdentifier(string: active.kid))
    }

    /// Tokens verified before, until they expire; read without entering the actor.
    nonisolated let verified = VerifiedTokenCache()

    /// Verifies signature, algorithm and expiry; nil for any token that is not one of ours.
    /// A token verified before is answered from memory (`VerifiedTokenCache`).
    public nonisolated func verify(_ token: String) async -> AccessTokenClaims? {
        let now = Date()
        if let claims = verified.claims(of: token, now: now) { return claims }
        guard let claims = await verifySignature(token) else { return nil }
        verified.remember(token, claims: claims, now: now)
        return claims
    }

    private func verifySignature(_ token: String) async -> AccessTokenClaims? {
        guard (try? await prepare()) != nil else { return nil }
        guard let header = Self.header(of: token), header.alg == "EdDSA", let kid = header.kid else { return nil }
        if !stored.contains(where: { $0.kid == kid }) {
            // Perhaps another server rotated; look again, at most every few seconds.
            if loadedAt.map({ ContinuousClock.now - $0 > .seconds(5) }) ?? true { try? await reload() }
            guard stored.contains(where: { $0.kid == kid }) else { return nil }
        }
        return try? await keys.verify(token, as: AccessTokenClaims.self)
    }

    /// The public keys as a JWKS document (RFC 7517).
    public func jwks() async throws -> JSONValue {
        try await prepare()
        return .object([
            "keys": .array(stored.map { key in
                .object([
                    "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": .string(key.kid),
                    "x": .string(Base64URL.encode(key.privateKey.publicKey.rawRepresentation)),
                ])
            })
        ])
    }

    // MARK: - Internals

    private func refreshEnded() {
        refresh = nil
        if loadedAt.map({ ContinuousClock.now - $0 > .seconds(60) }) ?? true { loadedAt = .now }  // failed: wait before trying again
    }

    private var activeKey: StoredKey? {
        stored.filter { !$0.retired }.max { $0.createdAt < $1.createdAt }
    }

    private func reload() async throws {
        let rows = try await database.withTransaction(logger: logger) { connection in
            try await connection.query(
                """
                SELECT kid, private_key_sealed, created_at, retired_at IS NOT NULL FROM signing_keys
                WHERE retired_at IS NULL OR verify_until > now()
                """, logger: logger
            ).collect()
        }
        var loaded: [StoredKey] = []
        for row in rows {
            let (kid, sealed, createdAt, retired) = try row.decode((String, Data, Date, Bool).self)
            let raw = try masterKey.open(sealed, context: Self.sealContext(kid: kid))
            loaded.append(StoredKey(kid: kid, privateKey: try Curve25519.Signing.PrivateKey(rawRepresentation: raw), createdAt: createdAt, retired: retired))
        }
        let collection = JWTKeyCollection()
        for key in loaded {
            await collection.add(eddsa: EdDSA.PrivateKey(backing: key.privateKey), kid: JWKIdentifier(string: key.kid))
        }
        keys = collection
        if !Set(stored.map(\.kid)).isSubset(of: loaded.map(\.kid)) { verified.removeAll() }
        stored = loaded
        loadedAt = .now
    }

    struct Header: Decodable {
        var alg: String?
        var kid: String?
    }

    static func header(of token: String) -> Header? {
        guard let first = token.split(separator: ".", omittingEmptySubsequences: false).first,
            let data = Base64URL.decode(String(first))
        else { return nil }
        return try? JSONDecoder().decode(Header.self, from: data)
    }
}

extension SigningKeyring {
    /// What a sealed private signing key is bound to.
    static func sealContext(kid: String) -> String { "signing-key:\(kid)" }
}
