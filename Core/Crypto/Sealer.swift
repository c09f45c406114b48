import Crypto
public import Foundation

/// Encryption at rest for one owner's secrets (a module's exchange API keys, a
/// connector's tokens), as envelope encryption.
///
/// Each value is sealed with a fresh data key (AES-256-GCM, the caller's associated data
/// bound in), and that data key is wrapped under a key-encryption key derived (HKDF) from
/// the master key for this owner alone. The sealed bytes name the wrapping key by a
/// non-secret id, so after a master-key rotation `open` still finds the retired key and
/// `rewrap` moves a value to the current key by re-wrapping 32 bytes, never touching the
/// data. An owner never sees the master key, and one owner's key opens nothing of another's.
///
/// Layout: `0x01 | key id (8) | wrapped data key (12 nonce + 32 + 16 tag) | data box (12 nonce + n + 16 tag)`.
public struct Sealer: Sendable {
    struct WrappingKey: Sendable {
        let id: Data
        let key: SymmetricKey
    }

    /// Who the secrets belong to (`module:crypto`), bound into every wrapped key.
    public let scope: String
    let current: WrappingKey
    let retired: [WrappingKey]

    static let version: UInt8 = 1
    static let keyIDLength = 8
    static let wrappedKeyLength = 12 + 32 + 16
    static let headerLength = 1 + keyIDLength + wrappedKeyLength

    init(scope: String, masterKey: MasterKey) {
        func wrappingKey(_ master: SymmetricKey) -> WrappingKey {
            let key = HKDF<SHA256>.deriveKey(inputKeyMaterial: master, info: Data("atrium:seal:\(scope)".utf8), outputByteCount: 32)
            let id = Data(HMAC<SHA256>.authenticationCode(for: Data("atrium key id".utf8), using: key)).prefix(Self.keyIDLength)
            return WrappingKey(id: Data(id), key: key)
        }
        self.scope = scope
        self.current = wrappingKey(masterKey.key)
        self.retired = masterKey.retired.map(wrappingKey)
    }

    /// The id of the key new values are wrapped under (hex; safe to log and store).
    public var currentKeyID: String { current.id.hexString }

    /// Seals `plaintext`; the same `associatedData` (for example the row's id and column)
    /// must be given to open it, so a sealed value copied to another row does not open.
    public func seal(_ plaintext: Data, associatedData: Data) throws -> Data {
        let dataKey = SymmetricKey(size: .bits256)
        let box = try AES.GCM.seal(plaintext, using: dataKey, authenticating: associatedData)
        let wrapped = try wrap(dataKey, under: current)
        guard let data = box.combined else { throw SealingError("AES-GCM produced no combined box") }
        var sealed = Data([Self.version])
        sealed.append(current.id)
        sealed.append(wrapped)
        sealed.append(data)
        return sealed
    }

    public func seal(_ plaintext: String, associatedData: String) throws -> Data {
        try seal(Data(plaintext.utf8), associatedData: Data(associatedData.utf8))
    }

    public func open(_ sealed: Data, associatedData: Data) throws -> Data {
        let parts = try Parts(sealed)
        let dataKey = try unwrap(parts, keys: try key(for: parts.keyID))
        do {
            return try AES.GCM.open(AES.GCM.SealedBox(combined: parts.box), using: dataKey, authenticating: associatedData)
        } catch {
            throw SealingError("the sealed value does not open with this associated data (moved from another row, or damaged)")
        }
    }

    public func open(_ sealed: Data, associatedData: String) throws -> String {
        String(decoding: try open(sealed, associatedData: Data(associatedData.utf8)), as: UTF8.self)
    }

    /// The id of the key `sealed` is wrapped under.
    public func keyID(of sealed: Data) throws -> String {
        try Parts(sealed).keyID.hexString
    }

    /// `sealed` with its data key wrapped under the current key, or nil when it already
    /// is: what a master-key rotation runs over every stored value. The data box is kept
    /// as it is, so no associated data is needed.
    public func rewrap(_ sealed: Data) throws -> Data? {
        let parts = try Parts(sealed)
        guard parts.keyID != current.id else { return nil }
        let dataKey = try unwrap(parts, keys: try key(for: parts.keyID))
        var rewrapped = Data([Self.version])
        rewrapped.append(current.id)
        rewrapped.append(try wrap(dataKey, under: current))
        rewrapped.append(parts.box)
        return rewrapped
    }

    // MARK: - Wrapping

    private struct Parts {
        let keyID: Data
        let wrappedKey: Data
        let box: Data

        init(_ sealed: Data) throws {
            let bytes = Data(sealed)
            guard bytes.count >= Sealer.headerLength + 12 + 16, bytes.first == Sealer.version else {
                throw SealingError("not a sealed value (unknown format or truncated)")
            }
            let start = bytes.startIndex
            keyID = bytes[(start + 1)..<(start + 1 + Sealer.keyIDLength)]
            wrappedKey = bytes[(start + 1 + Sealer.keyIDLength)..<(start + Sealer.headerLength)]
            box = bytes[(start + Sealer.headerLength)...]
        }
    }

    private func key(for id: Data) throws -> WrappingKey {
        if id == current.id { return current }
        if let key = retired.first(where: { $0.id == id }) { return key }
        throw SealingError(
            "sealed under key \(id.hexString) of \(scope), which is neither the master key nor one in ATRIUM_MASTER_KEY_PREVIOUS")
    }

    private func wrap(_ dataKey: SymmetricKey, under key: WrappingKey) throws -> Data {
        let raw = dataKey.withUnsafeBytes { Data($0) }
        guard let wrapped = try AES.GCM.seal(raw, using: key.key, authenticating: wrapContext(key.id)).combined else {
            throw SealingError("AES-GCM produced no combined box")
        }
        return wrapped
    }

    private func unwrap(_ parts: Parts, keys key: WrappingKey) throws -> SymmetricKey {
        do {
            let raw = try AES.GCM.open(AES.GCM.SealedBox(combined: parts.wrappedKey), using: key.key, authenticating: wrapContext(key.id))
            return SymmetricKey(data: raw)
        } catch {
            throw SealingError("the wrapped data key of a value sealed by \(scope) is damaged")
        }
    }

    private func wrapContext(_ keyID: Data) -> Data {
        Data("atrium:wrap:\(scope):".utf8) + keyID
    }
}

/// A value that cannot be sealed or opened; the message never holds key material.
public struct SealingError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

extension Data {
    var hexString: String { map { String(format: "%02x", $0) }.joined() }
}

extension MasterKey {
    /// The sealer of one owner's secrets (`module:<id>` for a module).
    public func sealer(scope: String) -> Sealer {
        Sealer(scope: scope, masterKey: self)
    }
}
