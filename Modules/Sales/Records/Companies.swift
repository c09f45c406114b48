import AtriumCore
import Foundation
import HTTPTypes
import PostgresNIO

/// An organisation the tenant sells to; `domain` is its natural key.
struct Company: Codable, Sendable, KeysetRecord {
    var id: UUID
    var ownerId: UUID
    var name: String
    var domain: String?
    var externalId: String?
    var createdAt: Date
    var updatedAt: Date

    static let columns = "id, owner_id, name, domain, external_id, created_at, updated_at"

    init(_ row: PostgresRow) throws {
        (id, ownerId, name, domain, externalId, createdAt, updatedAt) = try row.decode((UUID, UUID, String, String?, String?, Date, Date).self)
    }
}

struct CompanyInput: Codable, Sendable {
    var name: String?
    var domain: String?
    var externalId: String?
    var ownerId: UUID?

    func validated(creating: Bool) throws -> CompanyInput {
        var copy = self
        var errors: [AtriumError.FieldError] = []
        copy.domain = domain.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        if let domain = copy.domain, !Validation.isDomain(domain) { errors.append(.init(field: "domain", message: "is not a domain name")) }
        if creating, (name ?? "").isEmpty {
            errors.append(.init(field: "name", message: "is required"))
        } else if let name, name.isEmpty || InputDomain.length(name) > 300 {
            errors.append(.init(field: "name", message: "must be 1 to 300 characters"))
        }
        if let externalId, let problem = InputDomain.textProblem(externalId, maximum: 200) {
            errors.append(.init(field: "external_id", message: problem))
        }
        if !errors.isEmpty { throw AtriumError.validation(errors) }
        return copy
    }
}

/// A PATCH of a company (JSON Merge Patch): absent keeps, `null` clears.
struct CompanyPatch: Codable, Sendable {
    var name: Patch<String>
    var domain: Patch<String>
    var externalId: Patch<String>
    var ownerId: Patch<UUID>

    func validated() throws -> CompanyPatch {
        var copy = self
        var errors: [AtriumError.FieldError] = []
        copy.domain = domain.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        if let domain = copy.domain.value, !Validation.isDomain(domain) { errors.append(.init(field: "domain", message: "is not a domain name")) }
        switch name {
        case .clear: errors.append(.init(field: "name", message: "cannot be cleared (null)"))
        case .set(let name) where name.isEmpty || InputDomain.length(name) > 300: errors.append(.init(field: "name", message: "must be 1 to 300 characters"))
        default: break
        }
        if let externalId = externalId.value, let problem = InputDomain.textProblem(externalId, maximum: 200) {
            errors.append(.init(field: "external_id", message: problem))
        }
        if case .clear = ownerId { errors.append(.init(field: "owner_id", message: "cannot be cleared (null)")) }
        if !errors.isEmpty { throw AtriumError.validation(errors) }
        return copy
    }
}

struct CompanyList: Codable, Sendable {
    var data: [Company]
    var nextCursor: String?
}

struct CompanyRoutes {
    func register(_ routes: ModuleRoutes) {
        routes.on(.get, "companies", summary: "List companies you may see", access: SalesAccess.records,
                  query: QueryParameter.pagination + [
                    .init("owner", "Only this owner's companies."), .init("updated_since", "Changed at or after this RFC 3339 time."),
                    .init("q", "Search in name and domain."),
                  ], response: CompanyList.self) { request in
            let scope = try request.requireOwnership()
            let filter = try ListFilter(request)
            return try await request.transaction { transaction in
                let rows = try await transaction.connection.query(
                    """
                    SELECT \(unescaped: Company.columns) FROM sales_companies
                    WHERE (\(scope.ownerFilter)::uuid IS NULL OR owner_id = \(scope.ownerFilter))
                      AND (\(filter.owner)::uuid IS NULL OR owner_id = \(filter.owner))
                      AND (\(filter.updatedSince)::timestamptz IS NULL OR updated_at >= \(filter.updatedSince))
                      AND (\(filter.search)::text IS NULL OR name ILIKE \(filter.pattern) OR domain ILIKE \(filter.pattern))
                      AND (\(filter.afterID)::uuid IS NULL OR (updated_at, id) > (
                          coalesce((SELECT updated_at FROM sales_companies WHERE id = \(filter.afterID)), \(filter.afterTime)), \(filter.afterID)))
                    ORDER BY updated_at, id LIMIT \(filter.limit + 1)
                    """, logger: transaction.logger
                ).collect()
                let companies = try rows.map(Company.init)
                let page = filter.page(companies)
                return CompanyList(data: page.rows, nextCursor: page.next)
            }
        }

        OwnedRecordRoutes.create(
            routes, "companies", summary: "Create a company", body: CompanyInput.self, response: Company.self,
            validate: { try $0.validated(creating: true) }, owner: \.ownerId
        ) { transaction, company, owner in
            let row = try await transaction.connection.query(
                """
                INSERT INTO sales_companies (tenant_id, owner_id, name, domain, external_id)
                VALUES (\(transaction.tenantID), \(owner), \(company.name ?? ""), \(company.domain), \(company.externalId))
                RETURNING \(unescaped: Company.columns)
                """, logger: transaction.logger
            ).collect().first
            guard let row else { throw AtriumError.internalError() }
            return try Company(row)
        }

        routes.on(.get, "companies/{id}", summary: "One company", access: SalesAccess.records, response: Company.self) { request in
            let scope = try request.requireOwnership()
            let id = try request.uuidParameter("id")
            return try await request.transaction { transaction in
                let row = try await transaction.connection.query(
                    """
                    SELECT \(unescaped: Company.columns) FROM sales_companies
                    WHERE id = \(id) AND (\(scope.ownerFilter)::uuid IS NULL OR owner_id = \(scope.ownerFilter))
                    """, logger: transaction.logger
                ).collect().first
                guard let row else { throw AtriumError.notFound("No such company.") }
                return try Company(row)
            }
        }

        routes.on(.patch, "companies/{id}", summary: "Change a company (JSON Merge Patch: null clears a field); owner_id reassigns it (sales.owners.assign)",
                  access: SalesAccess.records, body: CompanyPatch.self, response: Company.self) { request, input in
            let scope = try request.requireOwnership()
            let id = try request.uuidParameter("id")
            let patch = try input.validated()
            let owner = try patch.ownerId.value.map { try scope.owner(for: $0, assignPermission: SalesPermission.assign) }
            return try await request.transaction { transaction in
                let row = try await transaction.connection.query(
                    """
                    UPDATE sales_companies SET name = coalesce(\(patch.name.value), name),
                        domain = CASE WHEN \(patch.domain.isSet) THEN \(patch.domain.value) ELSE domain END,
                        external_id = CASE WHEN \(patch.externalId.isSet) THEN \(patch.externalId.value) ELSE external_id END,
                        owner_id = coalesce(\(owner), owner_id), updated_at = now()
                    WHERE id = \(id) AND (\(scope.ownerFilter)::uuid IS NULL OR owner_id = \(scope.ownerFilter))
                    RETURNING \(unescaped: Company.columns)
                    """, logger: transaction.logger
                ).collect().first
                guard let row else { throw AtriumError.notFound("No such company.") }
                return try Company(row)
            }
        }

        OwnedRecordRoutes.delete(
            routes, "companies/{id}", table: "sales_companies", noun: "company", summary: "Delete a company (its contacts and deals stay, without it)")
    }
}
