public import Crypto
public import Foundation

/// The platform master key: encrypts secrets at rest (signing keys, OIDC client secrets,
/// exchange credentials) and derives the keys that make token hashes unforgeable.
///
/// It comes from `ATRIUM_MASTER_KEY` (32 bytes, base64). With the embedded database and
/// no such variable, one is generated once into `<data>/master.key` (mode 0600), so
/// `make run` needs no setup; losing that file makes the stored secrets unreadable.
public struct MasterKey: Sendable {
    let key: SymmetricKey
    /// Keys this one replaced (`ATRIUM_MASTER_KEY_PREVIOUS`): they still open what they
    /// sealed, and never seal anything new.
    let retired: [SymmetricKey]
    /// The root of the keys that hash tokens and sign links, once a rotation has stored
    /// it (`kernel_keys`, sealed under the master key): hashes of API keys and refresh
    /// tokens must survive a master-key rotation, so they are not keyed by the master key
    /// itself. Nil before the first rotation, when the master key is that root.
    var hashingRoot: SymmetricKey?

    public init(rawKey: Data, previous: [Data] = []) throws(ConfigurationError) {
        guard rawKey.count == 32 else { throw ConfigurationError("the master key must be 32 bytes (base64 in ATRIUM_MASTER_KEY)") }
        guard previous.allSatisfy({ $0.count == 32 }) else {
            throw ConfigurationError("each key in ATRIUM_MASTER_KEY_PREVIOUS must be 32 bytes, base64")
        }
        self.key = SymmetricKey(data: rawKey)
        self.retired = previous.filter { $0 != rawKey }.map { SymmetricKey(data: $0) }
    }

    /// A fresh random key (for tests and first start).
    public static func generate() -> MasterKey {
        MasterKey(key: SymmetricKey(size: .bits256), retired: [])
    }

    init(key: SymmetricKey, retired: [SymmetricKey]) {
        self.key = key
        self.retired = retired
    }

    /// This key, with `previous` kept to open what they sealed (a rotation in progress).
    public func retiring(_ previous: [MasterKey]) -> MasterKey {
        var rotated = MasterKey(key: key, retired: previous.flatMap { [$0.key] + $0.retired })
        rotated.hashingRoot = hashingRoot
        return rotated
    }

    /// Whether `ciphertext` was sealed under the current key (so a rotation leaves it).
    public func isSealedUnderCurrentKey(_ ciphertext: Data, context: String) -> Bool {
        guard let box = try? AES.GCM.SealedBox(combined: ciphertext) else { return false }
        return (try? AES.GCM.open(box, using: key, authenticating: Data(context.utf8))) != nil
    }

    /// `ciphertext` sealed again under the current key, or nil when it already is.
    public func reseal(_ ciphertext: Data, context: String) throws -> Data? {
        guard !isSealedUnderCurrentKey(ciphertext, context: context) else { return nil }
        return try seal(try open(ciphertext, context: context), context: context)
    }

    /// The previous keys of `ATRIUM_MASTER_KEY_PREVIOUS` (comma-separated base64).
    static func previousKeys(_ environment: [String: String]) throws -> [Data] {
        try (environment["ATRIUM_MASTER_KEY_PREVIOUS"] ?? "").split(separator: ",").map { text in
            guard let data = Data(base64Encoded: text.trimmingCharacters(in: .whitespaces)) else {
                throw ConfigurationError("ATRIUM_MASTER_KEY_PREVIOUS is not a comma-separated list of base64 keys")
            }
            return data
        }
    }

    /// Loads the key from the environment or, when `dataDirectory` is given (embedded
    /// database), from its `master.key` file, creating it on first use.
    public static func load(environment: [String: String], dataDirectory: URL?) throws -> MasterKey {
        if let text = environment["ATRIUM_MASTER_KEY"], !text.isEmpty {
            guard let data = Data(base64Encoded: text) else { throw ConfigurationError("ATRIUM_MASTER_KEY is not valid base64") }
            return try MasterKey(rawKey: data, previous: previousKeys(environment))
        }
        guard let dataDirectory else {
            throw ConfigurationError("ATRIUM_MASTER_KEY is required with an external database (32 random bytes, base64: openssl rand -base64 32)")
        }
        let file = dataDirectory.appending(path: "master.key")
        if let text = try? String(contentsOf: file, encoding: .utf8) {
            guard let data = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw ConfigurationError("\(file.path()) does not hold a base64 master key")
            }
            return try MasterKey(rawKey: data, previous: previousKeys(environment))
        }
        let key = generate()
        let encoded = key.key.withUnsafeBytes { Data($0).base64EncodedString() }
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: file.path(), contents: Data((encoded + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ConfigurationError("cannot write \(file.path())")
        }
        return key
    }

    /// Encrypts `plaintext` with AES-256-GCM; `context` is bound as associated data, so a
    /// ciphertext moved to another row or purpose does not decrypt.
    public func seal(_ plaintext: Data, context: String) throws -> Data {
        guard let combined = try AES.GCM.seal(plaintext, using: key, authenticating: Data(context.utf8)).combined else {
            throw ConfigurationError("AES-GCM produced no combined box")
        }
        return combined
    }

    /// Opens what this key or one of its retired keys sealed.
    public func open(_ ciphertext: Data, context: String) throws -> Data {
        let box = try AES.GCM.SealedBox(combined: ciphertext)
        do {
            return try AES.GCM.open(box, using: key, authenticating: Data(context.utf8))
        } catch {
            for candidate in retired {
                if let plaintext = try? AES.GCM.open(box, using: candidate, authenticating: Data(context.utf8)) { return plaintext }
            }
            throw error
        }
    }

    /// A key for one purpose (HKDF-SHA256), so one secret never serves two uses. Derived
    /// from the hashing root, which a master-key rotation keeps.
    public func derivedKey(for purpose: String) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: hashingRoot ?? key, info: Data("atrium:\(purpose)".utf8), outputByteCount: 32)
    }

    /// HMAC-SHA256 of `value` under the key derived for `purpose`: how single-use tokens
    /// are stored, so a database leak alone does not yield usable tokens.
    public func tokenHash(_ value: String, purpose: String) -> Data {
        Data(HMAC<SHA256>.authenticationCode(for: Data(value.utf8), using: derivedKey(for: purpose)))
    }
}
