public import Foundation
public import Logging
public import PostgresNIO

/// Which modules a tenant has switched on, stored per tenant under row-level security.
public struct ModuleEnablement: Sendable {
    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    /// The enabled module ids; `connection` must be in the tenant's transaction.
    public func enabledModules(on connection: PostgresConnection) async throws -> Set<String> {
        let rows = try await connection.query("SELECT module_id FROM tenant_modules", logger: logger)
        var modules: Set<String> = []
        for try await id in rows.decode(String.self) { modules.insert(id) }
        return modules
    }

    public func isEnabled(_ moduleID: String, on connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query("SELECT 1 FROM tenant_modules WHERE module_id = \(moduleID)", logger: logger)
        for try await _ in rows { return true }
        return false
    }

    /// Enables a module; returns false when it already was.
    @discardableResult
    public func enable(_ moduleID: String, tenantID: UUID, on connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query(
            "INSERT INTO tenant_modules (tenant_id, module_id) VALUES (\(tenantID), \(moduleID)) ON CONFLICT DO NOTHING RETURNING 1",
            logger: logger)
        for try await _ in rows { return true }
        return false
    }

    /// Disables a module, keeping its data; returns false when it was not enabled.
    @discardableResult
    public func disable(_ moduleID: String, on connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query("DELETE FROM tenant_modules WHERE module_id = \(moduleID) RETURNING 1", logger: logger)
        for try await _ in rows { return true }
        return false
    }
}
