public import Foundation
public import Logging
public import PostgresNIO

/// What a route requires of its caller; every module route declares one, and OpenAPI
/// shows it (`x-atrium-permission`, `x-atrium-owned`).
public enum RouteAccess: Sendable, Equatable {
    /// Any authenticated caller of the tenant (on public routes: anyone).
    case anyCaller
    /// Callers holding this permission.
    case permission(String)
    /// Records owned by users: callers holding `<prefix>.own` reach their own rows,
    /// callers holding `<prefix>.any` every row. The kernel checks the permission, gives
    /// the handler `request.ownership`, and scopes the request's transactions so that the
    /// table's `atrium_owner_visible(owner_id)` policy (migration 0015) shows exactly
    /// those rows, whatever the handler's SQL says. `requiring` names a further
    /// permission the route needs (an export or an import of owned records).
    case owned(String, requiring: String? = nil)

    /// `.permission(name)`, or `.anyCaller` for nil.
    public init(_ permission: String?) {
        self = permission.map(RouteAccess.permission) ?? .anyCaller
    }

    /// The permission OpenAPI names: holding `<prefix>.any` implies `<prefix>.own`.
    var documentedPermission: String? {
        switch self {
        case .anyCaller: nil
        case .permission(let name): name
        case .owned(let prefix, let requiring): requiring ?? prefix + ".own"
        }
    }
}

/// The caller's reach over owned records, settled once per request by an `.owned` route.
public struct Ownership: Sendable, Equatable {
    /// The permission prefix of the route (`sales.records`).
    public let prefix: String
    /// The user the caller acts as: new records are theirs.
    public let userID: UUID
    /// True when the caller holds `<prefix>.any`.
    public let seesAll: Bool
    let principal: Principal

    /// The owner filter for a handler's own queries: nil when every owner is visible.
    /// (Row-level security applies the same rule; the filter lets the planner use an
    /// owner index.)
    public var ownerFilter: UUID? { seesAll ? nil : userID }

    /// The owner a new or reassigned record gets: the caller, or `requested` when the
    /// caller holds `assignPermission`. Whether `requested` is a user of the tenant is for
    /// the database to check (a foreign key to `users`).
    public func owner(for requested: UUID?, assignPermission: String) throws(AtriumError) -> UUID {
        guard let requested, requested != userID else { return userID }
        guard principal.has(assignPermission) else {
            throw .forbidden(code: "permission_denied", "giving a record to another owner requires '\(assignPermission)'")
        }
        return requested
    }

    /// Settles the caller's reach for `.owned(prefix)`: 403 without `<prefix>.own` (or
    /// `.any`), and for an API key that acts for no user.
    static func settle(prefix: String, requiring: String?, principal: Principal) throws(AtriumError) -> Ownership {
        for permission in [prefix + ".own"] + (requiring.map { [$0] } ?? []) where !principal.has(permission) {
            throw .forbidden(code: "permission_denied", "this operation requires the '\(permission)' permission")
        }
        guard let userID = principal.actingUserID else {
            throw .forbidden(
                code: "no_acting_user",
                "this API key acts for no user, so it cannot use owned records; create one with acts_for (atrium api-keys create --acts-for)")
        }
        return Ownership(prefix: prefix, userID: userID, seesAll: principal.permissions.contains(prefix + ".any"), principal: principal)
    }
}

extension PostgresConnection {
    /// Lets this transaction see every owner's rows, for work that checks owners itself
    /// (a bulk import matching keys across owners before it lands a user's rows). Request
    /// handlers never need it: `.owned` routes are scoped by the kernel.
    public func scopeToAllOwners(logger: Logger) async throws {
        if setLocallyWithPendingBegin([("app.owner_scope", "any")]) { return }
        try await query("SELECT set_config('app.owner_scope', 'any', true)", logger: logger)
    }
}
