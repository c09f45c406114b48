import AtriumCore
import Foundation
import PostgresNIO

/// What Sales imports, for the kernel's bulk import: each entity's fields as they
/// arrive (all text), its row checks and its one set-based landing statement.
/// Imported rows belong to the importer; updated rows keep their owner; `upsert` updates
/// only rows whose values differ, so re-importing a file changes nothing.
enum SalesImportEntities {
    /// Every entity Sales imports: `POST sales/imports?entity=<name>`.
    static let all = [contacts, companies, products, deals]

    static let contacts = ImportEntity(
        "contacts", fields: ["email", "first_name", "last_name", "phone", "company_domain", "tags", "external_id"], key: "email",
        table: "sales_contacts", check: { values in
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
    }, land: { landing in
        """
        WITH written AS (
            INSERT INTO sales_contacts AS c (tenant_id, owner_id, email, first_name, last_name, phone, company_id, tags, external_id)
            SELECT \(landing.tenantID), \(landing.ownerID), s.email, coalesce(s.first_name, ''), coalesce(s.last_name, ''), s.phone, co.id,
                   coalesce(string_to_array(s.tags, ';'), '{}'), s.external_id
            FROM atrium_import_stage s
            LEFT JOIN sales_companies co ON co.domain = s.company_domain AND (\(landing.seesAll) OR co.owner_id = \(landing.ownerID))
            ON CONFLICT (tenant_id, email) DO UPDATE SET
                first_name = excluded.first_name, last_name = excluded.last_name, phone = excluded.phone,
                company_id = excluded.company_id, tags = excluded.tags, external_id = excluded.external_id, updated_at = now()
            WHERE \(landing.upsert) AND (c.first_name, c.last_name, c.phone, c.company_id, c.tags, c.external_id)
                IS DISTINCT FROM (excluded.first_name, excluded.last_name, excluded.phone, excluded.company_id, excluded.tags, excluded.external_id)
            RETURNING 1
        ) SELECT count(*)::int8 FROM written
        """
    })

    static let companies = ImportEntity(
        "companies", fields: ["domain", "name", "external_id"], key: "domain", table: "sales_companies", check: { values in
        values[0] = values[0].map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard let domain = values[0], !domain.isEmpty else { return "domain is required" }
        guard Validation.isDomain(domain) else { return "domain '\(domain.prefix(80))' is not a domain name" }
        guard let name = values[1], !name.isEmpty, InputDomain.length(name) <= 300 else { return "name is required (at most 300 characters)" }
        return nil
    }, land: { landing in
        """
        WITH written AS (
            INSERT INTO sales_companies AS c (tenant_id, owner_id, domain, name, external_id)
            SELECT \(landing.tenantID), \(landing.ownerID), s.domain, s.name, s.external_id FROM atrium_import_stage s
            ON CONFLICT (tenant_id, domain) DO UPDATE SET name = excluded.name, external_id = excluded.external_id, updated_at = now()
            WHERE \(landing.upsert) AND (c.name, c.external_id) IS DISTINCT FROM (excluded.name, excluded.external_id)
            RETURNING 1
        ) SELECT count(*)::int8 FROM written
        """
    })

    static let products = ImportEntity(
        "products", fields: ["sku", "name", "unit_price", "currency"], key: "sku", table: "sales_products", check: { values in
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
    }, land: { landing in
        """
        WITH written AS (
            INSERT INTO sales_products AS p (tenant_id, owner_id, sku, name, unit_price, currency)
            SELECT \(landing.tenantID), \(landing.ownerID), s.sku, s.name, s.unit_price::int8, s.currency FROM atrium_import_stage s
            ON CONFLICT (tenant_id, sku) DO UPDATE SET name = excluded.name, unit_price = excluded.unit_price,
                currency = excluded.currency, updated_at = now()
            WHERE \(landing.upsert) AND (p.name, p.unit_price, p.currency) IS DISTINCT FROM (excluded.name, excluded.unit_price, excluded.currency)
            RETURNING 1
        ) SELECT count(*)::int8 FROM written
        """
    })

    static let deals = ImportEntity(
        "deals", fields: ["external_id", "title", "stage", "amount", "currency", "status", "expected_close", "contact_email", "company_domain"],
        key: "external_id", table: "sales_deals", check: { values in
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
    }, land: { landing in
        """
        WITH written AS (
            INSERT INTO sales_deals AS d (tenant_id, owner_id, external_id, title, stage, amount, currency, status, expected_close, contact_id, company_id)
            SELECT \(landing.tenantID), \(landing.ownerID), s.external_id, s.title, s.stage, s.amount::int8, s.currency, s.status,
                   s.expected_close::date, ct.id, co.id
            FROM atrium_import_stage s
            LEFT JOIN sales_contacts ct ON ct.email = s.contact_email AND (\(landing.seesAll) OR ct.owner_id = \(landing.ownerID))
            LEFT JOIN sales_companies co ON co.domain = s.company_domain AND (\(landing.seesAll) OR co.owner_id = \(landing.ownerID))
            ON CONFLICT (tenant_id, external_id) DO UPDATE SET title = excluded.title, stage = excluded.stage, amount = excluded.amount,
                currency = excluded.currency, status = excluded.status, expected_close = excluded.expected_close,
                contact_id = excluded.contact_id, company_id = excluded.company_id, updated_at = now()
            WHERE \(landing.upsert) AND (d.title, d.stage, d.amount, d.currency, d.status, d.expected_close, d.contact_id, d.company_id)
                IS DISTINCT FROM (excluded.title, excluded.stage, excluded.amount, excluded.currency, excluded.status, excluded.expected_close,
                                  excluded.contact_id, excluded.company_id)
            RETURNING 1
        ) SELECT count(*)::int8 FROM written
        """
    })
}
