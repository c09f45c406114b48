public import AtriumCore
public import Foundation
public import Hummingbird
public import Logging
public import PostgresNIO

/// Stands in for the identity layer in kernel tests:
/// `Authorization: Bearer test:<tenant id>:<perm,perm>[:<principal id>]` (a fresh principal id when absent).
/// A module's tests use it to call routes as a principal with exactly the permissions they
/// name, without users, roles or logins (`ApplicationDependencies(authenticator:)`); it
/// exists only in AtriumTesting, never in the shipped binary.
public struct TestAuthenticator: Authenticator {
    public init() {}

    public func authenticate(_ request: Request, tenant: Tenant, on connection: PostgresConnection, logger: Logger) async throws -> Principal? {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer test:") else { return nil }
        let parts = header.dropFirst("Bearer test:".count).split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3, let tenantID = UUID(uuidString: String(parts[0])) else { return nil }
        let permissions = Set(parts[1].split(separator: ",").map(String.init))
        let principalID = parts.count == 3 ? UUID(uuidString: String(parts[2])) ?? UUID() : UUID()
        try await connection.scopeTransaction(toTenant: tenantID, principal: principalID, logger: logger)
        return Principal(kind: .user, id: principalID, tenantID: tenantID, permissions: permissions)
    }

    /// The header of one fixed principal, for limits per principal.
    public static func header(_ tenant: Tenant, principal: UUID, _ permissions: String...) -> String {
        "Bearer test:\(tenant.id.uuidString):\(permissions.joined(separator: ",")):\(principal.uuidString)"
    }

    public static func header(_ tenant: Tenant, _ permissions: String...) -> String {
        "Bearer test:\(tenant.id.uuidString):\(permissions.joined(separator: ","))"
    }
}
