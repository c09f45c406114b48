import AtriumCore
import AtriumSales
import AtriumTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Testing

/// Ownership as the kernel declares and enforces it, seen through Sales.
@Suite struct SalesOwnershipTests {
    static let base = "/v1/tenants/acme/sales"

    @Test func rowsCreatedWithAnAPIKeyBelongToTheUserItActsFor() async throws {
        let db = try await TestDatabase.create(modules: [SalesModule()])
        let tenant = try await db.createTenant("acme", modules: ["sales"])
        let ann = try await db.createUser("ann@acme.test", password: "correct horse battery", roles: ["sales_rep"], in: tenant)
        _ = try await db.createUser("bob@acme.test", password: "correct horse battery", roles: ["sales_rep"], in: tenant)
        let boss = try await db.createUser("boss@acme.test", password: "correct horse battery", roles: ["owner"], in: tenant)
        // A real user of another tenant: an id that exists, just not here.
        let globex = try await db.createTenant("globex", modules: ["sales"])
        let eve = try await db.createUser("eve@globex.test", password: "correct horse battery", roles: ["sales_rep"], in: globex)
        try await withTestApplication(db, modules: [SalesModule()]) { client, identity in
            let bossToken = try await client.login("acme", "boss@acme.test", "correct horse battery").access
            let annToken = try await client.login("acme", "ann@acme.test", "correct horse battery").access
            let bobToken = try await client.login("acme", "bob@acme.test", "correct horse battery").access
            func key(_ body: String) async throws -> String {
                let created = try await client.send(.post, "/v1/tenants/acme/admin/api-keys", token: bossToken, json: body)
                #expect(created.status == .created, "\(String(buffer: created.body))")
                return try #require(json(created)["key"]?.string)
            }
            // A key made for Ann: what it creates is Ann's, and Bob cannot see it.
            let annKey = try await key(#"{"name":"ann's sync","permissions":["sales.records.own"],"acts_for":"\#(ann.id.uuidString)"}"#)
            let made = try await client.send(.post, "\(Self.base)/contacts", token: annKey, json: #"{"email":"via-key@example.com"}"#)
            #expect(made.status == .created)
            #expect(json(made)["owner_id"]?.string?.lowercased() == ann.id.uuidString.lowercased())
            let id = try #require(json(made)["id"]?.string)
            #expect(try await client.send(.get, "\(Self.base)/contacts/\(id)", token: annToken).status == .ok)
            #expect(try await client.send(.get, "\(Self.base)/contacts/\(id)", token: bobToken).status == .notFound)
            // The key sees what Ann sees, not more.
            let bobs = try await client.send(.post, "\(Self.base)/contacts", token: bobToken, json: #"{"email":"bobs@example.com"}"#)
            let bobsID = try #require(json(bobs)["id"]?.string)
            #expect(try await client.send(.get, "\(Self.base)/contacts/\(bobsID)", token: annKey).status == .notFound)

            // Without acts_for, a key acts for its creator.
            let bossKey = try await key(#"{"name":"boss's","permissions":["sales.records.own"]}"#)
            let bossMade = try await client.send(.post, "\(Self.base)/contacts", token: bossKey, json: #"{"email":"boss@example.com"}"#)
            #expect(json(bossMade)["owner_id"]?.string?.lowercased() == boss.id.uuidString.lowercased())
            // A user of another tenant, or no user at all, cannot be named.
            for actsFor in [eve.id, UUID()] {
                let stranger = try await client.send(
                    .post, "/v1/tenants/acme/admin/api-keys", token: bossToken,
                    json: #"{"name":"x","permissions":["sales.records.own"],"acts_for":"\#(actsFor.uuidString)"}"#)
                #expect(stranger.status == .unprocessableContent, "acts_for \(actsFor)")
                #expect(json(stranger)["errors"]?.array?.first?["field"]?.string == "acts_for")
            }

            // A key of no user (as `atrium api-keys create` makes without --acts-for) cannot use owned records.
            let orphan = try await db.withOwner { connection in
                try await connection.withTenantTransaction(tenant.id, logger: TestDatabase.logger) { connection in
                    try await APIKeyStore(masterKey: identity.masterKey, logger: TestDatabase.logger).create(
                        tenantID: tenant.id, name: "orphan", permissions: ["sales.records.any"], expiresAt: nil, createdBy: "operator:test",
                        actsFor: nil, on: connection)
                }
            }
            let refused = try await client.send(.get, "\(Self.base)/contacts", token: orphan.key)
            #expect(refused.status == .forbidden)
            #expect(json(refused)["code"]?.string == "no_acting_user")
        }
    }

    @Test func ownedRoutesShowTheirAccessAndCreatesTheirIdempotencyKeyInOpenAPI() async throws {
        let db = try await TestDatabase.create(modules: [SalesModule()])
        try await withTestApplication(db, modules: [SalesModule()]) { client, _ in
            let document = json(try await client.get("/v1/openapi.json", token: nil))
            let paths = try #require(document["paths"])
            let list = paths["/v1/tenants/{tenant}/sales/contacts"]?["get"]
            #expect(list?["x-atrium-permission"]?.string == "sales.records.own")
            #expect(list?["x-atrium-owned"]?["any"]?.string == "sales.records.any")
            let create = paths["/v1/tenants/{tenant}/sales/contacts"]?["post"]
            #expect(create?["parameters"]?.array?.contains { $0["name"]?.string == "Idempotency-Key" && $0["in"]?.string == "header" } == true)
            #expect(paths["/v1/tenants/{tenant}/sales/contacts/export"]?["get"]?["x-atrium-permission"]?.string == "sales.records.import")
            // Named bodies, and an upload a generator that skips text/csv still produces.
            #expect(create?["requestBody"]?["content"]?["application/json"]?["schema"] == ["$ref": "#/components/schemas/ContactFields"])
            #expect(list?["responses"]?["200"]?["content"]?["application/json"]?["schema"] == ["$ref": "#/components/schemas/ContactPage"])
            #expect(document["components"]?["schemas"]?["Contact"]?["properties"]?["email"] != nil)
            let upload = paths["/v1/tenants/{tenant}/sales/imports"]?["post"]?["requestBody"]?["content"]
            #expect(upload?["application/octet-stream"]?["schema"] == ["type": "string", "format": "binary"])
            #expect(upload?["text/csv"] != nil)
            // Every Sales route declares a permission: no route is open to any caller by default.
            guard case .object(let all) = paths else { return }
            var undeclared: [String] = []
            for (path, operations) in all where path.contains("/sales/") {
                guard case .object(let byMethod) = operations else { continue }
                for (method, operation) in byMethod where operation["x-atrium-permission"] == nil { undeclared.append("\(method) \(path)") }
            }
            #expect(undeclared == [])
        }
    }
}

/// PATCH is JSON Merge Patch (RFC 7396): absent keeps, null clears.
@Suite struct SalesMergePatchTests {
    @Test func nullClearsAFieldAndAbsentKeepsIt() async throws {
        try await SalesTeam.withTeam { client, team in
            let base = "/v1/tenants/acme/sales"
            let company = try await client.send(.post, "\(base)/companies", token: team.ann, json: #"{"name":"Acme","domain":"acme.example"}"#)
            let companyID = try #require(json(company)["id"]?.string)
            let made = try await client.send(
                .post, "\(base)/contacts", token: team.ann,
                json: #"{"email":"a@example.com","first_name":"Ann","phone":"+1 555","tags":["vip"],"company_id":"\#(companyID)"}"#)
            let id = try #require(json(made)["id"]?.string)
            let cleared = try await client.send(.patch, "\(base)/contacts/\(id)", token: team.ann, json: #"{"phone":null,"company_id":null,"tags":null}"#)
            #expect(cleared.status == .ok)
            let body = json(cleared)
            // Responses leave empty fields out.
            #expect(body["phone"] == nil)
            #expect(body["company_id"] == nil)
            #expect(body["tags"] == .array([]))
            #expect(body["email"]?.string == "a@example.com")
            #expect(body["first_name"]?.string == "Ann")
            let renamed = json(try await client.send(.patch, "\(base)/contacts/\(id)", token: team.ann, json: #"{"first_name":"Anna"}"#))
            #expect(renamed["first_name"]?.string == "Anna")
            #expect(renamed["email"]?.string == "a@example.com")
            let noOwner = try await client.send(.patch, "\(base)/contacts/\(id)", token: team.ann, json: #"{"owner_id":null}"#)
            #expect(noOwner.status == .unprocessableContent)
            #expect(json(noOwner)["errors"]?.array?.first?["field"]?.string == "owner_id")
            let wrongType = try await client.send(.patch, "\(base)/contacts/\(id)", token: team.ann, json: #"{"phone":12}"#)
            #expect(wrongType.status == .unprocessableContent)

            // Companies and deals likewise; a field that must hold a value cannot be cleared.
            let noDomain = json(try await client.send(.patch, "\(base)/companies/\(companyID)", token: team.ann, json: #"{"domain":null}"#))
            #expect(noDomain["domain"] == nil)
            #expect(noDomain["name"]?.string == "Acme")
            let deal = try await client.send(
                .post, "\(base)/deals", token: team.ann,
                json: #"{"title":"Big","company_id":"\#(companyID)","stage":"qualified","amount":100,"currency":"EUR","expected_close":"2026-12-31"}"#)
            let dealID = try #require(json(deal)["id"]?.string)
            let open = json(try await client.send(.patch, "\(base)/deals/\(dealID)", token: team.ann, json: #"{"expected_close":null,"company_id":null}"#))
            #expect(open["expected_close"] == nil)
            #expect(open["company_id"] == nil)
            #expect(open["amount"] == .number(100))
            let untitled = try await client.send(.patch, "\(base)/deals/\(dealID)", token: team.ann, json: #"{"title":null}"#)
            #expect(untitled.status == .unprocessableContent)
            #expect(json(untitled)["errors"]?.array?.first?["field"]?.string == "title")
        }
    }
}
