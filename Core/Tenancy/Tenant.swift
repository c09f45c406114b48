public import Foundation

/// A customer of the platform: its own auth realm, plan and data.
public struct Tenant: Sendable, Equatable, Codable {
    public enum Status: String, Sendable, Codable {
        case active
        case suspended
    }

    public var id: UUID
    public var slug: String
    public var name: String
    public var status: Status
    public var plan: String
    public var createdAt: Date
    public var updatedAt: Date

    public init(id: UUID, slug: String, name: String, status: Status, plan: String, createdAt: Date, updatedAt: Date) {
        self.id = id
        self.slug = slug
        self.name = name
        self.status = status
        self.plan = plan
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// Slugs appear in URLs: lowercase letters, digits and hyphens, 1–63 characters.
    public static func validate(slug: String) throws(AtriumError) {
        let allowed = slug.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" }
        guard (1...63).contains(slug.count), allowed, slug.first != "-" else {
            throw .validation(field: "slug", "must be 1-63 lowercase letters, digits or hyphens, not starting with a hyphen")
        }
    }
}
