import AtriumCore
import Foundation
import PostgresNIO

/// An item of the tenant's catalog; `sku` is its natural key. Everyone in the tenant
/// reads the catalog; its owner or a manager changes an entry.
struct Product: Codable, Sendable {
    var id, ownerId: UUID
    /// Unique in the tenant: imports match products on it.
    var sku: String
    var name: String
    /// Minor units of `currency`.
    var unitPrice: Int64
    var currency: String
    var createdAt, updatedAt: Date

    init(_ row: PostgresRow) throws {
        (id, ownerId, sku, name, unitPrice, currency, createdAt, updatedAt) = try row.decode((UUID, UUID, String, String, Int64, String, Date, Date).self)
    }
}

/// A product's fields as a request sends them: a new product's (POST: every field but
/// the owner), or the changes to one (PATCH, a JSON Merge Patch). A product has no
/// empty field, so none may be cleared with `null`.
struct ProductFields: RecordFields {
    var sku, name: Patch<String>
    /// Minor units of `currency`.
    var unitPrice: Patch<Int64>
    var currency: Patch<String>
    var ownerId: Patch<UUID>

    func validated(creating: Bool) throws -> ProductFields {
        try MergePatch.refuseClearing([
            ("sku", sku.isCleared), ("name", name.isCleared), ("unit_price", unitPrice.isCleared), ("currency", currency.isCleared),
            ("owner_id", ownerId.isCleared),
        ])
        var checks = FieldChecks()
        for (field, given) in [("sku", sku.isSet), ("name", name.isSet), ("unit_price", unitPrice.isSet), ("currency", currency.isSet)] {
            checks.fail(field, "is required", when: creating && !given)
        }
        checks.record("sku", sku.value.flatMap { Validation.nameProblem($0, maximum: 100) })
        checks.record("name", name.value.flatMap { Validation.nameProblem($0, maximum: 300) })
        checks.record("unit_price", unitPrice.value.flatMap(Validation.amountProblem))
        checks.record("currency", currency.value.flatMap(Validation.currencyProblem))
        try checks.finish()
        return self
    }
}
