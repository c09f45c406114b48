import AtriumCore
import Foundation
import PostgresNIO

/// A person the tenant sells to.
struct Contact: Codable, Sendable {
    /// `owner_id` is the user it belongs to: a rep sees only their own contacts.
    var id, ownerId: UUID
    var firstName, lastName: String
    var email, phone: String?
    var companyId: UUID?
    /// Up to 20, each 1 to 50 characters; lists filter on one with `?tag=`.
    var tags: [String]
    var externalId: String?
    var createdAt, updatedAt: Date

    init(_ row: PostgresRow) throws {
        var columns = RowReader(row)
        id = try columns.next()
        ownerId = try columns.next()
        firstName = try columns.next()
        lastName = try columns.next()
        email = try columns.next()
        phone = try columns.next()
        companyId = try columns.next()
        tags = try columns.next()
        externalId = try columns.next()
        createdAt = try columns.next()
        updatedAt = try columns.next()
    }
}

/// A contact's fields as a request sends them: a new contact's (POST: an email or a name
/// is needed), or the changes to one (PATCH, a JSON Merge Patch: absent keeps, `null`
/// clears). `owner_id` gives it to another owner (`sales.owners.assign`).
struct ContactFields: RecordFields {
    var firstName, lastName, email, phone: Patch<String>
    var companyId: Patch<UUID>
    var tags: Patch<[String]>
    var externalId: Patch<String>
    var ownerId: Patch<UUID>

    /// Normalises and checks the fields given; every problem is reported at once.
    func validated(creating: Bool) throws -> ContactFields {
        try MergePatch.refuseClearing([("owner_id", ownerId.isCleared)])
        var copy = self
        copy.email = email.map(Validation.normalizedKey)
        var checks = FieldChecks()
        checks.fail("email", "is not an email address", when: copy.email.value.map { !Validation.isEmail($0) } ?? false)
        for (field, value) in [("first_name", firstName), ("last_name", lastName)] {
            checks.fail(field, "must be at most 200 characters", when: InputDomain.length(value.value ?? "") > 200)
        }
        checks.fail("phone", "must be at most 50 characters", when: InputDomain.length(phone.value ?? "") > 50)
        checks.record("tags", tags.value.flatMap(Validation.tagsProblem))
        checks.fail(
            "email", "a contact needs an email or a name", when: creating && [copy.email, firstName, lastName].allSatisfy { ($0.value ?? "").isEmpty })
        checks.record("external_id", externalId.value.flatMap { InputDomain.textProblem($0, maximum: 200) })
        try checks.finish()
        return copy
    }
}
