public import Foundation
public import Logging
public import PostgresNIO

/// Reads and changes tenants.
///
/// Lookups run as whatever role the connection has; changes are operator actions and
/// run on the owner connection of the admin CLI.
public struct TenantStore: Sendable {
    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }


    public func find(slug: String, on connection: PostgresConnection) async throws -> Tenant? {
        try await first(
            connection.query("SELECT id, slug, name, status, plan, created_at, updated_at FROM tenants WHERE slug = \(slug)", logger: logger))
    }

    public func find(id: UUID, on connection: PostgresConnection) async throws -> Tenant? {
        try await first(
            connection.query("SELECT id, slug, name, status, plan, created_at, updated_at FROM tenants WHERE id = \(id)", logger: logger))
    }

    public func list(on connection: PostgresConnection) async throws -> [Tenant] {
        let rows = try await connection.query(
            "SELECT id, slug, name, status, plan, created_at, updated_at FROM tenants ORDER BY slug", logger: logger)
        return try await decode(rows)
    }

    /// Creates a tenant; a taken slug is a `conflict`.
    public func create(slug: String, name: String, plan: String, on connection: PostgresConnection) async throws -> Tenant {
        try Tenant.validate(slug: slug)
        guard (1...200).contains(name.count) else { throw AtriumError.validation(field: "name", "must be 1-200 characters") }
        do {
            let rows = try await connection.query(
                """
                INSERT INTO tenants (slug, name, plan) VALUES (\(slug), \(name), \(plan))
                RETURNING id, slug, name, status, plan, created_at, updated_at
                """, logger: logger)
            guard let tenant = try await first(rows) else { throw AtriumError.internalError() }
            logger.info("tenant created", metadata: ["tenant.id": "\(tenant.id.uuidString.lowercased())", "tenant.slug": "\(slug)"])
            return tenant
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
            throw AtriumError.conflict(code: "tenant_exists", "a tenant with slug '\(slug)' already exists")
        }
    }

    /// Updates name, plan or status; returns the tenant, or nil when there is no such slug.
    public func update(
        slug: String, name: String? = nil, plan: String? = nil, status: Tenant.Status? = nil, on connection: PostgresConnection
    ) async throws -> Tenant? {
        if let name, !(1...200).contains(name.count) { throw AtriumError.validation(field: "name", "must be 1-200 characters") }
        let rows = try await connection.query(
            """
            UPDATE tenants SET
                name = coalesce(\(name), name),
                plan = coalesce(\(plan), plan),
                status = coalesce(\(status?.rawValue), status),
                updated_at = now()
            WHERE slug = \(slug)
            RETURNING id, slug, name, status, plan, created_at, updated_at
            """, logger: logger)
        return try await first(rows)
    }

    /// Deletes the tenant and, through its foreign keys, every row it owns.
    public func delete(slug: String, on connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query("DELETE FROM tenants WHERE slug = \(slug) RETURNING id", logger: logger)
        var deleted = false
        for try await id in rows.decode(UUID.self) {
            deleted = true
            logger.notice("tenant deleted", metadata: ["tenant.id": "\(id.uuidString.lowercased())", "tenant.slug": "\(slug)"])
        }
        return deleted
    }

    private func first(_ rows: PostgresRowSequence) async throws -> Tenant? {
        try await decode(rows).first
    }

    private func decode(_ rows: PostgresRowSequence) async throws -> [Tenant] {
        var tenants: [Tenant] = []
        for try await (id, slug, name, status, plan, created, updated) in rows.decode((UUID, String, String, String, String, Date, Date).self) {
            tenants.append(Tenant(id: id, slug: slug, name: name, status: Tenant.Status(rawValue: status) ?? .suspended, plan: plan, createdAt: created, updatedAt: updated))
        }
        return tenants
    }
}
