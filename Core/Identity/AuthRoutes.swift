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

    struct CodeInput: Codable, Sendable {
        var code: String
    }

    struct ChallengeAnswer: Codable, Sendable {
        var challengeToken: String
        var code: String?
        var recoveryCode: String?
    }

    struct RecoveryCodes: Codable, Sendable {
        var recoveryCodes: [String]
    }

    struct SessionList: Codable, Sendable {
        var data: [SessionService.SessionView]
    }

    static let invalidCredentials = AtriumError(
        status: .unauthorized, code: "invalid_credentials", title: "Invalid credentials", detail: "The email or password is wrong.")
    static let invalidMFACode = AtriumError(
        status: .unauthorized, code: "invalid_mfa_code", title: "Invalid code",
        detail: "The code is wrong, or the challenge expired or was used up; log in again if it keeps failing.")
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
                let token = try await identity.emailTokens.issue(.verifyEmail, tenantID: transaction.tenantID, userID: user.id, email: user.email, on: transaction.connection)
                try await EmailFlowRoutes.enqueueMail(.verifyEmail, to: user.email, token: token, values: [:], identity: identity, request: request, transaction)
                return try await identity.sessions.start(userID: user.id, tenantID: transaction.tenantID, client: request.client, on: transaction.connection)
            }
        }

        routes.on(.post, "login", summary: "Log in with email and password", permission: nil, body: Credentials.self, response: TokenPair.self) {
            request, input in
            try await request.limitSignInAttempt(account: input.email)
            let account = "\(request.tenant.id):\(input.email.lowercased())"
            if let wait = await identity.throttle.wait(account: account, ip: request.client.ip) {
                var error = AtriumError(
                    status: .tooManyRequests, code: "too_many_attempts", title: "Too many login attempts",
                    detail: "Too many failed logins for this account or address; try again later.")
                error.headers[.retryAfter] = String(Int(wait.rounded(.up)))
                throw error
            }
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
                await identity.throttle.recordFailure(account: account, ip: request.client.ip)
                throw Self.invalidCredentials
            }
            await identity.throttle.recordSuccess(account: account)
            guard user.status == "active" else {
                throw AtriumError.forbidden(code: "account_disabled", "This account is disabled.")
            }
            let rehashed = needsRehash ? try await identity.hasher.hash(input.password) : nil
            let challenge = try await request.transaction { transaction -> String? in
                if let rehashed { try await users.setPasswordHash(rehashed, userID: user.id, on: transaction.connection) }
                guard try await identity.totp.isEnabled(userID: user.id, on: transaction.connection) else { return nil }
                return try await identity.totp.createChallenge(userID: user.id, tenantID: transaction.tenantID, on: transaction.connection)
            }
            if let challenge {
                var error = AtriumError(
                    status: .unauthorized, code: "mfa_required", title: "Second factor required",
                    detail: "Send a code from the authenticator (or a recovery code) with this challenge token to auth/mfa/verify.")
                error.extensions = ["challenge_token": .string(challenge), "expires_in": .number(TOTPService.challengeLifetime)]
                throw error
            }
            return try await request.transaction { transaction in
                try await AuditLog(logger: transaction.logger).record(
                    "login.succeeded", tenantID: transaction.tenantID,
                    actor: .init(type: .user, id: user.id.uuidString.lowercased(), ip: request.client.ip, userAgent: request.client.userAgent),
                    on: transaction.connection)
                return try await identity.sessions.start(userID: user.id, tenantID: transaction.tenantID, client: request.client, on: transaction.connection)
            }
        }

        routes.on(.post, "mfa/verify", summary: "Finish a login that answered mfa_required, with a TOTP or recovery code", permission: nil,
                  body: ChallengeAnswer.self, response: TokenPair.self) { request, input in
            guard input.code != nil || input.recoveryCode != nil else {
                throw AtriumError.validation(field: "code", "give a code or a recovery_code")
            }
            let outcome = try await request.transaction { transaction -> (TOTPService.ChallengeOutcome, TokenPair?) in
                let outcome = try await identity.totp.answer(
                    challenge: input.challengeToken, code: input.code, recoveryCode: input.recoveryCode, tenantID: transaction.tenantID,
                    on: transaction.connection)
                guard case .verified(let userID) = outcome else { return (outcome, nil) }
                try await AuditLog(logger: transaction.logger).record(
                    input.code == nil ? "login.succeeded_with_recovery_code" : "login.succeeded", tenantID: transaction.tenantID,
                    actor: .init(type: .user, id: userID.uuidString.lowercased(), ip: request.client.ip, userAgent: request.client.userAgent),
                    on: transaction.connection)
                return (outcome, try await identity.sessions.start(userID: userID, tenantID: transaction.tenantID, client: request.client, on: transaction.connection))
            }
            guard let pair = outcome.1 else { throw Self.invalidMFACode }
            return pair
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
            // An API key answers with the user it acts for and its own permissions.
            let principal = try request.requirePrincipal()
            let user = try await request.transaction { try await users.find(id: principal.databaseID, on: $0.connection) }
            guard let user else { throw AtriumError.notFound("This API key acts for no user.") }
            return Me(user: user, permissions: principal.permissions.sorted())
        }

        routes.on(.patch, "auth/me", summary: "Change the caller's profile", permission: nil, body: ProfileUpdate.self, response: Me.self) {
            request, input in
            let principal = try request.requirePrincipal()
            if let name = input.displayName, InputDomain.length(name) > 200 { throw AtriumError.validation(field: "display_name", "must be at most 200 characters") }
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

        routes.on(.post, "auth/mfa/totp/enroll", summary: "Start TOTP enrolment: a secret and an otpauth:// URL for the authenticator", permission: nil,
                  response: TOTPService.Enrollment.self) { request in
            let principal = try request.requirePrincipal()
            return try await request.transaction { transaction in
                guard let user = try await users.find(id: principal.id, on: transaction.connection) else { throw AtriumError.notFound() }
                return try await identity.totp.enroll(
                    userID: principal.id, tenantID: transaction.tenantID, label: user.email, issuer: request.tenant.name, on: transaction.connection)
            }
        }

        routes.on(.post, "auth/mfa/totp/confirm", summary: "Turn TOTP on with a first code; returns ten recovery codes, shown once",
                  permission: nil, body: CodeInput.self, response: RecoveryCodes.self) { request, input in
            let principal = try request.requirePrincipal()
            return try await request.transaction { transaction in
                let codes = try await identity.totp.confirm(userID: principal.id, tenantID: transaction.tenantID, code: input.code, on: transaction.connection)
                try await identity.sessions.revokeAll(userID: principal.id, keeping: principal.sessionID, reason: "mfa_enabled", on: transaction.connection)
                try await AuditLog(logger: transaction.logger).record(
                    "mfa.enabled", tenantID: transaction.tenantID, actor: Self.actor(principal, request), on: transaction.connection)
                return RecoveryCodes(recoveryCodes: codes)
            }
        }

        routes.on(.post, "auth/mfa/totp/disable", summary: "Turn TOTP off with a current or recovery code; ends other sessions", permission: nil,
                  body: CodeInput.self, response: NoContent.self, status: .noContent) { request, input in
            let principal = try request.requirePrincipal()
            try await request.transaction { transaction in
                try await identity.totp.disable(userID: principal.id, tenantID: transaction.tenantID, code: input.code, on: transaction.connection)
                try await identity.sessions.revokeAll(userID: principal.id, keeping: principal.sessionID, reason: "mfa_disabled", on: transaction.connection)
                try await AuditLog(logger: transaction.logger).record(
                    "mfa.disabled", tenantID: transaction.tenantID, actor: Self.actor(principal, request), on: transaction.connection)
            }
            return NoContent()
        }

        routes.on(.post, "auth/logout", summary: "End the caller's session", permission: nil, response: NoContent.self, status: .noContent) { request in
            let principal = try request.requirePrincipal()
            if let session = principal.sessionID {
                try await request.transaction { transaction in
                    _ = try await identity.sessions.revoke(sessionID: session, reason: "logout", on: transaction.connection)
                    try await AuditLog(logger: transaction.logger).record(
                        "session.logout", tenantID: transaction.tenantID, actor: Self.actor(principal, request), on: transaction.connection)
                }
            }
            return NoContent()
        }

        routes.on(.post, "auth/logout-all", summary: "End every session of the caller", permission: nil, response: NoContent.self, status: .noContent) {
            request in
            let principal = try request.requirePrincipal()
            try await request.transaction { transaction in
                _ = try await identity.sessions.revokeAll(userID: principal.id, reason: "logout_all", on: transaction.connection)
                // Ending every session is what a user does when a device is lost: kept, with where it came from.
                try await AuditLog(logger: transaction.logger).record(
                    "session.logout_all", tenantID: transaction.tenantID, actor: Self.actor(principal, request), on: transaction.connection)
            }
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
