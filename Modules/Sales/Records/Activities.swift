import AtriumCore
import Foundation
import HTTPTypes
import PostgresNIO

/// A call, email, meeting or note on a contact or deal (and the stage changes the
/// module records itself).
struct Activity: Codable, Sendable {
    var id: UUID
    var ownerId: UUID
    var kind: String
    var subject: String
    var body: String
    var contactId: UUID?
    var dealId: UUID?
    var occurredAt: Date

    static let columns = "id, owner_id, kind, subject, body, contact_id, deal_id, occurred_at"

    init(_ row: PostgresRow) throws {
        (id, ownerId, kind, subject, body, contactId, dealId, occurredAt) = try row.decode((UUID, UUID, String, String, String, UUID?, UUID?, Date).self)
    }
}

struct ActivityInput: Codable, Sendable {
    var kind: String
    var subject: String
    var body: String?
    var contactId: UUID?
    var dealId: UUID?
    var occurredAt: Date?

    func validated() throws -> ActivityInput {
        var errors: [AtriumError.FieldError] = []
        if !["call", "email", "meeting", "note"].contains(kind) { errors.append(.init(field: "kind", message: "must be call, email, meeting or note")) }
        if subject.isEmpty || InputDomain.length(subject) > 500 { errors.append(.init(field: "subject", message: "must be 1 to 500 characters")) }
        if InputDomain.length(body ?? "") > 20_000 { errors.append(.init(field: "body", message: "must be at most 20000 characters")) }
        if contactId == nil && dealId == nil { errors.append(.init(field: "contact_id", message: "an activity is on a contact or a deal")) }
        if !errors.isEmpty { throw AtriumError.validation(errors) }
        return self
    }
}

struct ActivityList: Codable, Sendable {
    var data: [Activity]
}

struct ActivityRoutes {
    func register(_ routes: ModuleRoutes) {
        routes.on(.get, "activities", summary: "Activities you may see on a contact or deal, newest first", access: SalesAccess.records,
                  query: [.init("contact", "The contact's id."), .init("deal", "The deal's id."), .init("limit", "1-200, default 50.", schema: .integer)],
                  response: ActivityList.self) { request in
            let scope = try request.requireOwnership()
            let contact = try request.uuidQuery("contact")
            let deal = try request.uuidQuery("deal")
            guard contact != nil || deal != nil else { throw AtriumError.validation(field: "contact", "name a contact or a deal") }
            let limit = try request.limit()
            return try await request.transaction { transaction in
                let rows = try await transaction.connection.query(
                    """
                    SELECT \(unescaped: Activity.columns) FROM sales_activities
                    WHERE (\(scope.ownerFilter)::uuid IS NULL OR owner_id = \(scope.ownerFilter))
                      AND (\(contact)::uuid IS NULL OR contact_id = \(contact)) AND (\(deal)::uuid IS NULL OR deal_id = \(deal))
                    ORDER BY occurred_at DESC, id LIMIT \(limit)
                    """, logger: transaction.logger
                ).collect()
                return ActivityList(data: try rows.map(Activity.init))
            }
        }

        routes.create("activities", summary: "Log a call, email, meeting or note", access: SalesAccess.records,
                      body: ActivityInput.self, response: Activity.self) { request, input in
            let scope = try request.requireOwnership()
            let activity = try input.validated()
            return try await request.transaction { transaction in
                try await transaction.requireVisible(
                    Reference("contact_id", table: "sales_contacts", id: activity.contactId), Reference("deal_id", table: "sales_deals", id: activity.dealId))
                let row = try await transaction.connection.query(
                    """
                    INSERT INTO sales_activities (tenant_id, owner_id, kind, subject, body, contact_id, deal_id, occurred_at)
                    VALUES (\(transaction.tenantID), \(scope.userID), \(activity.kind), \(activity.subject), \(activity.body ?? ""),
                            \(activity.contactId), \(activity.dealId), coalesce(\(activity.occurredAt), now()))
                    RETURNING \(unescaped: Activity.columns)
                    """, logger: transaction.logger
                ).collect().first
                guard let row else { throw AtriumError.internalError() }
                return try Activity(row)
            }
        }

        routes.on(.get, "activities/{id}", summary: "One activity", access: SalesAccess.records, response: Activity.self) { request in
            let scope = try request.requireOwnership()
            let id = try request.uuidParameter("id")
            return try await request.transaction { transaction in
                let row = try await transaction.connection.query(
                    """
                    SELECT \(unescaped: Activity.columns) FROM sales_activities
                    WHERE id = \(id) AND (\(scope.ownerFilter)::uuid IS NULL OR owner_id = \(scope.ownerFilter))
                    """, logger: transaction.logger
                ).collect().first
                guard let row else { throw AtriumError.notFound("No such activity.") }
                return try Activity(row)
            }
        }

        routes.on(.patch, "activities/{id}", summary: "Correct an activity you logged", access: SalesAccess.records, body: ActivityPatch.self,
                  response: Activity.self) { request, input in
            let scope = try request.requireOwnership()
            let id = try request.uuidParameter("id")
            let patch = try input.validated()
            return try await request.transaction { transaction in
                let row = try await transaction.connection.query(
                    """
                    UPDATE sales_activities SET subject = coalesce(\(patch.subject), subject), body = coalesce(\(patch.body), body),
                        occurred_at = coalesce(\(patch.occurredAt), occurred_at)
                    WHERE id = \(id) AND kind <> 'stage_change' AND (\(scope.ownerFilter)::uuid IS NULL OR owner_id = \(scope.ownerFilter))
                    RETURNING \(unescaped: Activity.columns)
                    """, logger: transaction.logger
                ).collect().first
                guard let row else { throw AtriumError.notFound("No such activity you may change.") }
                return try Activity(row)
            }
        }

        routes.on(.delete, "activities/{id}", summary: "Delete an activity you logged", access: SalesAccess.records, response: NoContent.self,
                  status: .noContent) { request in
            let scope = try request.requireOwnership()
            let id = try request.uuidParameter("id")
            try await request.transaction { transaction in
                let deleted = try await transaction.connection.query(
                    """
                    DELETE FROM sales_activities WHERE id = \(id) AND kind <> 'stage_change'
                      AND (\(scope.ownerFilter)::uuid IS NULL OR owner_id = \(scope.ownerFilter)) RETURNING 1
                    """, logger: transaction.logger
                ).collect()
                guard !deleted.isEmpty else { throw AtriumError.notFound("No such activity you may change.") }
            }
            return NoContent()
        }
    }
}

/// The fields of a logged activity that may be corrected (stage changes are history).
struct ActivityPatch: Codable, Sendable {
    var subject: String?
    var body: String?
    var occurredAt: Date?

    func validated() throws -> ActivityPatch {
        var errors: [AtriumError.FieldError] = []
        if let subject, subject.isEmpty || InputDomain.length(subject) > 500 { errors.append(.init(field: "subject", message: "must be 1 to 500 characters")) }
        if InputDomain.length(body ?? "") > 20_000 { errors.append(.init(field: "body", message: "must be at most 20000 characters")) }
        if !errors.isEmpty { throw AtriumError.validation(errors) }
        return self
    }
}
