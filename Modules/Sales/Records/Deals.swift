import AtriumCore
import Foundation
import PostgresNIO

/// An opportunity moving through the pipeline. Moving it to another stage records a
/// `stage_change` activity in the same transaction.
struct Deal: Codable, Sendable {
    var id, ownerId: UUID
    var title: String
    var companyId, contactId: UUID?
    /// A lowercase name of the tenant's choosing (`lead` when created without one).
    var stage: String
    /// Minor units of `currency`.
    var amount: Int64
    var currency: String
    /// YYYY-MM-DD.
    var expectedClose: String?
    /// open, won or lost.
    var status: String
    var externalId: String?
    var createdAt, updatedAt: Date

    init(_ row: PostgresRow) throws {
        (id, ownerId, title, companyId, contactId, stage, amount, currency, expectedClose, status, externalId, createdAt, updatedAt) = try row.decode(
            (UUID, UUID, String, UUID?, UUID?, String, Int64, String, String?, String, String?, Date, Date).self)
    }
}

/// A deal's fields as a request sends them: a new deal's (POST: a title is needed; the
/// rest defaults to stage `lead`, 0 USD, `open`), or the changes to one (PATCH, a JSON
/// Merge Patch: `null` clears the company, contact, expected close or external id).
struct DealFields: RecordFields {
    var title, stage: Patch<String>
    var companyId, contactId: Patch<UUID>
    /// Minor units of `currency`.
    var amount: Patch<Int64>
    var currency: Patch<String>
    /// YYYY-MM-DD.
    var expectedClose: Patch<String>
    var status: Patch<String>
    var externalId: Patch<String>
    var ownerId: Patch<UUID>

    func validated(creating: Bool) throws -> DealFields {
        try MergePatch.refuseClearing([
            ("title", title.isCleared), ("stage", stage.isCleared), ("amount", amount.isCleared), ("currency", currency.isCleared),
            ("status", status.isCleared), ("owner_id", ownerId.isCleared),
        ])
        var checks = FieldChecks()
        checks.fail("title", "is required", when: creating && !title.isSet)
        checks.record("title", title.value.flatMap { Validation.nameProblem($0, maximum: 300) })
        checks.fail("stage", "is a lowercase name such as qualified or proposal",
                    when: stage.value.map { $0.range(of: "^[a-z][a-z0-9_]{0,39}\\z", options: .regularExpression) == nil } ?? false)
        checks.record("amount", amount.value.flatMap(Validation.amountProblem))
        checks.record("currency", currency.value.flatMap(Validation.currencyProblem))
        checks.fail("status", "must be open, won or lost", when: status.value.map { !["open", "won", "lost"].contains($0) } ?? false)
        checks.fail("expected_close", "must be a date, YYYY-MM-DD", when: expectedClose.value.map { !InputDomain.isDate($0) } ?? false)
        checks.record("external_id", externalId.value.flatMap { InputDomain.textProblem($0, maximum: 200) })
        try checks.finish()
        return self
    }
}

/// Deals per stage, with counts and totals per currency (amounts never mix currencies).
struct Pipeline: Codable, Sendable {
    struct Total: Codable, Sendable {
        var currency: String
        /// Exact, in minor units: a sum of many amounts can pass what an Int64 holds.
        var amount: Decimal
    }
    struct Stage: Codable, Sendable {
        var stage: String
        var count: Int64
        var totals: [Total]
    }
    var status: String
    var stages: [Stage]
}

struct DealItem: Codable, Sendable {
    var id: UUID
    var productId: UUID
    var quantity: Int32
    var unitPrice: Int64
}

extension DealItem {
    init(_ row: PostgresRow) throws {
        (id, productId, quantity, unitPrice) = try row.decode((UUID, UUID, Int32, Int64).self)
    }
}

struct DealItemInput: Codable, Sendable {
    var productId: UUID
    var quantity: Int32
    /// Defaults to the product's price.
    var unitPrice: Int64?

    func validated() throws -> DealItemInput {
        try DealItemPatch(quantity: .set(quantity), unitPrice: unitPrice.map(Patch.set) ?? .keep).validated()
        return self
    }
}

/// A change of a line item (JSON Merge Patch); both fields must keep a value.
struct DealItemPatch: Codable, Sendable {
    var quantity: Patch<Int32>
    var unitPrice: Patch<Int64>

    @discardableResult
    func validated() throws -> DealItemPatch {
        try MergePatch.refuseClearing([("quantity", quantity.isCleared), ("unit_price", unitPrice.isCleared)])
        var checks = FieldChecks()
        checks.fail("quantity", "must be positive", when: (quantity.value ?? 1) <= 0)
        checks.record("unit_price", unitPrice.value.flatMap(Validation.amountProblem))
        try checks.finish()
        return self
    }
}
