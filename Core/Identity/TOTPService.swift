public import Foundation
import HummingbirdOTP
public import Logging
public import PostgresNIO

/// TOTP second factor (RFC 6238: SHA-1, 6 digits, 30-second steps, as authenticator apps
/// expect), ten single-use recovery codes, and login challenges.
///
/// The secret is sealed with the master key; recovery codes and challenge tokens are
/// stored as keyed hashes. A code is accepted one step early or late for clock drift,
/// and never twice: the last used step is remembered.
public struct TOTPService: Sendable {
    public struct Enrollment: Codable, Sendable {
        /// The secret in base32, for typing into an authenticator by hand.
        public var secret: String
        /// `otpauth://` URL for a QR code.
        public var otpauthURL: String
    }

    public enum ChallengeOutcome: Sendable, Equatable {
        case verified(userID: UUID)
        case wrongCode
        case invalidChallenge
    }

    static let recoveryCodeCount = 10
    static let challengeLifetime: TimeInterval = 300
    static let challengeAttempts = 5

    let masterKey: MasterKey
    let logger: Logger

    public init(masterKey: MasterKey, logger: Logger) {
        self.masterKey = masterKey
        self.logger = logger
    }

    /// Starts (or restarts) enrolment; 409 when a confirmed authenticator exists.
    public func enroll(userID: UUID, tenantID: UUID, label: String, issuer: String, on connection: PostgresConnection) async throws -> Enrollment {
        if try await isEnabled(userID: userID, on: connection) {
            throw AtriumError.conflict(code: "mfa_already_enabled", "Two-factor authentication is already on; disable it first to enroll again.")
        }
        let secret = SecureRandom.base64URL(bytes: 20)
        let sealed = try masterKey.seal(Data(secret.utf8), context: Self.sealContext(tenantID: tenantID, userID: userID))
        try await connection.query(
            """
            INSERT INTO user_totp (tenant_id, user_id, secret_sealed) VALUES (\(tenantID), \(userID), \(sealed))
            ON CONFLICT (tenant_id, user_id) DO UPDATE SET secret_sealed = excluded.secret_sealed, confirmed_at = NULL, last_step = 0
            """, logger: logger)
        let url = TOTP(secret: secret).createAuthenticatorURL(label: label, issuer: issuer)
        let base32 = URLComponents(string: url)?.queryItems?.first { $0.name == "secret" }?.value ?? ""
        return Enrollment(secret: base32, otpauthURL: url)
    }

    /// Confirms enrolment with a first code; returns the recovery codes (shown once).
    public func confirm(userID: UUID, tenantID: UUID, code: String, on connection: PostgresConnection) async throws -> [String] {
        guard try await !isEnabled(userID: userID, on: connection) else {
            throw AtriumError.conflict(code: "mfa_already_enabled", "Two-factor authentication is already on.")
        }
        guard try await verifyCode(code, userID: userID, tenantID: tenantID, requireConfirmed: false, on: connection) else {
            throw AtriumError.validation(field: "code", "is not the current code of the authenticator")
        }
        try await connection.query("UPDATE user_totp SET confirmed_at = now() WHERE user_id = \(userID)", logger: logger)
        try await connection.query("DELETE FROM recovery_codes WHERE user_id = \(userID)", logger: logger)
        var codes: [String] = []
        for _ in 0..<Self.recoveryCodeCount {
            let code = Self.recoveryCode()
            codes.append(code)
            try await connection.query(
                "INSERT INTO recovery_codes (tenant_id, user_id, code_hash) VALUES (\(tenantID), \(userID), \(hash(recovery: code)))", logger: logger)
        }
        return codes
    }

    /// Turns the second factor off after checking a current code or a recovery code.
    public func disable(userID: UUID, tenantID: UUID, code: String, on connection: PostgresConnection) async throws {
        guard try await isEnabled(userID: userID, on: connection) else {
            throw AtriumError.conflict(code: "mfa_not_enabled", "Two-factor authentication is not on.")
        }
        let valid = try await verifyCode(code, userID: userID, tenantID: tenantID, requireConfirmed: true, on: connection)
        let recovered = valid ? false : try await useRecoveryCode(code, userID: userID, on: connection)
        guard valid || recovered else { throw AtriumError.validation(field: "code", "is neither a current code nor an unused recovery code") }
        try await connection.query("DELETE FROM user_totp WHERE user_id = \(userID)", logger: logger)
        try await connection.query("DELETE FROM recovery_codes WHERE user_id = \(userID)", logger: logger)
    }

