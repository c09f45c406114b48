import AtriumCore
import Foundation
import HTTPTypes
import PostgresNIO

/// A person the tenant sells to.
struct Contact: Codable, Sendable, KeysetRecord {
    var id: UUID
    var ownerId: UUID
    var firstName: String
    var lastName: String
    var email: String?
    var phone: String?
    var companyId: UUID?
    var tags: [String]
    var externalId: String?
    var createdAt: Date
    var updatedAt: Date

    static let columns = "id, owner_id, first_name, last_name, email, phone, company_id, tags, external_id, created_at, updated_at"

    init(_ row: PostgresRow) throws {
        (id, ownerId, firstName, lastName, email, phone, companyId, tags, externalId, createdAt, updatedAt) = try row.decode(
            (UUID, UUID, String, String, String?, String?, UUID?, [String], String?, Date, Date).self)
    }
}

struct ContactInput: Codable, Sendable {
    var firstName: String?
    var lastName: String?
    var email: String?
    var phone: String?
    var companyId: UUID?
    var tags: [String]?
    var externalId: String?
    var ownerId: UUID?

    /// Normalises and checks the fields given; every problem is reported at once.
    func validated(creating: Bool) throws -> ContactInput {
        var copy = self
        var errors: [AtriumError.FieldError] = []
        copy.email = email.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        if let email = copy.email, !Validation.isEmail(email) { errors.append(.init(field: "email", message: "is not an email address")) }
        for (field, value) in [("first_name", firstName), ("last_name", lastName)] where InputDomain.length(value ?? "") > 200 {
            errors.append(.init(field: field, message: "must be at most 200 characters"))
        }
        if InputDomain.length(phone ?? "") > 50 { errors.append(.init(field: "phone", message: "must be at most 50 characters")) }
        if let tags, let problem = Validation.tagsProblem(tags) { errors.append(.init(field: "tags", message: problem)) }
        if creating, (copy.email ?? "").isEmpty, (firstName ?? "").isEmpty, (lastName ?? "").isEmpty {
            errors.append(.init(field: "email", message: "a contact needs an email or a name"))
        }
        if let externalId, let problem = InputDomain.textProblem(externalId, maximum: 200) {
            errors.append(.init(field: "external_id", message: problem))
        }
        if !errors.isEmpty { throw AtriumError.validation(errors) }
        return copy
    }
}

/// A PATCH of a contact (JSON Merge Patch): an absent field is kept, `null` clears it.
struct ContactPatch: Codable, Sendable {
    var firstName: Patch<String>
    var lastName: Patch<String>
    var email: Patch<String>
    var phone: Patch<String>
    var companyId: Patch<UUID>
    var tags: Patch<[String]>
    var externalId: Patch<String>
    var ownerId: Patch<UUID>

    func validated() throws -> ContactPatch {
        var copy = self
        var errors: [AtriumError.FieldError] = []
        copy.email = email.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        if let email = copy.email.value, !Validation.isEmail(email) { errors.append(.init(field: "email", message: "is not an email address")) }
        for (field, value) in [("first_name", firstName), ("last_name", lastName)] where InputDomain.length(value.value ?? "") > 200 {
            errors.append(.init(field: field, message: "must be at most 200 characters"))
        }
        if InputDomain.length(phone.value ?? "") > 50 { errors.append(.init(field: "phone", message: "must be at most 50 characters")) }
        if let tags = tags.value, let problem = Validation.tagsProblem(tags) { errors.append(.init(field: "tags", message: problem)) }
        if let externalId = externalId.value, let problem = InputDomain.textProblem(externalId, maximum: 200) {
            errors.append(.init(field: "external_id", message: problem))
        }
        if case .clear = ownerId { errors.append(.init(field: "owner_id", message: "cannot be cleared (null)")) }
        if !errors.isEmpty { throw AtriumError.validation(errors) }
        return copy
    }
}

struct ContactList: Codable, Sendable {
    var data: [Contact]
    var nextCursor: String?
}

