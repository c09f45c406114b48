public import Foundation
import Crypto
import Hummingbird
import PostgresNIO

/// `Idempotency-Key` on creating requests (the IETF httpapi draft's header): a client
/// that lost the answer to a create can send it again and get the first answer back
/// instead of a second record.
///
/// The key is claimed (a row inserted) in the transaction of the write, before it runs,
/// and the answer is stored in that same transaction: a create that rolls back leaves
/// no key behind, and a retry that arrives while the first request still runs waits on
/// the row lock, then replays. Keys belong to one caller of one tenant and are replayed
/// for 24 hours. The same key with a different method, path or body answers 422
/// `idempotency_key_reused`.
extension TenantRequest {
    /// How long an answer is replayed.
    public static let idempotencyWindow: TimeInterval = 24 * 3600

    /// Runs `body` (the create) once per `Idempotency-Key`, in `transaction`; without the
    /// header it simply runs `body`.
    public func idempotent<Output: Codable & Sendable>(
        input: some Encodable, in transaction: TenantTransaction, _ body: () async throws -> Output
    ) async throws -> Output {
        guard let key = request.headers[.idempotencyKey] else { return try await body() }
        guard (1...200).contains(key.utf8.count), key.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value < 0x7F }) else {
            throw AtriumError.validation(field: "Idempotency-Key", "must be 1 to 200 printable ASCII characters")
        }
        let principal = try requirePrincipal().id
        var fingerprint = SHA256()
        fingerprint.update(data: Data("\(request.method.rawValue) \(request.uri.path)\n".utf8))
        fingerprint.update(data: try AtriumJSON.encoder.encode(input))
        let hash = Data(fingerprint.finalize())
        let connection = transaction.connection
        let logger = transaction.logger
        // An expired key is free again: the claim takes its row over.
        let claimed = try await connection.query(
            """
            INSERT INTO idempotency_keys AS k (tenant_id, principal_id, key, request_hash, status, body)
            VALUES (\(transaction.tenantID), \(principal), \(key), \(hash), 0, ''::bytea)
            ON CONFLICT (tenant_id, principal_id, key) DO UPDATE
                SET created_at = now(), request_hash = excluded.request_hash, status = 0, body = ''::bytea
                WHERE k.created_at < now() - make_interval(secs => \(Self.idempotencyWindow))
            RETURNING 1
            """, logger: logger
        ).collect().isEmpty == false
        if !claimed {
            let row = try await connection.query(
                "SELECT request_hash, status, body FROM idempotency_keys WHERE principal_id = \(principal) AND key = \(key)", logger: logger
            ).collect().first
            guard let (storedHash, status, stored) = try row?.decode((Data, Int, Data).self), status != 0 else {
                throw AtriumError.conflict(code: "idempotency_conflict", "A request with this Idempotency-Key is still running; retry it.")
            }
            guard storedHash == hash else {
                throw AtriumError(
                    status: .unprocessableContent, code: "idempotency_key_reused", title: "Idempotency key reused",
                    detail: "This Idempotency-Key was used for a different request.")
            }
            return try AtriumJSON.decoder.decode(Output.self, from: stored)
        }
        let output = try await body()
        try await connection.query(
            """
            UPDATE idempotency_keys SET status = 200, body = \(try AtriumJSON.encoder.encode(output))
            WHERE principal_id = \(principal) AND key = \(key)
            """, logger: logger)
        return output
    }
}