    public func isEnabled(userID: UUID, on connection: PostgresConnection) async throws -> Bool {
        try await !connection.query("SELECT 1 FROM user_totp WHERE user_id = \(userID) AND confirmed_at IS NOT NULL", logger: logger)
            .collect().isEmpty
    }

    /// A challenge token for a user who gave the right password and has TOTP on.
    public func createChallenge(userID: UUID, tenantID: UUID, on connection: PostgresConnection) async throws -> String {
        let token = SecureRandom.base64URL(bytes: 32)
        try await connection.query(
            """
            INSERT INTO mfa_challenges (tenant_id, user_id, token_hash, expires_at)
            VALUES (\(tenantID), \(userID), \(masterKey.tokenHash(token, purpose: "mfa-challenge")), now() + make_interval(secs => \(Self.challengeLifetime)))
            """, logger: logger)
        return token
    }

    /// Checks a code (or recovery code) against a challenge; the challenge is spent on
    /// success and dies after five wrong codes.
    public func answer(challenge token: String, code: String?, recoveryCode: String?, tenantID: UUID, on connection: PostgresConnection) async throws -> ChallengeOutcome {
        let rows = try await connection.query(
            """
            SELECT id, user_id FROM mfa_challenges
            WHERE token_hash = \(masterKey.tokenHash(token, purpose: "mfa-challenge")) AND used_at IS NULL AND expires_at > now()
              AND attempts < \(Self.challengeAttempts)
            FOR UPDATE
            """, logger: logger
        ).collect()
        guard let (challengeID, userID) = try rows.first?.decode((UUID, UUID).self) else { return .invalidChallenge }
        var passed = false
        if let code { passed = try await verifyCode(code, userID: userID, tenantID: tenantID, requireConfirmed: true, on: connection) }
        if !passed, let recoveryCode { passed = try await useRecoveryCode(recoveryCode, userID: userID, on: connection) }
        if passed {
            try await connection.query("UPDATE mfa_challenges SET used_at = now() WHERE id = \(challengeID)", logger: logger)
            return .verified(userID: userID)
        }
        try await connection.query("UPDATE mfa_challenges SET attempts = attempts + 1 WHERE id = \(challengeID)", logger: logger)
        return .wrongCode
    }

    // MARK: - Internals

    private func verifyCode(_ code: String, userID: UUID, tenantID: UUID, requireConfirmed: Bool, on connection: PostgresConnection) async throws -> Bool {
        let trimmed = code.filter { !$0.isWhitespace }
        guard trimmed.count == 6, let value = Int(trimmed) else { return false }
        let rows = try await connection.query(
            "SELECT secret_sealed, last_step, confirmed_at IS NOT NULL FROM user_totp WHERE user_id = \(userID) FOR UPDATE", logger: logger
        ).collect()
        guard let (sealed, lastStep, confirmed) = try rows.first?.decode((Data, Int64, Bool).self), confirmed || !requireConfirmed else { return false }
        let secret = String(decoding: try masterKey.open(sealed, context: Self.sealContext(tenantID: tenantID, userID: userID)), as: UTF8.self)
        let totp = TOTP(secret: secret)
        let now = Date()
        let currentStep = Int64(now.timeIntervalSince1970) / 30
        for offset in [0, -1, 1] {
            let step = currentStep + Int64(offset)
            guard step > lastStep else { continue }
            if totp.compute(date: Date(timeIntervalSince1970: TimeInterval(step * 30))) == value {
                try await connection.query("UPDATE user_totp SET last_step = \(step) WHERE user_id = \(userID)", logger: logger)
                return true
            }
        }
        return false
    }

    private func useRecoveryCode(_ code: String, userID: UUID, on connection: PostgresConnection) async throws -> Bool {
        try await !connection.query(
            "UPDATE recovery_codes SET used_at = now() WHERE user_id = \(userID) AND code_hash = \(hash(recovery: code)) AND used_at IS NULL RETURNING 1",
            logger: logger
        ).collect().isEmpty
    }

    private func hash(recovery code: String) -> Data {
        masterKey.tokenHash(code.lowercased().filter { $0.isLetter || $0.isNumber }, purpose: "recovery-code")
    }

    /// `xxxxx-xxxxx` from an alphabet without look-alike characters (50 bits).
    static func recoveryCode() -> String {
        let alphabet = Array("abcdefghjkmnpqrstuvwxyz23456789")
        var generator = SystemRandomNumberGenerator()
        let characters = (0..<10).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] }
        return String(characters[0..<5]) + "-" + String(characters[5..<10])
    }

    /// What a user's sealed TOTP secret is bound to.
    static func sealContext(tenantID: UUID, userID: UUID) -> String { "totp:\(tenantID):\(userID)" }
}
