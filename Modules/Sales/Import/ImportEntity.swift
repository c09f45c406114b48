import AtriumCore
import Foundation

/// What one entity's import needs: its fields as they arrive (all text), how a row is
/// checked and normalised, and its natural key. The set-based SQL that lands the staged
/// rows lives in `ImportLanding`.
struct ImportEntity: Sendable {
    enum Name: String, Codable, Sendable, CaseIterable {
        case contacts, companies, products, deals
    }

    let name: Name
    /// Staging columns, in order (after `line`).
    let fields: [String]
    /// The natural key upserts match on; required in every row.
    let key: String
    /// Normalises `values` (aligned with `fields`, nil for absent) in place; returns the
    /// reason the row is rejected, if it is.
    let check: @Sendable (inout [String?]) -> String?

    static func named(_ name: Name) -> ImportEntity {
        switch name {
        case .contacts: contacts
        case .companies: companies
        case .products: products
        case .deals: deals
        }
    }

    static let contacts = ImportEntity(
        name: .contacts, fields: ["email", "first_name", "last_name", "phone", "company_domain", "tags", "external_id"], key: "email"
    ) { values in
        values[0] = values[0].map(Validation.normalizedKey)
        guard let email = values[0], !email.isEmpty else { return "email is required" }
        guard Validation.isEmail(email) else { return "email '\(email.prefix(80))' is not an email address" }
        if !Validation.fits(values[1], 200) || !Validation.fits(values[2], 200) { return "a name is longer than 200 characters" }
        if !Validation.fits(values[3], 50) { return "phone is longer than 50 characters" }
        values[4] = values[4].map(Validation.normalizedKey).flatMap { $0.isEmpty ? nil : $0 }
        if let domain = values[4], !Validation.isDomain(domain) { return "company_domain '\(domain.prefix(80))' is not a domain name" }
        if let tags = values[5] {
            switch Validation.normalizedTags(tags) {
            case .success(let normalized): values[5] = normalized
            case .failure(let problem): return "tags: \(problem.description)"
            }
        }
        return nil
    }

    static let companies = ImportEntity(name: .companies, fields: ["domain", "name", "external_id"], key: "domain") { values in
        values[0] = values[0].map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard let domain = values[0], !domain.isEmpty else { return "domain is required" }
        guard Validation.isDomain(domain) else { return "domain '\(domain.prefix(80))' is not a domain name" }
        guard let name = values[1], !name.isEmpty, InputDomain.length(name) <= 300 else { return "name is required (at most 300 characters)" }
        return nil
    }

    static let products = ImportEntity(name: .products, fields: ["sku", "name", "unit_price", "currency"], key: "sku") { values in
        values[0] = values[0].map { $0.trimmingCharacters(in: .whitespaces) }
        guard let sku = values[0], !sku.isEmpty, InputDomain.length(sku) <= 100 else { return "sku is required (at most 100 characters)" }
        guard let name = values[1], !name.isEmpty, InputDomain.length(name) <= 300 else { return "name is required (at most 300 characters)" }
        guard let price = values[2].flatMap({ Int64($0.trimmingCharacters(in: .whitespaces)) }), (0...InputDomain.maximumAmount).contains(price) else {
            return "unit_price must be a whole number of minor units from 0 to \(InputDomain.maximumAmount)"
        }
        values[2] = String(price)
        values[3] = values[3]?.trimmingCharacters(in: .whitespaces).uppercased()
        guard let currency = values[3], Validation.isCurrency(currency) else { return "currency must be an ISO 4217 code" }
        return nil
    }

    static let deals = ImportEntity(
        name: .deals, fields: ["external_id", "title", "stage", "amount", "currency", "status", "expected_close", "contact_email", "company_domain"],
        key: "external_id"
    ) { values in
        guard let external = values[0], !external.isEmpty else { return "external_id is required" }
        guard let title = values[1], !title.isEmpty, InputDomain.length(title) <= 300 else { return "title is required (at most 300 characters)" }
        values[2] = values[2].flatMap { $0.isEmpty ? nil : $0.lowercased() } ?? "lead"
        if values[2]?.range(of: "^[a-z][a-z0-9_]{0,39}\\z", options: .regularExpression) == nil { return "stage must be a lowercase name" }
        guard let amount = Int64((values[3] ?? "0").trimmingCharacters(in: .whitespaces)), (0...InputDomain.maximumAmount).contains(amount) else {
            return "amount must be a whole number of minor units from 0 to \(InputDomain.maximumAmount)"
        }
        values[3] = String(amount)
        values[4] = (values[4] ?? "USD").uppercased()
        guard let currency = values[4], Validation.isCurrency(currency) else { return "currency must be an ISO 4217 code" }
        values[5] = values[5].flatMap { $0.isEmpty ? nil : $0.lowercased() } ?? "open"
        guard let status = values[5], ["open", "won", "lost"].contains(status) else { return "status must be open, won or lost" }
        if let date = values[6], !date.isEmpty, !InputDomain.isDate(date) {
            return "expected_close must be a date, YYYY-MM-DD"
        }
        values[7] = values[7].map { $0.lowercased() }
        values[8] = values[8].map { $0.lowercased() }
        return nil
    }
}
