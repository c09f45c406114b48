import AtriumCore
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import PostgresNIO

/// `Idempotency-Key` on creating requests: the first answer for a key (per caller) is
/// stored in the same transaction as the write and replayed for every retry, so a
/// client that lost the response can retry without creating a second record.
///
/// A retry that arrives while the first request is still running waits for it (the
/// key's row is inserted first, and a concurrent insert of the same key waits on it).
/// Reusing a key for a different request body answers 422 `idempotency_key_reused`.
enum Idempotency {
    static func run<Input: Encodable, Output: Codable & Sendable>(
        _ request: TenantRequest, input: Input, transaction: TenantTransaction, _ body: () async throws -> Output
    ) async throws -> Output {
        guard let key = request.request.headers[.idempotencyKey] else { return try await body() }
        guard (1...200).contains(key.count) else { throw AtriumError.validation(field: "Idempotency-Key", "must be 1 to 200 characters") }
        let principal = try request.requirePrincipal().id
        let hash = SHA256.hash(data: try AtriumJSON.encoder.encode(input)).map { String(format: "%02x", $0) }.joined()
        let claimed = try await transaction.connection.query(
            """
            INSERT INTO sales_idempotency (tenant_id, key, principal_id, request_hash, status, body)
            VALUES (\(transaction.tenantID), \(key), \(principal), \(hash), 0, ''::bytea)
            ON CONFLICT DO NOTHING RETURNING 1
            """, logger: transaction.logger
        ).collect().isEmpty == false
        if !claimed {
            let row = try await transaction.connection.query(
                "SELECT request_hash, body FROM sales_idempotency WHERE key = \(key) AND principal_id = \(principal)", logger: transaction.logger
            ).collect().first
            guard let (storedHash, stored) = try row?.decode((String, Data).self) else { throw AtriumError.conflict(code: "idempotency_conflict", "retry the request") }
            guard storedHash == hash else {
                throw AtriumError(
                    status: .unprocessableContent, code: "idempotency_key_reused", title: "Idempotency key reused",
                    detail: "This Idempotency-Key was used for a different request body.")
            }
            return try AtriumJSON.decoder.decode(Output.self, from: stored)
        }
        let output = try await body()
        try await transaction.connection.query(
            """
            UPDATE sales_idempotency SET status = 200, body = \(try AtriumJSON.encoder.encode(output))
            WHERE key = \(key) AND principal_id = \(principal)
            """, logger: transaction.logger)
        return output
    }
}

extension HTTPField.Name {
    static var idempotencyKey: HTTPField.Name { HTTPField.Name("Idempotency-Key") ?? .contentType }
}
