import Foundation
import HTTPTypes
import Logging
import PostgresNIO

/// Email verification, password reset and invitations: single-use tokens mailed through
/// the outbox (a job enqueued in the same transaction as the change that sends it).
struct EmailFlowRoutes {
    let identity: Identity

    struct TokenInput: Codable, Sendable { var token: String }
    struct EmailInput: Codable, Sendable { var email: String }
    struct ResetInput: Codable, Sendable {
        var token: String
        var password: String
    }
    struct InvitationAcceptance: Codable, Sendable {
        var token: String
        var password: String
        var displayName: String?
    }
    struct Invitation: Codable, Sendable {
        var email: String
        var role: String?
    }
    struct Accepted: Codable, Sendable { var status: String }

    static let invalidToken = AtriumError(
        status: .badRequest, code: "invalid_token", title: "Invalid token", detail: "The token is unknown, already used or expired.")

    /// Renders `kind` for `email` and puts it in the outbox of the current transaction.
    static func enqueueMail(
        _ kind: MailTemplates.Kind, to email: String, token: String, values: [String: String], identity: Identity, request: TenantRequest,
        _ transaction: TenantTransaction
    ) async throws {
        var values = values
        values["tenant"] = request.tenant.name
        values["email"] = email
        values["token"] = token
        values["link"] = MailTemplates.link(kind, appURL: identity.appURL, tenant: request.tenant.slug, token: token)
        try await transaction.enqueue("kernel.mail.send", payload: try MailTemplates.render(kind, to: email, values: values))
    }

    func registerPublic(_ routes: ModuleRoutes) {
        let identity = self.identity
        let users = UserStore(logger: Logger(label: "atrium.identity"))

        routes.on(.post, "verify-email", summary: "Confirm an email address with the token mailed at sign-up", permission: nil,
                  body: TokenInput.self, response: Accepted.self) { request, input in
            try await request.transaction { transaction in
                guard let redeemed = try await identity.emailTokens.redeem(input.token, purpose: .verifyEmail, on: transaction.connection),
                    let userID = redeemed.userID
                else { throw Self.invalidToken }
                try await transaction.connection.query(
                    "UPDATE users SET email_verified_at = coalesce(email_verified_at, now()) WHERE id = \(userID)", logger: transaction.logger)
                try await AuditLog(logger: transaction.logger).record(
                    "user.email_verified", tenantID: transaction.tenantID, actor: .init(type: .user, id: userID.uuidString.lowercased(), ip: request.client.ip),
                    on: transaction.connection)
            }
            return Accepted(status: "verified")
        }

        routes.on(.post, "forgot-password", summary: "Mail a password-reset link; always 202, whether or not the email has an account",
                  permission: nil, body: EmailInput.self, response: Accepted.self, status: .accepted) { request, input in
            // Limited per account as well, so nobody can flood one inbox with reset mail.
            try await request.limitSignInAttempt(account: input.email)
            try await request.transaction { transaction in
                guard let user = try await users.find(email: input.email, on: transaction.connection), user.status == "active" else { return }
                let token = try await identity.emailTokens.issue(
                    .resetPassword, tenantID: transaction.tenantID, userID: user.id, email: user.email, on: transaction.connection)
                try await Self.enqueueMail(.resetPassword, to: user.email, token: token, values: [:], identity: identity, request: request, transaction)
                try await AuditLog(logger: transaction.logger).record(
                    "user.password_reset_requested", tenantID: transaction.tenantID,
                    actor: .init(type: .anonymous, ip: request.client.ip, userAgent: request.client.userAgent), subject: user.id.uuidString.lowercased(),
                    on: transaction.connection)
            }
            return Accepted(status: "accepted")
        }

        routes.on(.post, "reset-password", summary: "Set a new password with a reset token; ends every session", permission: nil,
                  body: ResetInput.self, response: NoContent.self, status: .noContent) { request, input in
            let hash = try await identity.hasher.hash(input.password)
            try await request.transaction { transaction in
                guard let redeemed = try await identity.emailTokens.redeem(input.token, purpose: .resetPassword, on: transaction.connection),
                    let userID = redeemed.userID
                else { throw Self.invalidToken }
                try PasswordPolicy.validate(input.password, email: redeemed.email)
                try await users.setPasswordHash(hash, userID: userID, on: transaction.connection)
                // A reset proves control of the mailbox.
                try await transaction.connection.query(
                    "UPDATE users SET email_verified_at = coalesce(email_verified_at, now()) WHERE id = \(userID)", logger: transaction.logger)
                try await identity.sessions.revokeAll(userID: userID, reason: "password_reset", on: transaction.connection)
                try await AuditLog(logger: transaction.logger).record(
                    "user.password_reset", tenantID: transaction.tenantID, actor: .init(type: .user, id: userID.uuidString.lowercased(), ip: request.client.ip),
                    on: transaction.connection)
            }
            return NoContent()
        }

        routes.on(.post, "accept-invitation", summary: "Create the invited account and log in", permission: nil, body: InvitationAcceptance.self,
                  response: TokenPair.self, status: .created) { request, input in
            let hash = try await identity.hasher.hash(input.password)
            return try await request.transaction { transaction in
                guard let invitation = try await identity.emailTokens.redeem(input.token, purpose: .invitation, on: transaction.connection) else {
                    throw Self.invalidToken
                }
                try PasswordPolicy.validate(input.password, email: invitation.email)
                let user = try await users.create(
                    tenantID: transaction.tenantID, email: invitation.email, passwordHash: hash, roles: [invitation.role ?? "member"],
                    displayName: input.displayName, verified: true, on: transaction.connection)
                try await AuditLog(logger: transaction.logger).record(
                    "user.invitation_accepted", tenantID: transaction.tenantID,
                    actor: .init(type: .user, id: user.id.uuidString.lowercased(), ip: request.client.ip, userAgent: request.client.userAgent),
                    on: transaction.connection)
                return try await identity.sessions.start(userID: user.id, tenantID: transaction.tenantID, client: request.client, on: transaction.connection)
            }
        }
    }

