import AtriumCore
import Foundation
import Logging
import PostgresNIO

/// What the caller may see, settled once per request and applied twice: as
/// `app.sales_scope` for the tables' row-level security, and as the `owner` filter the
/// handlers add to their own queries.
struct SalesScope: Sendable {
    /// The acting user (records created now are theirs).
    let userID: UUID
    /// True for principals holding `sales.records.any`.
    let seesAll: Bool

    /// The owner filter for queries: nil when every owner is visible.
    var ownerFilter: UUID? { seesAll ? nil : userID }

    static func of(_ request: TenantRequest) throws -> SalesScope {
        let principal = try request.requirePrincipal()
        guard principal.has(SalesPermission.own) || principal.has(SalesPermission.any) else {
            throw AtriumError.forbidden(code: "permission_denied", "this operation requires the '\(SalesPermission.own)' permission")
        }
        return SalesScope(userID: principal.id, seesAll: principal.has(SalesPermission.any))
    }

    /// Sets `app.sales_scope` for this transaction when the caller sees every record.
    func apply(to connection: PostgresConnection, logger: Logger) async throws {
        guard seesAll else { return }
        try await connection.query("SELECT set_config('app.sales_scope', 'any', true)", logger: logger)
    }

    /// Runs `body` in the request's transaction with the scope applied.
    func transaction<Result: Sendable>(
        _ request: TenantRequest, _ body: @Sendable (TenantTransaction) async throws -> Result
    ) async throws -> Result {
        let scope = self
        return try await request.transaction { transaction in
            try await scope.apply(to: transaction.connection, logger: transaction.logger)
            return try await body(transaction)
        }
    }

    /// The owner a new or reassigned record gets: the caller, or `requested` when the
    /// caller may assign owners (and the user exists in this tenant).
    func owner(for requested: UUID?, request: TenantRequest) throws -> UUID {
        guard let requested, requested != userID else { return userID }
        guard try request.requirePrincipal().has(SalesPermission.assign) else {
            throw AtriumError.forbidden(code: "permission_denied", "giving a record to another owner requires '\(SalesPermission.assign)'")
        }
        return requested
    }
}

/// Foreign keys are checked by PostgreSQL without row-level security, so a reference
/// to another rep's record would be accepted (and would confirm that the id exists).
/// References are therefore checked first through the caller's own view.
enum SalesReferences {
    static func require(company: UUID? = nil, contact: UUID? = nil, deal: UUID? = nil, on transaction: TenantTransaction) async throws {
        guard company != nil || contact != nil || deal != nil else { return }
        let row = try await transaction.connection.query(
            """
            SELECT (\(company)::uuid IS NULL OR EXISTS (SELECT 1 FROM sales_companies WHERE id = \(company))),
                   (\(contact)::uuid IS NULL OR EXISTS (SELECT 1 FROM sales_contacts WHERE id = \(contact))),
                   (\(deal)::uuid IS NULL OR EXISTS (SELECT 1 FROM sales_deals WHERE id = \(deal)))
            """, logger: transaction.logger
        ).collect().first
        let (companyOK, contactOK, dealOK) = try row?.decode((Bool, Bool, Bool).self) ?? (false, false, false)
        var errors: [AtriumError.FieldError] = []
        if !companyOK { errors.append(.init(field: "company_id", message: "does not name a company you may see")) }
        if !contactOK { errors.append(.init(field: "contact_id", message: "does not name a contact you may see")) }
        if !dealOK { errors.append(.init(field: "deal_id", message: "does not name a deal you may see")) }
        if !errors.isEmpty { throw AtriumError.validation(errors) }
    }
}
