import Foundation
import HTTPTypes
import Logging
import PostgresNIO

/// `/v1/tenants/{tenant}/auth/…`: sign-up, login, token refresh, logout, the caller's
/// profile and sessions.
struct AuthRoutes {
    let identity: Identity

    struct Credentials: Codable, Sendable {
        var email: String
        var password: String
    }

    struct Registration: Codable, Sendable {
        var email: String
        var password: String
        var displayName: String?
    }

    struct RefreshRequest: Codable, Sendable {
        var refreshToken: String
    }

    struct ProfileUpdate: Codable, Sendable {
        var displayName: String?
    }

    struct PasswordChange: Codable, Sendable {
        var currentPassword: String
        var newPassword: String
    }

    struct Me: Codable, Sendable {
        var user: User
        var permissions: [String]
    }

    struct SessionList: Codable, Sendable {
        var data: [SessionService.SessionView]
    }

    static let invalidCredentials = AtriumError(
        status: .unauthorized, code: "invalid_credentials", title: "Invalid credentials", detail: "The email or password is wrong.")
    static let invalidGrant = AtriumError(
        status: .unauthorized, code: "invalid_grant", title: "Invalid refresh token",
        detail: "The refresh token is invalid, expired or revoked; log in again.")

    /// Routes reachable without a token.
    func registerPublic(_ routes: ModuleRoutes) {
        let identity = self.identity
        let users = UserStore(logger: Logger(label: "atrium.identity"))
        routes.on(.post, "register", summary: "Create an account (when the tenant allows self-signup)", permission: nil,
                  body: Registration.self, response: TokenPair.self, status: .created) { request, input in
            let allowed = try await request.transaction { transaction in
                try await transaction.connection.query(
                    "SELECT coalesce((settings->>'self_signup')::boolean, false) FROM tenants WHERE id = \(transaction.tenantID)",
                    logger: transaction.logger
                ).collect().first?.decode(Bool.self) ?? false
            }
            guard allowed else {
                throw AtriumError.forbidden(code: "signup_disabled", "This tenant does not allow self-signup; ask an administrator for an invitation.")
            }
            try PasswordPolicy.validate(email: input.email)
            try PasswordPolicy.validate(input.password, email: input.email)
            let hash = try await identity.hasher.hash(input.password)
            return try await request.transaction { transaction in
                let user = try await users.create(
                    tenantID: transaction.tenantID, email: input.email, passwordHash: hash, roles: ["member"], displayName: input.displayName,
                    on: transaction.connection)
                try await AuditLog(logger: transaction.logger).record(
                    "user.registered", tenantID: transaction.tenantID, actor: .init(type: .user, id: user.id.uuidString.lowercased(), ip: request.client.ip, userAgent: request.client.userAgent),
                    on: transaction.connection)
                return try await identity.sessions.start(userID: user.id, tenantID: transaction.tenantID, client: request.client, on: transaction.connection)
            }
        }

        routes.on(.post, "login", summary: "Log in with email and password", permission: nil, body: Credentials.self, response: TokenPair.self) {
            request, input in
            let found = try await request.transaction { transaction in
                try await users.credentials(email: input.email, on: transaction.connection)
            }
            let verification = try await identity.hasher.verify(input.password, against: found?.hash ?? identity.decoyHash)
            let actor = AuditLog.Actor(type: .anonymous, ip: request.client.ip, userAgent: request.client.userAgent)
            guard let user = found, user.hash != nil, case .valid(let needsRehash) = verification else {
                try await request.transaction { transaction in
                    try await AuditLog(logger: transaction.logger).record(
                        "login.failed", tenantID: transaction.tenantID, actor: actor, subject: found?.id.uuidString.lowercased(),
                        details: ["email": .string(input.email)], on: transaction.connection)
                }
                throw Self.invalidCredentials
            }
            guard user.status == "active" else {
                throw AtriumError.forbidden(code: "account_disabled", "This account is disabled.")
            }
            let rehashed = needsRehash ? try await identity.hasher.hash(input.password) : nil
            return try await request.transaction { transaction in
                if let rehashed { try await users.setPasswordHash(rehashed, userID: user.id, on: transaction.connection) }
                try await AuditLog(logger: transaction.logger).record(
                    "login.succeeded", tenantID: transaction.tenantID,
                    actor: .init(type: .user, id: user.id.uuidString.lowercased(), ip: request.client.ip, userAgent: request.client.userAgent),
                    on: transaction.connection)
                return try await identity.sessions.start(userID: user.id, tenantID: transaction.tenantID, client: request.client, on: transaction.connection)
            }
        }

        routes.on(.post, "refresh", summary: "Exchange a refresh token for a new token pair (rotation)", permission: nil,
                  body: RefreshRequest.self, response: TokenPair.self) { request, input in
            let outcome = try await request.transaction { transaction in
                let outcome = try await identity.sessions.refresh(input.refreshToken, tenantID: transaction.tenantID, on: transaction.connection)
                if case .reuseDetected(let sessionID, let userID) = outcome {
                    try await AuditLog(logger: transaction.logger).record(
                        "security.refresh_token_reuse", tenantID: transaction.tenantID,
                        actor: .init(type: .anonymous, ip: request.client.ip, userAgent: request.client.userAgent),
                        subject: userID.uuidString.lowercased(), details: ["session_id": .string(sessionID.uuidString.lowercased())],
                        on: transaction.connection)
                }
                return outcome
            }
            guard case .refreshed(let pair) = outcome else { throw Self.invalidGrant }
            return pair
        }
    }

