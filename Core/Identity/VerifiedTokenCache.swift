import Foundation
import JWTKit
import Synchronization

/// Access tokens whose signature checked out, kept until they expire, so that a request
/// with a token seen before skips the Ed25519 verification and the keyring's actor: the
/// request path then has no hop that every request shares.
///
/// Only the signature is remembered. The session and the user are still checked in the
/// request's transaction, so a revoked session or a disabled user fails at once, cached
/// or not. Memory is bounded: the tokens are spread over shards (each its own lock, so
/// requests seldom meet), and a full shard first drops its expired tokens, then, if that
/// freed nothing, all of them (they verify again on their next use).
final class VerifiedTokenCache: Sendable {
    final class Shard: Sendable {
        let tokens = Mutex<[String: AccessTokenClaims]>([:])
    }

    let shards: [Shard]
    let tokensPerShard: Int

    init(capacity: Int = 16_384, shardCount: Int = 16) {
        shards = (0..<max(1, shardCount)).map { _ in Shard() }
        tokensPerShard = max(1, capacity / max(1, shardCount))
    }

    /// The claims of `token` if it was verified before and has not expired by `now`.
    func claims(of token: String, now: Date) -> AccessTokenClaims? {
        shard(of: token).tokens.withLock { tokens in
            guard let claims = tokens[token] else { return nil }
            guard claims.exp.value > now else {
                tokens[token] = nil
                return nil
            }
            return claims
        }
    }

    /// Remembers a token whose signature, algorithm, key id and expiry were just verified.
    func remember(_ token: String, claims: AccessTokenClaims, now: Date) {
        shard(of: token).tokens.withLock { tokens in
            if tokens.count >= tokensPerShard, tokens[token] == nil {
                tokens = tokens.filter { $0.value.exp.value > now }
                if tokens.count >= tokensPerShard { tokens.removeAll(keepingCapacity: true) }
            }
            tokens[token] = claims
        }
    }

    /// Forgets every token (a signing key was withdrawn: its tokens must verify again).
    func removeAll() {
        for shard in shards { shard.tokens.withLock { $0.removeAll() } }
    }

    var count: Int { shards.reduce(0) { $0 + $1.tokens.withLock { $0.count } } }

    private func shard(of token: String) -> Shard {
        shards[Int(UInt(bitPattern: token.hashValue) % UInt(shards.count))]
    }
}
