public import Foundation
public import Logging
public import PostgresNIO

/// Custom roles and role assignments of one tenant (inside its transaction).
///
/// Two rules keep access from leaking: a caller may grant only roles whose permissions
/// they hold themselves, and the tenant's last active owner can be neither demoted nor
/// disabled.
public struct RoleStore: Sendable {
    public struct Role: Sendable, Codable, Equatable {
        public var name: String
        public var description: String
        public var permissions: [String]
        /// `built_in`, `module` or `custom`.
        public var kind: String
    }

    let catalog: PermissionCatalog
    let logger: Logger

    public init(catalog: PermissionCatalog, logger: Logger) {
        self.catalog = catalog
        self.logger = logger
    }

    /// Every role of the tenant: built-in and module roles from code, custom ones from the database.
    public func list(on connection: PostgresConnection) async throws -> [Role] {
        var roles = catalog.roleNames.map { name in
            Role(name: name, description: PermissionCatalog.builtInRoles.contains(name) ? "built-in" : "declared by a module",
                 permissions: catalog.permissions(for: [name]).sorted(), kind: PermissionCatalog.builtInRoles.contains(name) ? "built_in" : "module")
        }
        let rows = try await connection.query("SELECT name, description, permissions FROM roles ORDER BY name", logger: logger)
        for try await (name, description, permissions) in rows.decode((String, String, [String]).self) {
            roles.append(Role(name: name, description: description, permissions: permissions.sorted(), kind: "custom"))
        }
        return roles
    }

    /// The permissions `role` carries in this tenant, or nil when there is no such role.
    public func permissions(of role: String, on connection: PostgresConnection) async throws -> Set<String>? {
        if catalog.isRole(role) { return catalog.permissions(for: [role]) }
        let rows = try await connection.query("SELECT permissions FROM roles WHERE name = \(role)", logger: logger).collect()
        return try rows.first.map { Set(try $0.decode([String].self)) }
    }

    public func createCustom(
        tenantID: UUID, name: String, description: String, permissions: [String], grantor: Principal, on connection: PostgresConnection
    ) async throws -> Role {
        guard name.range(of: "^[a-z][a-z0-9_]{1,39}$", options: .regularExpression) != nil else {
            throw AtriumError.validation(field: "name", "must be 2-40 lowercase letters, digits or underscores, starting with a letter")
        }
        guard !catalog.isRole(name) else { throw AtriumError.conflict(code: "role_exists", "'\(name)' is a built-in or module role") }
        let known = Set(catalog.permissions.map(\.name))
        if let unknown = permissions.first(where: { !known.contains($0) }) {
            throw AtriumError.validation(field: "permissions", "'\(unknown)' is not in the permission catalog")
        }
        if let missing = permissions.first(where: { !grantor.has($0) }) {
            throw AtriumError.forbidden(code: "permission_denied", "you cannot put '\(missing)' in a role because you do not hold it")
        }
        do {
            try await connection.query(
                "INSERT INTO roles (tenant_id, name, description, permissions) VALUES (\(tenantID), \(name), \(description), \(Array(Set(permissions)).sorted()))",
                logger: logger)
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
            throw AtriumError.conflict(code: "role_exists", "a role named '\(name)' already exists")
        }
        return Role(name: name, description: description, permissions: Array(Set(permissions)).sorted(), kind: "custom")
    }

    /// Deletes a custom role and its assignments; false when there is no such custom role.
    public func deleteCustom(_ name: String, on connection: PostgresConnection) async throws -> Bool {
        let deleted = try await connection.query("DELETE FROM roles WHERE name = \(name) RETURNING 1", logger: logger).collect()
        guard !deleted.isEmpty else { return false }
        try await connection.query("DELETE FROM user_roles WHERE role = \(name)", logger: logger)
        return true
    }

    /// Grants `role` to a user; false when they already had it.
    public func grant(_ role: String, to userID: UUID, tenantID: UUID, grantor: Principal?, on connection: PostgresConnection) async throws -> Bool {
        guard let permissions = try await permissions(of: role, on: connection) else {
            throw AtriumError.validation(field: "role", "'\(role)' is not a role of this tenant")
        }
        if let grantor, let missing = permissions.sorted().first(where: { !grantor.has($0) }) {
            throw AtriumError.forbidden(code: "permission_denied", "you cannot grant '\(role)': it carries '\(missing)', which you do not hold")
        }
        try await requireUser(userID, on: connection)
        return try await !connection.query(
            "INSERT INTO user_roles (tenant_id, user_id, role) VALUES (\(tenantID), \(userID), \(role)) ON CONFLICT DO NOTHING RETURNING 1",
            logger: logger
        ).collect().isEmpty
    }

    /// Takes `role` from a user, refusing to remove the last active owner.
    public func revoke(_ role: String, from userID: UUID, grantor: Principal?, on connection: PostgresConnection) async throws -> Bool {
        if let grantor, let permissions = try await permissions(of: role, on: connection),
            let missing = permissions.sorted().first(where: { !grantor.has($0) })
        {
            throw AtriumError.forbidden(code: "permission_denied", "you cannot revoke '\(role)': it carries '\(missing)', which you do not hold")
        }
        try await requireUser(userID, on: connection)
        if role == "owner" { try await ensureAnotherOwner(than: userID, on: connection) }
        return try await !connection.query("DELETE FROM user_roles WHERE user_id = \(userID) AND role = \(role) RETURNING 1", logger: logger)
            .collect().isEmpty
    }

    /// Throws 409 `last_owner` unless an active owner other than `userID` remains. Owner
    /// rows are locked, so two concurrent demotions cannot both pass.
    public func ensureAnotherOwner(than userID: UUID, on connection: PostgresConnection) async throws {
        let owners = try await connection.query(
            """
            SELECT r.user_id FROM user_roles r JOIN users u ON u.tenant_id = r.tenant_id AND u.id = r.user_id
            WHERE r.role = 'owner' AND u.status = 'active' FOR UPDATE OF r
            """, logger: logger
        ).collect().map { try $0.decode(UUID.self) }
        if owners.contains(userID) && owners.count == 1 {
            throw AtriumError.conflict(code: "last_owner", "this is the tenant's last active owner; make someone else owner first")
        }
    }

    /// 403 unless `principal` may act on `userID` as on an owner: disabling an owner or
    /// ending an owner's sessions takes `kernel.owners.manage`, which only owners hold,
    /// so an admin cannot lock the tenant's owners out.
    public func requireOwnerAuthority(over userID: UUID, principal: Principal, on connection: PostgresConnection) async throws {
        guard !principal.has("kernel.owners.manage") else { return }
        let isOwner = try await !connection.query(
            "SELECT 1 FROM user_roles WHERE user_id = \(userID) AND role = 'owner'", logger: logger
        ).collect().isEmpty
        if isOwner {
            throw AtriumError.forbidden(code: "permission_denied", "acting on an owner requires the 'kernel.owners.manage' permission")
        }
    }

    private func requireUser(_ userID: UUID, on connection: PostgresConnection) async throws {
        guard try await !connection.query("SELECT 1 FROM users WHERE id = \(userID)", logger: logger).collect().isEmpty else {
            throw AtriumError.notFound("No such user.")
        }
    }
}
