import AtriumCore
import Foundation
import PostgresNIO

/// An investment portfolio: a ledger of entries in one base currency, booked by one cost
/// method (FIFO or moving average, as tax rules differ by country).
struct Portfolio: Codable, Sendable {
    var id, ownerId: UUID
    var name: String
    /// ISO 4217: what holdings, returns and realized gains are reported in.
    var baseCurrency: String
    var costMethod: CostMethod
    var createdAt, updatedAt: Date

    init(_ row: PostgresRow) throws {
        var columns = RowReader(row)
        id = try columns.next()
        ownerId = try columns.next()
        name = try columns.next()
        baseCurrency = try columns.next()
        let method: String = try columns.next()
        costMethod = CostMethod(rawValue: method) ?? .fifo
        createdAt = try columns.next()
        updatedAt = try columns.next()
    }
}

/// How a portfolio matches sells to buys.
enum CostMethod: String, Codable, Sendable, CaseIterable, JSONSchemaDescribable {
    case fifo, average

    var lotMethod: LotBook.Method { self == .fifo ? .fifo : .average }
}

/// A portfolio's fields as a request sends them (POST: a new one; PATCH: a JSON Merge
/// Patch). The base currency is fixed once set: every entry's FX was taken against it.
struct PortfolioFields: RecordFields {
    var name: Patch<String>
    var baseCurrency: Patch<String>
    var costMethod: Patch<CostMethod>
    var ownerId: Patch<UUID>

    func validated(creating: Bool) throws -> PortfolioFields {
        try MergePatch.refuseClearing([
            ("name", name.isCleared), ("base_currency", baseCurrency.isCleared), ("cost_method", costMethod.isCleared), ("owner_id", ownerId.isCleared),
        ])
        var checks = FieldChecks()
        for (field, given) in [("name", name.isSet), ("base_currency", baseCurrency.isSet)] {
            checks.fail(field, "is required", when: creating && !given)
        }
        checks.fail("base_currency", "cannot change: the entries' exchange rates were taken against it (create a new portfolio)", when: !creating && baseCurrency.isSet)
        checks.record("name", name.value.flatMap { PortfolioValidation.textProblem($0, maximum: 200) })
        if creating { checks.record("base_currency", baseCurrency.value.flatMap(PortfolioValidation.currencyProblem)) }
        try checks.finish()
        return self
    }
}

/// Checks the module's bodies share.
enum PortfolioValidation {
    static func textProblem(_ text: String, maximum: Int) -> String? {
        if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return "must not be blank" }
        if text.count > maximum { return "must be at most \(maximum) characters" }
        return InputDomain.textProblem(text)
    }

    static func currencyProblem(_ code: String) -> String? {
        CurrencyCodes.isKnown(code) ? nil : "must be an active ISO 4217 currency code, such as USD or INR"
    }

    static func symbolProblem(_ symbol: String) -> String? {
        let bytes = Array(symbol.utf8)
        guard (1...32).contains(bytes.count) else { return "must be 1 to 32 characters" }
        let allowed = bytes.allSatisfy { byte in
            (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || [UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "_"), UInt8(ascii: "-")].contains(byte)
        }
        guard allowed, let first = bytes.first, first != UInt8(ascii: "."), first != UInt8(ascii: ":"), first != UInt8(ascii: "_"), first != UInt8(ascii: "-")
        else { return "must be upper-case letters, digits and . : _ - (starting with a letter or digit), such as AAPL or RELIANCE.NS" }
        return nil
    }
}
