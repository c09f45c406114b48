import AtriumCore
import Foundation
import Hummingbird
import Logging

/// Stands in for the identity layer in kernel tests: `Authorization: Bearer test:<tenant id>:<perm,perm>`.
/// It lives only in the test target; the shipped binary denies everyone until identity lands.
struct TestAuthenticator: Authenticator {
    func authenticate(_ request: Request, tenant: Tenant, logger: Logger) async throws -> Principal? {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer test:") else { return nil }
        let parts = header.dropFirst("Bearer test:".count).split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let tenantID = UUID(uuidString: String(parts[0])) else { return nil }
        let permissions = Set(parts[1].split(separator: ",").map(String.init))
        return Principal(kind: .user, id: UUID(), tenantID: tenantID, permissions: permissions)
    }

    static func header(_ tenant: Tenant, _ permissions: String...) -> String {
        "Bearer test:\(tenant.id.uuidString):\(permissions.joined(separator: ","))"
    }
}
