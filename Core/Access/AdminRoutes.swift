import Foundation
import HTTPTypes
import Logging
import PostgresNIO

/// `/v1/tenants/{tenant}/admin/…`: the tenant administrators' API for users, roles,
/// API keys and the audit log. Every change is recorded in the audit log.
struct AdminRoutes {
    let identity: Identity

    struct PermissionList: Codable, Sendable { var data: [PermissionDefinition] }
    struct RoleList: Codable, Sendable { var data: [RoleStore.Role] }
    struct UserList: Codable, Sendable { var data: [User] }
    struct KeyList: Codable, Sendable { var data: [APIKeyStore.APIKey] }
    struct AuditList: Codable, Sendable { var data: [AuditLog.Event] }

    struct NewRole: Codable, Sendable {
        var name: String
        var description: String?
        var permissions: [String]
    }

    struct RoleGrant: Codable, Sendable { var role: String }

    struct NewKey: Codable, Sendable {
        var name: String
        var permissions: [String]
        var expiresAt: Date?
        /// The user the key acts for (owns what it creates); the creator when absent.
        var actsFor: UUID?
    }

    func register(_ routes: ModuleRoutes) {
        let identity = self.identity
        let catalog = identity.catalog
        let logger = Logger(label: "atrium.admin")
        let roles = RoleStore(catalog: catalog, logger: logger)
        let users = UserStore(logger: logger)
        let keys = APIKeyStore(masterKey: identity.masterKey, logger: logger)

        routes.on(.get, "admin/permissions", summary: "The permission catalog custom roles and API keys draw from", permission: "kernel.roles.manage",
                  response: PermissionList.self) { _ in
            PermissionList(data: catalog.permissions)
        }

        routes.on(.get, "admin/roles", summary: "Every role of the tenant with its permissions", permission: "kernel.users.read", response: RoleList.self) {
            request in
            RoleList(data: try await request.transaction { try await roles.list(on: $0.connection) })
        }

        routes.on(.post, "admin/roles", summary: "Create a custom role", permission: "kernel.roles.manage", body: NewRole.self,
                  response: RoleStore.Role.self, status: .created) { request, input in
            let principal = try request.requirePrincipal()
            return try await request.transaction { transaction in
                let role = try await roles.createCustom(
                    tenantID: transaction.tenantID, name: input.name, description: input.description ?? "", permissions: input.permissions,
                    grantor: principal, on: transaction.connection)
                try await Self.audit("role.created", request, principal, subject: role.name, details: ["permissions": .array(role.permissions.map(JSONValue.string))], transaction)
                return role
            }
        }

        routes.on(.delete, "admin/roles/{name}", summary: "Delete a custom role (and its assignments)", permission: "kernel.roles.manage",
                  response: NoContent.self, status: .noContent) { request in
            let principal = try request.requirePrincipal()
            let name = try request.parameter("name")
            try await request.transaction { transaction in
                guard try await roles.deleteCustom(name, on: transaction.connection) else { throw AtriumError.notFound("No custom role named '\(name)'.") }
                try await Self.audit("role.deleted", request, principal, subject: name, transaction)
            }
            return NoContent()
        }

        routes.on(.get, "admin/users", summary: "The tenant's users with their roles", permission: "kernel.users.read", response: UserList.self) { request in
            UserList(data: try await request.transaction { try await users.list(on: $0.connection) })
        }

        routes.on(.post, "admin/users/{id}/roles", summary: "Grant a role to a user", permission: "kernel.users.manage", body: RoleGrant.self,
                  response: User.self) { request, input in
            let principal = try request.requirePrincipal()
            let userID = try request.uuidParameter("id")
            return try await request.transaction { transaction in
                if try await roles.grant(input.role, to: userID, tenantID: transaction.tenantID, grantor: principal, on: transaction.connection) {
                    try await Self.audit("role.granted", request, principal, subject: userID.uuidString.lowercased(), details: ["role": .string(input.role)], transaction)
                }
                guard let user = try await users.find(id: userID, on: transaction.connection) else { throw AtriumError.notFound() }
                return user
            }
        }

        routes.on(.delete, "admin/users/{id}/roles/{role}", summary: "Take a role from a user (never the last owner's)", permission: "kernel.users.manage",
                  response: User.self) { request in
            let principal = try request.requirePrincipal()
            let userID = try request.uuidParameter("id")
            let role = try request.parameter("role")
            return try await request.transaction { transaction in
                if try await roles.revoke(role, from: userID, grantor: principal, on: transaction.connection) {
                    try await Self.audit("role.revoked", request, principal, subject: userID.uuidString.lowercased(), details: ["role": .string(role)], transaction)
                }
                guard let user = try await users.find(id: userID, on: transaction.connection) else { throw AtriumError.notFound() }
                return user
            }
        }

        for (action, status) in [("disable", "disabled"), ("enable", "active")] {
            routes.on(.post, "admin/users/{id}/\(action)", summary: action == "disable" ? "Disable a user and end their sessions" : "Enable a disabled user",
                      permission: "kernel.users.manage", response: User.self) { request in
                let principal = try request.requirePrincipal()
                let userID = try request.uuidParameter("id")
                return try await request.transaction { transaction in
                    try await users.requireExists(userID, on: transaction.connection)
                    if status == "disabled" {
                        try await roles.requireOwnerAuthority(over: userID, principal: principal, on: transaction.connection)
                        try await roles.ensureAnotherOwner(than: userID, on: transaction.connection)
                    }
                    if try await users.setStatus(status, userID: userID, on: transaction.connection) {
                        try await Self.audit("user.\(status == "disabled" ? "disabled" : "enabled")", request, principal, subject: userID.uuidString.lowercased(), transaction)
                    }
                    guard let user = try await users.find(id: userID, on: transaction.connection) else { throw AtriumError.notFound() }
                    return user
                }
            }
        }

        routes.on(.get, "admin/users/{id}/sessions", summary: "A user's active sessions", permission: "kernel.sessions.manage",
                  response: AuthRoutes.SessionList.self) { request in
            let userID = try request.uuidParameter("id")
            return AuthRoutes.SessionList(data: try await request.transaction { transaction in
                try await users.requireExists(userID, on: transaction.connection)
                return try await identity.sessions.list(userID: userID, current: nil, on: transaction.connection)
            })
        }

        routes.on(.delete, "admin/users/{id}/sessions", summary: "End every session of a user", permission: "kernel.sessions.manage",
                  response: NoContent.self, status: .noContent) { request in
            let principal = try request.requirePrincipal()
            let userID = try request.uuidParameter("id")
            try await request.transaction { transaction in
                try await users.requireExists(userID, on: transaction.connection)
                try await roles.requireOwnerAuthority(over: userID, principal: principal, on: transaction.connection)
                let ended = try await identity.sessions.revokeAll(userID: userID, reason: "ended_by_admin", on: transaction.connection)
                try await Self.audit("sessions.revoked", request, principal, subject: userID.uuidString.lowercased(), details: ["count": .number(Double(ended))], transaction)
            }
            return NoContent()
        }

        routes.on(.get, "admin/api-keys", summary: "The tenant's API keys (never their secrets)", permission: "kernel.api_keys.manage", response: KeyList.self) {
            request in
            KeyList(data: try await request.transaction { try await keys.list(on: $0.connection) })
        }

        routes.on(.post, "admin/api-keys", summary: "Create an API key; its secret is in this response only", permission: "kernel.api_keys.manage",
                  body: NewKey.self, response: APIKeyStore.CreatedKey.self, status: .created) { request, input in
            let principal = try request.requirePrincipal()
            let known = Set(catalog.permissions.map(\.name))
            if let unknown = input.permissions.first(where: { !known.contains($0) }) {
                throw AtriumError.validation(field: "permissions", "'\(unknown)' is not in the permission catalog")
            }
            if let missing = input.permissions.first(where: { !principal.has($0) }) {
                throw AtriumError.forbidden(code: "permission_denied", "you cannot give a key '\(missing)' because you do not hold it")
            }
            return try await request.transaction { transaction in
                let created = try await keys.create(
                    tenantID: transaction.tenantID, name: input.name, permissions: input.permissions, expiresAt: input.expiresAt,
                    createdBy: "\(principal.kind.rawValue):\(principal.id.uuidString.lowercased())",
                    actsFor: input.actsFor ?? principal.actingUserID, on: transaction.connection)
                try await Self.audit("api_key.created", request, principal, subject: created.apiKey.id.uuidString.lowercased(),
                                     details: ["name": .string(input.name), "permissions": .array(created.apiKey.permissions.map(JSONValue.string))], transaction)
                return created
            }
        }

        routes.on(.delete, "admin/api-keys/{id}", summary: "Revoke an API key", permission: "kernel.api_keys.manage", response: NoContent.self,
                  status: .noContent) { request in
            let principal = try request.requirePrincipal()
            let id = try request.uuidParameter("id")
            try await request.transaction { transaction in
                guard try await keys.revoke(id, on: transaction.connection) else { throw AtriumError.notFound() }
                try await Self.audit("api_key.revoked", request, principal, subject: id.uuidString.lowercased(), transaction)
            }
            return NoContent()
        }

        routes.on(.get, "admin/audit", summary: "The audit log, newest first", permission: "kernel.audit.read",
                  query: [.init("since", "Only events at or after this RFC 3339 time.", schema: .string(format: "date-time")),
                          .init("limit", "At most this many events (1-200, default 50).", schema: .integer)],
                  response: AuditList.self) { request in
            var since: Date?
            if let text = request.query("since") {
                guard let date = ISO8601DateFormatter().date(from: text) else { throw AtriumError.validation(field: "since", "must be an RFC 3339 time") }
                since = date
            }
            let limit = try request.limit()
            return AuditList(data: try await request.transaction { try await AuditLog(logger: $0.logger).list(since: since, limit: limit, on: $0.connection) })
        }
    }

    static func audit(
        _ action: String, _ request: TenantRequest, _ principal: Principal, subject: String? = nil, details: [String: JSONValue] = [:],
        _ transaction: TenantTransaction
    ) async throws {
        try await AuditLog(logger: transaction.logger).record(
            action, tenantID: transaction.tenantID, actor: AuthRoutes.actor(principal, request), subject: subject, details: details,
            on: transaction.connection)
    }
}