struct ContactRoutes {
    func register(_ routes: ModuleRoutes) {
        routes.on(.get, "contacts", summary: "List contacts you may see, oldest change first", access: SalesAccess.records,
                  query: QueryParameter.pagination + [
                    .init("owner", "Only this owner's contacts (a user id)."), .init("tag", "Only contacts with this tag."),
                    .init("company", "Only this company's contacts."), .init("updated_since", "Only contacts changed at or after this RFC 3339 time."),
                    .init("q", "Search in names and email (case-insensitive)."),
                  ], response: ContactList.self) { request in
            let scope = try request.requireOwnership()
            let filter = try ListFilter(request)
            let tag = request.query("tag")
            let company = try request.uuidQuery("company")
            return try await request.transaction { transaction in
                let rows = try await transaction.connection.query(
                    """
                    SELECT \(unescaped: Contact.columns) FROM sales_contacts
                    WHERE (\(scope.ownerFilter)::uuid IS NULL OR owner_id = \(scope.ownerFilter))
                      AND (\(filter.owner)::uuid IS NULL OR owner_id = \(filter.owner))
                      AND (\(tag)::text IS NULL OR tags @> ARRAY[\(tag)::text])
                      AND (\(company)::uuid IS NULL OR company_id = \(company))
                      AND (\(filter.updatedSince)::timestamptz IS NULL OR updated_at >= \(filter.updatedSince))
                      AND (\(filter.search)::text IS NULL OR (first_name || ' ' || last_name) ILIKE \(filter.pattern) OR email ILIKE \(filter.pattern))
                      AND (\(filter.afterID)::uuid IS NULL OR (updated_at, id) > (
                          coalesce((SELECT updated_at FROM sales_contacts WHERE id = \(filter.afterID)), \(filter.afterTime)), \(filter.afterID)))
                    ORDER BY updated_at, id LIMIT \(filter.limit + 1)
                    """, logger: transaction.logger
                ).collect()
                let contacts = try rows.map(Contact.init)
                let page = filter.page(contacts)
                return ContactList(data: page.rows, nextCursor: page.next)
            }
        }

        OwnedRecordRoutes.create(
            routes, "contacts", summary: "Create a contact", body: ContactInput.self, response: Contact.self,
            validate: { try $0.validated(creating: true) }, owner: \.ownerId
        ) { transaction, contact, owner in
            try await transaction.requireVisible(Reference("company_id", table: "sales_companies", id: contact.companyId))
            let row = try await transaction.connection.query(
                """
                INSERT INTO sales_contacts (tenant_id, owner_id, first_name, last_name, email, phone, company_id, tags, external_id)
                VALUES (\(transaction.tenantID), \(owner), \(contact.firstName ?? ""), \(contact.lastName ?? ""), \(contact.email), \(contact.phone),
                        \(contact.companyId), \(contact.tags ?? []), \(contact.externalId))
                RETURNING \(unescaped: Contact.columns)
                """, logger: transaction.logger
            ).collect().first
            guard let row else { throw AtriumError.internalError() }
            return try Contact(row)
        }

        routes.on(.get, "contacts/{id}", summary: "One contact", access: SalesAccess.records, response: Contact.self) { request in
            let scope = try request.requireOwnership()
            let id = try request.uuidParameter("id")
            return try await request.transaction { transaction in
                try await Self.find(id, scope: scope, on: transaction)
            }
        }

        routes.on(.patch, "contacts/{id}", summary: "Change a contact (JSON Merge Patch: null clears a field); owner_id reassigns it (sales.owners.assign)",
                  access: SalesAccess.records, body: ContactPatch.self, response: Contact.self) { request, input in
            let scope = try request.requireOwnership()
            let id = try request.uuidParameter("id")
            let patch = try input.validated()
            let owner = try patch.ownerId.value.map { try scope.owner(for: $0, assignPermission: SalesPermission.assign) }
            return try await request.transaction { transaction in
                try await transaction.requireVisible(Reference("company_id", table: "sales_companies", id: patch.companyId.value))
                let row = try await transaction.connection.query(
                    """
                    UPDATE sales_contacts SET
                        first_name = CASE WHEN \(patch.firstName.isSet) THEN coalesce(\(patch.firstName.value), '') ELSE first_name END,
                        last_name = CASE WHEN \(patch.lastName.isSet) THEN coalesce(\(patch.lastName.value), '') ELSE last_name END,
                        email = CASE WHEN \(patch.email.isSet) THEN \(patch.email.value) ELSE email END,
                        phone = CASE WHEN \(patch.phone.isSet) THEN \(patch.phone.value) ELSE phone END,
                        company_id = CASE WHEN \(patch.companyId.isSet) THEN \(patch.companyId.value)::uuid ELSE company_id END,
                        tags = CASE WHEN \(patch.tags.isSet) THEN coalesce(\(patch.tags.value)::text[], '{}') ELSE tags END,
                        external_id = CASE WHEN \(patch.externalId.isSet) THEN \(patch.externalId.value) ELSE external_id END,
                        owner_id = coalesce(\(owner), owner_id), updated_at = now()
                    WHERE id = \(id) AND (\(scope.ownerFilter)::uuid IS NULL OR owner_id = \(scope.ownerFilter))
                    RETURNING \(unescaped: Contact.columns)
                    """, logger: transaction.logger
                ).collect().first
                guard let row else { throw AtriumError.notFound("No such contact.") }
                return try Contact(row)
            }
        }

        OwnedRecordRoutes.delete(routes, "contacts/{id}", table: "sales_contacts", noun: "contact", summary: "Delete a contact and its activities")

        routes.streaming(.get, "contacts/export", summary: "Every contact you may see, as CSV (streamed)", access: SalesAccess.importing,
                         produces: "text/csv") { request in
            try await ContactExport.response(request, scope: try request.requireOwnership())
        }
    }

    static func find(_ id: UUID, scope: Ownership, on transaction: TenantTransaction) async throws -> Contact {
        let row = try await transaction.connection.query(
            """
            SELECT \(unescaped: Contact.columns) FROM sales_contacts
            WHERE id = \(id) AND (\(scope.ownerFilter)::uuid IS NULL OR owner_id = \(scope.ownerFilter))
            """, logger: transaction.logger
        ).collect().first
        guard let row else { throw AtriumError.notFound("No such contact.") }
        return try Contact(row)
    }
}