    func registerAuthenticated(_ routes: ModuleRoutes) {
        let identity = self.identity
        let users = UserStore(logger: Logger(label: "atrium.identity"))
        let roles = RoleStore(catalog: identity.catalog, logger: Logger(label: "atrium.identity"))

        routes.on(.post, "auth/resend-verification", summary: "Mail a new verification link to the caller", permission: nil,
                  response: Accepted.self, status: .accepted) { request in
            let principal = try request.requirePrincipal()
            try await request.transaction { transaction in
                guard let user = try await users.find(id: principal.id, on: transaction.connection) else { throw AtriumError.notFound() }
                guard user.emailVerifiedAt == nil else { throw AtriumError.conflict(code: "already_verified", "The email address is already verified.") }
                let token = try await identity.emailTokens.issue(.verifyEmail, tenantID: transaction.tenantID, userID: user.id, email: user.email, on: transaction.connection)
                try await Self.enqueueMail(.verifyEmail, to: user.email, token: token, values: [:], identity: identity, request: request, transaction)
            }
            return Accepted(status: "accepted")
        }

        routes.on(.post, "admin/users/invite", summary: "Invite someone by email with a role", permission: "kernel.users.manage",
                  body: Invitation.self, response: Accepted.self, status: .accepted) { request, input in
            let principal = try request.requirePrincipal()
            try PasswordPolicy.validate(email: input.email)
            let role = input.role ?? "member"
            try await request.transaction { transaction in
                guard let permissions = try await roles.permissions(of: role, on: transaction.connection) else {
                    throw AtriumError.validation(field: "role", "'\(role)' is not a role of this tenant")
                }
                if let missing = permissions.sorted().first(where: { !principal.has($0) }) {
                    throw AtriumError.forbidden(code: "permission_denied", "you cannot invite as '\(role)': it carries '\(missing)', which you do not hold")
                }
                if try await users.find(email: input.email, on: transaction.connection) != nil {
                    throw AtriumError.conflict(code: "email_taken", "a user with this email already exists")
                }
                let inviter = try await users.find(id: principal.id, on: transaction.connection)
                let token = try await identity.emailTokens.issue(
                    .invitation, tenantID: transaction.tenantID, userID: nil, email: input.email, role: role,
                    createdBy: principal.id.uuidString.lowercased(), on: transaction.connection)
                try await Self.enqueueMail(
                    .invitation, to: input.email, token: token, values: ["role": role, "inviter": inviter?.displayName ?? inviter?.email ?? "An administrator"],
                    identity: identity, request: request, transaction)
                try await AuditLog(logger: transaction.logger).record(
                    "user.invited", tenantID: transaction.tenantID, actor: AuthRoutes.actor(principal, request),
                    details: ["email": .string(input.email), "role": .string(role)], on: transaction.connection)
            }
            return Accepted(status: "accepted")
        }
    }
}
