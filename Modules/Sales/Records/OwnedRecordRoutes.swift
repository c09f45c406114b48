import AtriumCore
import Foundation
import HTTPTypes
import PostgresNIO

/// The route shapes every owned sales record shares, written once: create (checked
/// input, owner, Idempotency-Key by the kernel's `create`, database errors mapped) and delete (owner-scoped,
/// another owner's id answered like a missing one).
enum OwnedRecordRoutes {
    /// `POST path`: `validate` the input, settle the owner (the caller unless it may
    /// assign), then `insert` in the caller's scoped transaction.
    static func create<Input: Codable & Sendable, Output: Codable & Sendable>(
        _ routes: ModuleRoutes, _ path: String, summary: String, body: Input.Type, response: Output.Type,
        validate: @escaping @Sendable (Input) throws -> Input, owner: @escaping @Sendable (Input) -> UUID?,
        insert: @escaping @Sendable (TenantTransaction, Input, UUID) async throws -> Output
    ) {
        routes.create(path, summary: summary, access: SalesAccess.records, body: body, response: response) { request, input in
            let scope = try request.requireOwnership()
            let checked = try validate(input)
            let ownerID = try scope.owner(for: owner(checked), assignPermission: SalesPermission.assign)
            return try await request.transaction { transaction in
                try await insert(transaction, checked, ownerID)
            }
        }
    }

    /// `DELETE path/{id}` on `table` (a constant of this module, never input).
    static func delete(_ routes: ModuleRoutes, _ path: String, table: String, noun: String, summary: String) {
        routes.on(.delete, path, summary: summary, access: SalesAccess.records, response: NoContent.self, status: .noContent) { request in
            let scope = try request.requireOwnership()
            let id = try request.uuidParameter("id")
            try await request.transaction { transaction in
                let deleted = try await transaction.connection.query(
                    """
                    DELETE FROM \(unescaped: table) WHERE id = \(id) AND (\(scope.ownerFilter)::uuid IS NULL OR owner_id = \(scope.ownerFilter))
                    RETURNING 1
                    """, logger: transaction.logger
                ).collect()
                guard !deleted.isEmpty else { throw AtriumError.notFound("No such \(noun).") }
            }
            return NoContent()
        }
    }
}
