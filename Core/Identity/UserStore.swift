public import Foundation
public import Logging
public import PostgresNIO

/// Users and their roles, read and written inside a tenant transaction.
public struct UserStore: Sendable {
    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    /// Creates a user; a taken email (case-insensitive) is a `conflict`.
    public func create(
        tenantID: UUID, email: String, passwordHash: String?, roles: [String], displayName: String? = nil, verified: Bool = false,
        on connection: PostgresConnection
    ) async throws -> User {
        try PasswordPolicy.validate(email: email)
        do {
            let rows = try await connection.query(
                """
                INSERT INTO users (tenant_id, email, password_hash, display_name, email_verified_at)
                VALUES (\(tenantID), \(email), \(passwordHash), \(displayName), CASE WHEN \(verified) THEN now() END)
                RETURNING id
                """, logger: logger
            ).collect()
            guard let id = try rows.first?.decode(UUID.self) else { throw AtriumError.internalError() }
            for role in Set(roles) {
                try await connection.query("INSERT INTO user_roles (tenant_id, user_id, role) VALUES (\(tenantID), \(id), \(role))", logger: logger)
            }
            guard let user = try await find(id: id, on: connection) else { throw AtriumError.internalError() }
            return user
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
            throw AtriumError.conflict(code: "email_taken", "a user with this email already exists")
        }
    }

    public func find(id: UUID, on connection: PostgresConnection) async throws -> User? {
        try await fetch(connection.query("\(unescaped: Self.select) WHERE u.id = \(id) GROUP BY u.tenant_id, u.id", logger: logger)).first
    }

    public func find(email: String, on connection: PostgresConnection) async throws -> User? {
        try await fetch(connection.query("\(unescaped: Self.select) WHERE lower(u.email) = lower(\(email)) GROUP BY u.tenant_id, u.id", logger: logger)).first
    }

    public func list(on connection: PostgresConnection) async throws -> [User] {
        try await fetch(connection.query("\(unescaped: Self.select) GROUP BY u.tenant_id, u.id ORDER BY lower(u.email)", logger: logger))
    }

    /// The stored password hash of the user with `email`, for login.
    public func credentials(email: String, on connection: PostgresConnection) async throws -> (id: UUID, hash: String?, status: String)? {
        let rows = try await connection.query(
            "SELECT id, password_hash, status FROM users WHERE lower(email) = lower(\(email))", logger: logger
        ).collect()
        guard let row = rows.first else { return nil }
        let (id, hash, status) = try row.decode((UUID, String?, String).self)
        return (id, hash, status)
    }

    /// Sets the status; false when it already was that. Disabling ends every session of
    /// the user in the same transaction.
    public func setStatus(_ status: String, userID: UUID, on connection: PostgresConnection) async throws -> Bool {
        let changed = try await !connection.query(
            "UPDATE users SET status = \(status), updated_at = now() WHERE id = \(userID) AND status <> \(status) RETURNING 1", logger: logger
        ).collect().isEmpty
        if changed && status == "disabled" {
            try await SessionService.revokeAll(userID: userID, reason: "user_disabled", logger: logger, on: connection)
        }
        return changed
    }

    /// 404 unless the user exists in this tenant.
    public func requireExists(_ userID: UUID, on connection: PostgresConnection) async throws {
        guard try await !connection.query("SELECT 1 FROM users WHERE id = \(userID)", logger: logger).collect().isEmpty else {
            throw AtriumError.notFound("No such user.")
        }
    }

    public func setPasswordHash(_ hash: String, userID: UUID, on connection: PostgresConnection) async throws {
        try await connection.query("UPDATE users SET password_hash = \(hash), updated_at = now() WHERE id = \(userID)", logger: logger)
    }

    /// The user columns with their roles; a constant, extended only with bound filters.
    static let select = """
        SELECT u.id, u.email, u.display_name, u.status, u.email_verified_at, u.created_at,
               coalesce(array_agg(r.role ORDER BY r.role) FILTER (WHERE r.role IS NOT NULL), '{}')
        FROM users u LEFT JOIN user_roles r ON r.tenant_id = u.tenant_id AND r.user_id = u.id
        """

    private func fetch(_ rows: PostgresRowSequence) async throws -> [User] {
        var users: [User] = []
        for try await (id, email, name, status, verified, created, roles) in rows.decode((UUID, String, String?, String, Date?, Date, [String]).self) {
            users.append(User(id: id, email: email, displayName: name, status: status, emailVerifiedAt: verified, roles: roles, createdAt: created))
        }
        return users
    }
}
