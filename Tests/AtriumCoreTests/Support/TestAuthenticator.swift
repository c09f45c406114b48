import AtriumCore
import Foundation
import Hummingbird
import Logging
import PostgresNIO

/// Stands in for the identity layer in kernel tests:
/// `Authorization: Bearer test:<tenant id>:<perm,perm>[:<principal id>]` (a fresh principal id when absent).
/// It lives only in the test target; the shipped binary denies everyone until identity lands.
struct TestAuthenticator: Authenticator {
    func authenticate(_ request: Request, tenant: Tenant, on connection: PostgresConnection, logger: Logger) async throws -> Principal? {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer test:") else { return nil }
        let parts = header.dropFirst("Bearer test:".count).split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3, let tenantID = UUID(uuidString: String(parts[0])) else { return nil }
        let permissions = Set(parts[1].split(separator: ",").map(String.init))
        let principalID = parts.count == 3 ? UUID(uuidString: String(parts[2])) ?? UUID() : UUID()
        try await connection.scopeTransaction(toTenant: tenantID, principal: principalID, logger: logger)
        return Principal(kind: .user, id: principalID, tenantID: tenantID, permissions: permissions)
    }

    /// The header of one fixed principal, for limits per principal.
    static func header(_ tenant: Tenant, principal: UUID, _ permissions: String...) -> String {
        "Bearer test:\(tenant.id.uuidString):\(permissions.joined(separator: ",")):\(principal.uuidString)"
    }

    static func header(_ tenant: Tenant, _ permissions: String...) -> String {
        "Bearer test:\(tenant.id.uuidString):\(permissions.joined(separator: ","))"
    }
}
