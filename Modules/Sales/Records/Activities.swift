import AtriumCore
import Foundation
import PostgresNIO

/// A call, email, meeting or note on a contact or deal (and the stage changes the
/// module records itself).
struct Activity: Codable, Sendable {
    var id, ownerId: UUID
    /// call, email, meeting or note; `stage_change` for what the module records itself.
    var kind: String
    var subject, body: String
    var contactId, dealId: UUID?
    var occurredAt: Date

    init(_ row: PostgresRow) throws {
        (id, ownerId, kind, subject, body, contactId, dealId, occurredAt) = try row.decode((UUID, UUID, String, String, String, UUID?, UUID?, Date).self)
    }
}

struct ActivityInput: Codable, Sendable {
    var kind, subject: String
    var body: String?
    var contactId, dealId: UUID?
    var occurredAt: Date?

    func validated() throws -> ActivityInput {
        var checks = FieldChecks()
        checks.fail("kind", "must be call, email, meeting or note", when: !["call", "email", "meeting", "note"].contains(kind))
        checks.record("subject", Validation.nameProblem(subject, maximum: 500))
        checks.fail("body", "must be at most 20000 characters", when: InputDomain.length(body ?? "") > 20_000)
        checks.fail("contact_id", "an activity is on a contact or a deal", when: contactId == nil && dealId == nil)
        try checks.finish()
        return self
    }
}

/// A correction of a logged activity (JSON Merge Patch; stage changes are history and
/// cannot be corrected). `null` clears the body; subject and time must keep a value.
struct ActivityPatch: Codable, Sendable {
    var subject: Patch<String>
    var body: Patch<String>
    var occurredAt: Patch<Date>

    func validated() throws -> ActivityPatch {
        try MergePatch.refuseClearing([("subject", subject.isCleared), ("occurred_at", occurredAt.isCleared)])
        var checks = FieldChecks()
        checks.record("subject", subject.value.flatMap { Validation.nameProblem($0, maximum: 500) })
        checks.fail("body", "must be at most 20000 characters", when: InputDomain.length(body.value ?? "") > 20_000)
        try checks.finish()
        return self
    }
}
