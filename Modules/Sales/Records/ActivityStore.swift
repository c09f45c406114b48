import AtriumCore
import Foundation
import PostgresNIO

/// The SQL of activities, run in the caller's row-level-secured transaction. Stage
/// changes are the module's own record of history: no route changes or deletes them.
enum ActivityStore {
    static let table = RecordTable<Activity>(
        "sales_activities", columns: "id, owner_id, kind, subject, body, contact_id, deal_id, occurred_at", noun: "activity",
        order: .descending("occurred_at", time: \.occurredAt, id: \.id), decode: Activity.init)
    /// The activities a person logged, as opposed to those the module records.
    static let loggedByHand = "kind <> 'stage_change'"

    static func list(_ page: PageRequest, contact: UUID?, deal: UUID?, on transaction: TenantTransaction) async throws -> Page<Activity> {
        try await transaction.lastStatement {
            try await table.page(page, where: "(\(contact)::uuid IS NULL OR contact_id = \(contact)) AND (\(deal)::uuid IS NULL OR deal_id = \(deal))", on: transaction)
        }
    }

    static func insert(_ activity: ActivityInput, owner: UUID, on transaction: TenantTransaction) async throws -> Activity {
        let sql: SQL = """
            INSERT INTO sales_activities (tenant_id, owner_id, kind, subject, body, contact_id, deal_id, occurred_at)
            VALUES (\(transaction.tenantID), \(owner), \(activity.kind), \(activity.subject), \(activity.body ?? ""),
                    \(activity.contactId), \(activity.dealId), coalesce(\(activity.occurredAt), now()))
            RETURNING \(unescaped: table.columns)
            """
        return try await transaction.lastStatement { try await table.one(sql, on: transaction) }
    }

    /// Records a deal's move from one stage to another, in the transaction that moved it.
    static func recordStageChange(of deal: Deal, from before: String, on transaction: TenantTransaction) async throws {
        try await transaction.query(
            """
            INSERT INTO sales_activities (tenant_id, owner_id, kind, subject, deal_id, contact_id)
            VALUES (\(transaction.tenantID), \(deal.ownerId), 'stage_change', \("Stage \(before) → \(deal.stage)"), \(deal.id), \(deal.contactId))
            """)
    }

    /// Applies a correction; 404 for a stage change or another owner's activity.
    static func update(_ id: UUID, _ patch: ActivityPatch, on transaction: TenantTransaction) async throws -> Activity {
        let sql: SQL = """
            UPDATE sales_activities SET subject = coalesce(\(patch.subject.value), subject),
                body = CASE WHEN \(patch.body.isSet) THEN coalesce(\(patch.body.value), '') ELSE body END,
                occurred_at = coalesce(\(patch.occurredAt.value), occurred_at)
            WHERE id = \(id) AND \(unescaped: loggedByHand)
            RETURNING \(unescaped: table.columns)
            """
        return try await transaction.lastStatement { try await table.one(sql, on: transaction) }
    }
}
