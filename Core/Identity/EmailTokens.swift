public import Foundation
public import Logging
public import PostgresNIO

/// Single-use, expiring tokens delivered by email.
public struct EmailTokens: Sendable {
    public enum Purpose: String, Sendable {
        case verifyEmail = "verify_email"
        case resetPassword = "reset_password"
        case invitation

        /// Default lifetimes: reset 30 minutes, verification 24 hours, invitation 7 days.
        public var defaultLifetime: TimeInterval {
            switch self {
            case .resetPassword: 30 * 60
            case .verifyEmail: 24 * 3600
            case .invitation: 7 * 24 * 3600
            }
        }
    }

    public struct Redeemed: Sendable {
        public var userID: UUID?
        public var email: String
        public var role: String?
    }

    let masterKey: MasterKey
    let lifetimes: [Purpose: TimeInterval]
    let logger: Logger

    /// `lifetimes` overrides the defaults per purpose.
    public init(masterKey: MasterKey, lifetimes: [Purpose: TimeInterval] = [:], logger: Logger) {
        self.masterKey = masterKey
        self.lifetimes = lifetimes
        self.logger = logger
    }

    public func lifetime(of purpose: Purpose) -> TimeInterval {
        lifetimes[purpose] ?? purpose.defaultLifetime
    }

    public func issue(
        _ purpose: Purpose, tenantID: UUID, userID: UUID?, email: String, role: String? = nil, createdBy: String? = nil,
        on connection: PostgresConnection
    ) async throws -> String {
        let token = SecureRandom.base64URL(bytes: 32)
        try await connection.query(
            """
            INSERT INTO email_tokens (tenant_id, purpose, token_hash, user_id, email, role, created_by, expires_at)
            VALUES (\(tenantID), \(purpose.rawValue), \(hash(token, purpose)), \(userID), \(email), \(role), \(createdBy),
                    now() + make_interval(secs => \(lifetime(of: purpose))))
            """, logger: logger)
        return token
    }

    /// Spends a token; nil when it is unknown, of another purpose, used or expired.
    public func redeem(_ token: String, purpose: Purpose, on connection: PostgresConnection) async throws -> Redeemed? {
        let rows = try await connection.query(
            """
            UPDATE email_tokens SET used_at = now()
            WHERE token_hash = \(hash(token, purpose)) AND purpose = \(purpose.rawValue) AND used_at IS NULL AND expires_at > now()
            RETURNING user_id, email, role
            """, logger: logger
        ).collect()
        guard let (userID, email, role) = try rows.first?.decode((UUID?, String, String?).self) else { return nil }
        return Redeemed(userID: userID, email: email, role: role)
    }

    private func hash(_ token: String, _ purpose: Purpose) -> Data {
        masterKey.tokenHash(token, purpose: "email-token:\(purpose.rawValue)")
    }
}
