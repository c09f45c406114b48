import AtriumCore
import Foundation
import HTTPTypes

/// What the tenant-admin commands share in remote mode: users named by email, as the
/// local commands name them, found through the API.
enum RemoteAdmin {
    /// The id of the tenant's user `email` (case-insensitive); a usage error naming it when
    /// the tenant has none.
    static func userID(_ email: String, _ client: inout RemoteClient) async throws -> UUID {
        let users = try await client.json(.get, "admin/users", as: Page<User>.self).data
        guard let user = users.first(where: { $0.email.caseInsensitiveCompare(email) == .orderedSame }) else {
            throw RemoteFailure.usage("no user \(email) in tenant \(client.context.tenant)")
        }
        return user.id
    }

    /// A path segment taken from the command line (a role or module name), escaped.
    static func segment(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? text
    }
}