    /// Routes for an authenticated user.
    func registerAuthenticated(_ routes: ModuleRoutes) {
        let identity = self.identity
        let users = UserStore(logger: Logger(label: "atrium.identity"))

        routes.on(.get, "auth/me", summary: "The caller's profile, roles and permissions", permission: nil, response: Me.self) { request in
            let principal = try request.requirePrincipal()
            let user = try await request.transaction { try await users.find(id: principal.id, on: $0.connection) }
            guard let user else { throw AtriumError.notFound() }
            return Me(user: user, permissions: principal.permissions.sorted())
        }

        routes.on(.patch, "auth/me", summary: "Change the caller's profile", permission: nil, body: ProfileUpdate.self, response: Me.self) {
            request, input in
            let principal = try request.requirePrincipal()
            if let name = input.displayName, name.count > 200 { throw AtriumError.validation(field: "display_name", "must be at most 200 characters") }
            let user = try await request.transaction { transaction in
                try await transaction.connection.query(
                    "UPDATE users SET display_name = \(input.displayName), updated_at = now() WHERE id = \(principal.id)", logger: transaction.logger)
                return try await users.find(id: principal.id, on: transaction.connection)
            }
            guard let user else { throw AtriumError.notFound() }
            return Me(user: user, permissions: principal.permissions.sorted())
        }

        routes.on(.post, "auth/change-password", summary: "Change the caller's password; ends their other sessions", permission: nil,
                  body: PasswordChange.self, response: NoContent.self, status: .noContent) { request, input in
            let principal = try request.requirePrincipal()
            let current = try await request.transaction { transaction in
                try await transaction.connection.query("SELECT email, password_hash FROM users WHERE id = \(principal.id)", logger: transaction.logger)
                    .collect().first?.decode((String, String?).self)
            }
            guard let (email, hash) = current else { throw AtriumError.notFound() }
            guard case .valid = try await identity.hasher.verify(input.currentPassword, against: hash ?? identity.decoyHash) else {
                throw AtriumError.validation(field: "current_password", "is wrong")
            }
            try PasswordPolicy.validate(input.newPassword, email: email)
            let newHash = try await identity.hasher.hash(input.newPassword)
            try await request.transaction { transaction in
                try await users.setPasswordHash(newHash, userID: principal.id, on: transaction.connection)
                try await identity.sessions.revokeAll(userID: principal.id, keeping: principal.sessionID, reason: "password_changed", on: transaction.connection)
                try await AuditLog(logger: transaction.logger).record(
                    "user.password_changed", tenantID: transaction.tenantID, actor: Self.actor(principal, request), on: transaction.connection)
            }
            return NoContent()
        }

        routes.on(.post, "auth/logout", summary: "End the caller's session", permission: nil, response: NoContent.self, status: .noContent) { request in
            let principal = try request.requirePrincipal()
            if let session = principal.sessionID {
                _ = try await request.transaction { try await identity.sessions.revoke(sessionID: session, reason: "logout", on: $0.connection) }
            }
            return NoContent()
        }

        routes.on(.post, "auth/logout-all", summary: "End every session of the caller", permission: nil, response: NoContent.self, status: .noContent) {
            request in
            let principal = try request.requirePrincipal()
            _ = try await request.transaction { try await identity.sessions.revokeAll(userID: principal.id, reason: "logout_all", on: $0.connection) }
            return NoContent()
        }

        routes.on(.get, "auth/sessions", summary: "The caller's active sessions", permission: nil, response: SessionList.self) { request in
            let principal = try request.requirePrincipal()
            let sessions = try await request.transaction {
                try await identity.sessions.list(userID: principal.id, current: principal.sessionID, on: $0.connection)
            }
            return SessionList(data: sessions)
        }

        routes.on(.delete, "auth/sessions/{id}", summary: "End one of the caller's sessions", permission: nil, response: NoContent.self,
                  status: .noContent) { request in
            let principal = try request.requirePrincipal()
            let id = try request.uuidParameter("id")
            let ended = try await request.transaction {
                try await identity.sessions.revoke(sessionID: id, userID: principal.id, reason: "ended_by_user", on: $0.connection)
            }
            guard ended else { throw AtriumError.notFound() }
            return NoContent()
        }
    }

    static func actor(_ principal: Principal, _ request: TenantRequest) -> AuditLog.Actor {
        AuditLog.Actor(
            type: principal.kind == .apiKey ? .apiKey : .user, id: principal.id.uuidString.lowercased(), ip: request.client.ip,
            userAgent: request.client.userAgent)
    }
}
