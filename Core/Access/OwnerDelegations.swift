public import Foundation
import PostgresNIO

/// One owner's delegation to another user of the tenant in one scope (an ownership
/// prefix, `portfolio.records`): the delegate reaches the owner's rows of every table the
/// scope's module made with `atrium_delegated_table`, to read, and to write when
/// `canWrite`. The table's row-level security admits them; `RecordTable` pages of those
/// tables list them beside the delegate's own.
///
/// Who may delegate is the module's decision (a manager assigning advisors to clients,
/// an owner sharing their own): the kernel keeps the table and the policies, and a module
/// route checks its permission before it calls `delegate(...)`.
public struct OwnerDelegation: Codable, Sendable, Equatable {
    public var id: UUID
    public var scope: String
    public var delegateId: UUID
    public var ownerId: UUID
    public var canWrite: Bool
    public var grantedBy: UUID?
    public var createdAt: Date

    init(_ row: PostgresRow) throws {
        var columns = RowReader(row)
        id = try columns.next()
        scope = try columns.next()
        delegateId = try columns.next()
        ownerId = try columns.next()
        canWrite = try columns.next()
        grantedBy = try columns.next()
        createdAt = try columns.next()
    }

    /// The delegations of the tenant, a page at a time (oldest first); filter by
    /// `scope = …` and `delegate_id = …` or `owner_id = …`.
    public static let table = RecordTable<OwnerDelegation>(
        "owner_delegations", columns: "id, scope, delegate_id, owner_id, can_write, granted_by, created_at", noun: "delegation", ownedBy: nil,
        order: .ascending("created_at", time: \.createdAt, id: \.id), decode: OwnerDelegation.init)
}

extension TenantTransaction {
    /// Lets `delegate` reach `owner`'s rows in `scope` (read-only unless `canWrite`);
    /// granting again changes `canWrite`. 422 when either is not a user of the tenant.
    public func delegate(_ scope: String, owner: UUID, to delegate: UUID, canWrite: Bool = false) async throws -> OwnerDelegation {
        try await OwnerDelegation.table.one(
            """
            INSERT INTO owner_delegations (tenant_id, scope, delegate_id, owner_id, can_write, granted_by)
            VALUES (\(tenantID), \(scope), \(delegate), \(owner), \(canWrite), \(principalID))
            ON CONFLICT (tenant_id, scope, delegate_id, owner_id) DO UPDATE SET can_write = excluded.can_write, granted_by = excluded.granted_by
            RETURNING \(unescaped: OwnerDelegation.table.columns)
            """, on: self)
    }

    /// Ends `delegate`'s reach into `owner`'s rows in `scope`; false when there was none.
    @discardableResult
    public func revokeDelegation(_ scope: String, owner: UUID, from delegate: UUID) async throws -> Bool {
        let rows = try await query(
            "DELETE FROM owner_delegations WHERE scope = \(scope) AND delegate_id = \(delegate) AND owner_id = \(owner) RETURNING 1")
        return !rows.isEmpty
    }

    /// The owners who delegated to `delegate` in `scope`.
    public func delegators(of delegate: UUID, in scope: String) async throws -> [UUID] {
        try await query("SELECT owner_id FROM owner_delegations WHERE scope = \(scope) AND delegate_id = \(delegate) ORDER BY owner_id").map { row in
            var columns = RowReader(row)
            return try columns.next()
        }
    }
}
