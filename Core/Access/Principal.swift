public import Foundation

/// Who is calling: a user of the tenant or one of its API keys.
///
/// A principal always belongs to exactly one tenant; the kernel refuses it on any
/// other tenant's path exactly as it refuses a bad token.
public struct Principal: Sendable, Equatable {
    public enum Kind: String, Sendable, Codable {
        case user
        case apiKey = "api_key"
    }

    public var kind: Kind
    public var id: UUID
    public var tenantID: UUID
    public var permissions: Set<String>
    /// The login session behind a user's access token.
    public var sessionID: UUID?
    /// The user this principal acts as: the user itself, or the user an API key acts for
    /// (nil for a key of no user). Rows created are owned by this user, owner scope
    /// compares against it, and the database knows it as `app.principal_id`.
    public var actingUserID: UUID?

    public init(kind: Kind, id: UUID, tenantID: UUID, permissions: Set<String>, sessionID: UUID? = nil, actingUserID: UUID? = nil) {
        self.kind = kind
        self.id = id
        self.tenantID = tenantID
        self.permissions = permissions
        self.sessionID = sessionID
        self.actingUserID = kind == .user ? id : actingUserID
    }

    /// Who the database's row-level security sees: the acting user, else the key itself.
    public var databaseID: UUID { actingUserID ?? id }

    /// Whether the principal holds `permission`; holding `x.any` implies `x.own`.
    public func has(_ permission: String) -> Bool {
        if permissions.contains(permission) { return true }
        if permission.hasSuffix(".own") {
            return permissions.contains(String(permission.dropLast(4)) + ".any")
        }
        return false
    }
}
