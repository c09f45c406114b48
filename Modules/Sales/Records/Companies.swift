import AtriumCore
import Foundation
import PostgresNIO

/// An organisation the tenant sells to; `domain` is its natural key.
struct Company: Codable, Sendable {
    var id, ownerId: UUID
    var name: String
    /// Lowercase, unique in the tenant: imports match companies on it.
    var domain: String?
    var externalId: String?
    var createdAt, updatedAt: Date

    init(_ row: PostgresRow) throws {
        (id, ownerId, name, domain, externalId, createdAt, updatedAt) = try row.decode((UUID, UUID, String, String?, String?, Date, Date).self)
    }
}

/// A company's fields as a request sends them: a new company's (POST: a name is
/// needed), or the changes to one (PATCH, a JSON Merge Patch: absent keeps, `null`
/// clears the domain or external id).
struct CompanyFields: RecordFields {
    var name: Patch<String>
    var domain: Patch<String>
    var externalId: Patch<String>
    var ownerId: Patch<UUID>

    func validated(creating: Bool) throws -> CompanyFields {
        try MergePatch.refuseClearing([("name", name.isCleared), ("owner_id", ownerId.isCleared)])
        var copy = self
        copy.domain = domain.map(Validation.normalizedKey)
        var checks = FieldChecks()
        checks.fail("name", "is required", when: creating && !name.isSet)
        checks.record("name", name.value.flatMap { Validation.nameProblem($0, maximum: 300) })
        checks.fail("domain", "is not a domain name", when: copy.domain.value.map { !Validation.isDomain($0) } ?? false)
        checks.record("external_id", externalId.value.flatMap { InputDomain.textProblem($0, maximum: 200) })
        try checks.finish()
        return copy
    }
}
