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

struct ContactList: Codable, Sendable {
    var data: [Contact]
    var nextCursor: String?
}

struct ContactRoutes {
    func register(_ routes: ModuleRoutes) {
        routes.on(.get, "contacts", summary: "List contacts you may see, oldest change first", permission: nil,
                  query: QueryParameter.pagination + [
                    .init("owner", "Only this owner's contacts (a user id)."), .init("tag", "Only contacts with this tag."),
                    .init("company", "Only this company's contacts."), .init("updated_since", "Only contacts changed at or after this RFC 3339 time."),
                    .init("q", "Search in names and email (case-insensitive)."),
                  ], response: ContactList.self) { request in
            let scope = try SalesScope.of(request)
            let filter = try ListFilter(request)
            let tag = request.query("tag")
            let company = try request.uuidQuery("company")
            return try await scope.transaction(request) { transaction in
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
            try await SalesReferences.require(company: contact.companyId, on: transaction)
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

        routes.on(.get, "contacts/{id}", summary: "One contact", permission: nil, response: Contact.self) { request in
            let scope = try SalesScope.of(request)
            let id = try request.uuidParameter("id")
            return try await scope.transaction(request) { transaction in
                try await Self.find(id, scope: scope, on: transaction)
            }
        }

        routes.on(.patch, "contacts/{id}", summary: "Change a contact; owner_id reassigns it (sales.owners.assign)", permission: nil,
                  body: ContactInput.self, response: Contact.self) { request, input in
            let scope = try SalesScope.of(request)
            let id = try request.uuidParameter("id")
            let patch = try input.validated(creating: false)
            let owner = try patch.ownerId.map { try scope.owner(for: $0, request: request) }
            return try await scope.transaction(request) { transaction in
                try await SalesReferences.require(company: patch.companyId, on: transaction)
                let row = try await transaction.connection.query(
                    """
                    UPDATE sales_contacts SET
                        first_name = coalesce(\(patch.firstName), first_name), last_name = coalesce(\(patch.lastName), last_name),
                        email = coalesce(\(patch.email), email), phone = coalesce(\(patch.phone), phone),
                        company_id = coalesce(\(patch.companyId), company_id), tags = coalesce(\(patch.tags), tags),
                        external_id = coalesce(\(patch.externalId), external_id), owner_id = coalesce(\(owner), owner_id), updated_at = now()
                    WHERE id = \(id) AND (\(scope.ownerFilter)::uuid IS NULL OR owner_id = \(scope.ownerFilter))
                    RETURNING \(unescaped: Contact.columns)
                    """, logger: transaction.logger
                ).collect().first
                guard let row else { throw AtriumError.notFound("No such contact.") }
                return try Contact(row)
            }
        }

        OwnedRecordRoutes.delete(routes, "contacts/{id}", table: "sales_contacts", noun: "contact", summary: "Delete a contact and its activities")

        routes.streaming(.get, "contacts/export", summary: "Every contact you may see, as CSV (streamed)", permission: SalesPermission.importData,
                         produces: "text/csv") { request in
            try await ContactExport.response(request, scope: try SalesScope.of(request))
        }
    }

    static func find(_ id: UUID, scope: SalesScope, on transaction: TenantTransaction) async throws -> Contact {
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
