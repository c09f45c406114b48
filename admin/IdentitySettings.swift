import ArgumentParser
import AtriumCore
import Foundation

/// Identity settings from the environment; every one has a safe default.
///
/// | variable | default |
/// | --- | --- |
/// | `ATRIUM_ARGON2_MEMORY_KIB`, `ATRIUM_ARGON2_ITERATIONS`, `ATRIUM_ARGON2_PARALLELISM` | 19456, 2, 1 |
/// | `ATRIUM_ACCESS_TOKEN_TTL` | 900 s |
/// | `ATRIUM_REFRESH_INACTIVITY` / `ATRIUM_SESSION_LIFETIME` / `ATRIUM_REFRESH_GRACE` | 7 days / 30 days / 10 s |
/// | `ATRIUM_VERIFY_TOKEN_TTL` / `ATRIUM_RESET_TOKEN_TTL` / `ATRIUM_INVITE_TOKEN_TTL` | 24 h / 30 min / 7 days |
struct IdentitySettings {
    var hashing = PasswordHasher.Parameters()
    var sessions = SessionSettings()
    var emailTokenLifetimes: [EmailTokens.Purpose: TimeInterval] = [:]

    init(environment: [String: String]) throws {
        func number(_ name: String, in range: ClosedRange<Double>) throws -> Double? {
            guard let text = environment[name], !text.isEmpty else { return nil }
            guard let value = Double(text), range.contains(value) else {
                throw ValidationFailure("\(name) must be a number from \(range.lowerBound) to \(range.upperBound)")
            }
            return value
        }
        if let memory = try number("ATRIUM_ARGON2_MEMORY_KIB", in: 8...4_194_304) { hashing.memoryKiB = UInt32(memory) }
        if let iterations = try number("ATRIUM_ARGON2_ITERATIONS", in: 1...100) { hashing.iterations = UInt32(iterations) }
        if let parallelism = try number("ATRIUM_ARGON2_PARALLELISM", in: 1...64) { hashing.parallelism = UInt32(parallelism) }
        if let value = try number("ATRIUM_ACCESS_TOKEN_TTL", in: 60...86400) { sessions.accessTokenLifetime = value }
        if let value = try number("ATRIUM_REFRESH_INACTIVITY", in: 300...31_536_000) { sessions.refreshInactivity = value }
        if let value = try number("ATRIUM_SESSION_LIFETIME", in: 300...31_536_000) { sessions.sessionLifetime = value }
        if let value = try number("ATRIUM_REFRESH_GRACE", in: 0...120) { sessions.refreshGrace = value }
        if let value = try number("ATRIUM_VERIFY_TOKEN_TTL", in: 60...2_592_000) { emailTokenLifetimes[.verifyEmail] = value }
        if let value = try number("ATRIUM_RESET_TOKEN_TTL", in: 60...86400) { emailTokenLifetimes[.resetPassword] = value }
        if let value = try number("ATRIUM_INVITE_TOKEN_TTL", in: 60...2_592_000) { emailTokenLifetimes[.invitation] = value }
    }
}
