public import Foundation

/// A user of one tenant.
public struct User: Sendable, Equatable, Codable {
    public var id: UUID
    public var email: String
    public var displayName: String?
    public var status: String
    public var emailVerifiedAt: Date?
    public var roles: [String]
    public var createdAt: Date
}

/// The rules a new password must meet.
public enum PasswordPolicy {
    public static let lengths = 8...128

    public static func validate(_ password: String, email: String) throws(AtriumError) {
        guard lengths.contains(password.count) else {
            throw .validation(field: "password", "must be \(lengths.lowerBound)-\(lengths.upperBound) characters")
        }
        if password.lowercased() == email.lowercased() || password.lowercased() == email.lowercased().split(separator: "@").first.map(String.init) {
            throw .validation(field: "password", "must not be the email address")
        }
    }

    /// A plausible address: one `@`, something on each side, a dot in the domain, no spaces.
    public static func validate(email: String) throws(AtriumError) {
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard (3...320).contains(email.count), parts.count == 2, !parts[0].isEmpty, parts[1].contains("."),
            !parts[1].hasPrefix("."), !parts[1].hasSuffix("."), !email.contains(where: \.isWhitespace)
        else {
            throw .validation(field: "email", "must be an email address")
        }
    }
}
