import AtriumCore
import AtriumSales
import AtriumTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOFoundationCompat
import PostgresNIO
import Testing

/// A sales team on a real database: two reps and a manager, logged in for real.
struct SalesTeam {
    let db: TestDatabase
    let tenant: Tenant
    let ann: String
    let bob: String
    let manager: String
    let annID: UUID
    let bobID: UUID

    static func withTeam(_ body: @escaping @Sendable (any TestClientProtocol, SalesTeam) async throws -> Void) async throws {
        let db = try await TestDatabase.create(modules: [SalesModule()])
        let tenant = try await db.createTenant("acme", modules: ["sales"])
        let ann = try await db.createUser("ann@acme.test", password: "correct horse battery", roles: ["sales_rep"], in: tenant)
        let bob = try await db.createUser("bob@acme.test", password: "correct horse battery", roles: ["sales_rep"], in: tenant)
        _ = try await db.createUser("max@acme.test", password: "correct horse battery", roles: ["sales_manager"], in: tenant)
        try await withTestApplication(db, modules: [SalesModule()]) { client, _ in
            let team = SalesTeam(
                db: db, tenant: tenant,
                ann: try await client.login("acme", "ann@acme.test", "correct horse battery").access,
                bob: try await client.login("acme", "bob@acme.test", "correct horse battery").access,
                manager: try await client.login("acme", "max@acme.test", "correct horse battery").access, annID: ann.id, bobID: bob.id)
            try await body(client, team)
        }
    }
}

@Suite("Sales records: owner scoping, idempotency, pipeline")
struct SalesAccessTests {
    static let base = "/v1/tenants/acme/sales"

    @Test func aRepNeverSeesAnotherRepsRecordsByAnyRoute() async throws {
        try await SalesTeam.withTeam { client, team in
            let created = try await client.send(.post, "\(Self.base)/contacts", token: team.ann, json: #"{"email":"Lead@Example.com","first_name":"Lea","tags":["vip"]}"#)
            #expect(created.status == .created)
            #expect(json(created)["email"]?.string == "lead@example.com")
            let id = try #require(json(created)["id"]?.string)
            // Bob: by id, list, search, change, delete, export — as if it did not exist.
            #expect(try await client.send(.get, "\(Self.base)/contacts/\(id)", token: team.bob).status == .notFound)
            #expect(try await client.send(.patch, "\(Self.base)/contacts/\(id)", token: team.bob, json: #"{"first_name":"X"}"#).status == .notFound)
            #expect(try await client.send(.delete, "\(Self.base)/contacts/\(id)", token: team.bob).status == .notFound)
            let bobList = try await client.send(.get, "\(Self.base)/contacts?q=lead", token: team.bob)
            #expect(json(bobList)["data"]?.array?.isEmpty == true)
            let bobExport = try await client.send(.get, "\(Self.base)/contacts/export", token: team.bob)
            #expect(bobExport.status == .ok, "an export that failed would also not contain her contact")
            #expect(String(buffer: bobExport.body).hasPrefix("id,email,"))
            #expect(String(buffer: bobExport.body).contains("lead@example.com") == false)
            // Nor can he point a deal at her contact.
            let deal = try await client.send(.post, "\(Self.base)/deals", token: team.bob, json: #"{"title":"Steal","contact_id":"\#(id)"}"#)
            #expect(deal.status == .unprocessableContent)
            // A duplicate email is refused whoever owns the first.
            #expect(try await client.send(.post, "\(Self.base)/contacts", token: team.bob, json: #"{"email":"lead@example.com"}"#).status == .conflict)
            // Ann and the manager see it; only the manager may give it to Bob.
            #expect(try await client.send(.get, "\(Self.base)/contacts/\(id)", token: team.ann).status == .ok)
            let reassignByRep = try await client.send(.patch, "\(Self.base)/contacts/\(id)", token: team.ann, json: #"{"owner_id":"\#(team.bobID)"}"#)
            #expect(reassignByRep.status == .forbidden)
            let managerList = try await client.send(.get, "\(Self.base)/contacts", token: team.manager)
            #expect(json(managerList)["data"]?.array?.count == 1)
            let reassigned = try await client.send(.patch, "\(Self.base)/contacts/\(id)", token: team.manager, json: #"{"owner_id":"\#(team.bobID)"}"#)
            #expect(json(reassigned)["owner_id"]?.string == team.bobID.uuidString.lowercased())
            #expect(try await client.send(.get, "\(Self.base)/contacts/\(id)", token: team.ann).status == .notFound)
            #expect(try await client.send(.get, "\(Self.base)/contacts/\(id)", token: team.bob).status == .ok)
            let export = try await client.send(.get, "\(Self.base)/contacts/export", token: team.bob)
            #expect(export.headers[.contentType] == "text/csv; charset=utf-8")
            #expect(String(buffer: export.body).hasPrefix("id,email,first_name,last_name,phone,company_id,tags,external_id,owner_id,updated_at\r\n"))
            #expect(String(buffer: export.body).contains("lead@example.com,Lea,,,,vip,,"))
        }
    }

    @Test func theDatabaseHidesOtherOwnersRowsEvenWithoutAFilter() async throws {
        try await SalesTeam.withTeam { client, team in
            _ = try await client.send(.post, "\(Self.base)/companies", token: team.ann, json: #"{"name":"Ann Co","domain":"ann.example"}"#)
            _ = try await client.send(.post, "\(Self.base)/companies", token: team.bob, json: #"{"name":"Bob Co","domain":"bob.example"}"#)
            // The application role, acting as Bob, with a query that forgot the owner filter.
            let visible = try await team.db.withApp { database in
                try await database.withTenantTransaction(team.tenant.id, principal: team.bobID, logger: TestDatabase.logger) { connection in
                    try await connection.query("SELECT domain FROM sales_companies ORDER BY domain", logger: TestDatabase.logger).collect()
                        .map { try $0.decode(String.self) }
                }
            }
            #expect(visible == ["bob.example"])
            // With no principal at all, nothing.
            let anonymous = try await team.db.withApp { database in
                try await database.withTenantTransaction(team.tenant.id, logger: TestDatabase.logger) { connection in
                    try await connection.query("SELECT count(*)::int FROM sales_companies", logger: TestDatabase.logger).collect().first?.decode(Int.self)
                }
            }
            #expect(anonymous == 0)
        }
    }

    @Test func idempotencyKeysReplayTheFirstAnswer() async throws {
        try await SalesTeam.withTeam { client, team in
            let headers: HTTPFields = [HTTPField.Name("Idempotency-Key")!: "create-1"]
            let first = try await client.send(.post, "\(Self.base)/products", token: team.ann, json: #"{"sku":"A-1","name":"Widget","unit_price":1250,"currency":"EUR"}"#, headers: headers)
            let again = try await client.send(.post, "\(Self.base)/products", token: team.ann, json: #"{"sku":"A-1","name":"Widget","unit_price":1250,"currency":"EUR"}"#, headers: headers)
            #expect(first.status == .created)
            #expect(again.status == .created)
            #expect(json(first)["id"] == json(again)["id"])
            let different = try await client.send(.post, "\(Self.base)/products", token: team.ann, json: #"{"sku":"A-2","name":"Other","unit_price":1,"currency":"EUR"}"#, headers: headers)
            #expect(different.status == .unprocessableContent)
            #expect(json(different)["code"]?.string == "idempotency_key_reused")
            // Products are the tenant's catalog: Bob reads it, but cannot change Ann's entry.
            let list = try await client.send(.get, "\(Self.base)/products", token: team.bob)
            #expect(json(list)["data"]?.array?.count == 1)
            let id = try #require(json(first)["id"]?.string)
            #expect(try await client.send(.patch, "\(Self.base)/products/\(id)", token: team.bob, json: #"{"unit_price":1}"#).status == .notFound)
        }
    }

    @Test func movingADealRecordsAnActivityAndThePipelineTotalsPerCurrency() async throws {
        try await SalesTeam.withTeam { client, team in
            let contact = try await client.send(.post, "\(Self.base)/contacts", token: team.ann, json: #"{"email":"buyer@example.com"}"#)
            let contactID = try #require(json(contact)["id"]?.string)
            let deal = try await client.send(
                .post, "\(Self.base)/deals", token: team.ann,
                json: #"{"title":"Big","contact_id":"\#(contactID)","stage":"qualified","amount":500000,"currency":"USD","expected_close":"2026-12-31"}"#)
            #expect(deal.status == .created)
            #expect(json(deal)["expected_close"]?.string == "2026-12-31")
            let dealID = try #require(json(deal)["id"]?.string)
            _ = try await client.send(.post, "\(Self.base)/deals", token: team.ann, json: #"{"title":"Small","stage":"qualified","amount":1000,"currency":"EUR"}"#)
            _ = try await client.send(.post, "\(Self.base)/deals", token: team.bob, json: #"{"title":"Bob's","stage":"qualified","amount":7,"currency":"USD"}"#)
            let moved = try await client.send(.patch, "\(Self.base)/deals/\(dealID)", token: team.ann, json: #"{"stage":"proposal"}"#)
            #expect(json(moved)["stage"]?.string == "proposal")
            let activities = try await client.send(.get, "\(Self.base)/activities?deal=\(dealID)", token: team.ann)
            #expect(json(activities)["data"]?.array?.first?["kind"]?.string == "stage_change")
            #expect(json(activities)["data"]?.array?.first?["subject"]?.string == "Stage qualified → proposal")
            let annPipeline = try await client.send(.get, "\(Self.base)/pipeline", token: team.ann)
            let stages = json(annPipeline)["stages"]?.array ?? []
            #expect(stages.map { $0["stage"]?.string } == ["proposal", "qualified"])
            #expect(stages.last?["count"] == 1)
            #expect(stages.last?["totals"] == [["currency": "EUR", "amount": 1000]])
            let managerPipeline = try await client.send(.get, "\(Self.base)/pipeline", token: team.manager)
            let qualified = (json(managerPipeline)["stages"]?.array ?? []).first { $0["stage"]?.string == "qualified" }
            #expect(qualified?["count"] == 2)
            #expect(qualified?["totals"] == [["currency": "EUR", "amount": 1000], ["currency": "USD", "amount": 7]])
            // Line items price from the catalog unless told otherwise; they come off again.
            let product = try await client.send(.post, "\(Self.base)/products", token: team.manager, json: #"{"sku":"S-1","name":"Seat","unit_price":4900,"currency":"USD"}"#)
            let productID = try #require(json(product)["id"]?.string)
            let item = try await client.send(.post, "\(Self.base)/deals/\(dealID)/items", token: team.ann, json: #"{"product_id":"\#(productID)","quantity":3}"#)
            #expect(json(item)["unit_price"] == 4900)
            let itemID = try #require(json(item)["id"]?.string)
            let repriced = try await client.send(.patch, "\(Self.base)/deals/\(dealID)/items/\(itemID)", token: team.ann, json: #"{"quantity":5,"unit_price":4500}"#)
            #expect(json(repriced)["quantity"] == 5)
            #expect(json(repriced)["unit_price"] == 4500)
            #expect(try await client.send(.patch, "\(Self.base)/deals/\(dealID)/items/\(itemID)", token: team.bob, json: #"{"quantity":1}"#).status == .notFound)
            #expect(try await client.send(.delete, "\(Self.base)/deals/\(dealID)/items/\(itemID)", token: team.bob).status == .notFound)
            #expect(try await client.send(.delete, "\(Self.base)/deals/\(dealID)/items/\(itemID)", token: team.ann).status == .noContent)
            // Logged activities are corrected or removed by their owner only; stage changes are history.
            let call = try await client.send(.post, "\(Self.base)/activities", token: team.ann, json: #"{"kind":"call","subject":"Intro","deal_id":"\#(dealID)"}"#)
            let callID = try #require(json(call)["id"]?.string)
            #expect(try await client.send(.patch, "\(Self.base)/activities/\(callID)", token: team.bob, json: #"{"subject":"Mine"}"#).status == .notFound)
            let corrected = try await client.send(.patch, "\(Self.base)/activities/\(callID)", token: team.ann, json: #"{"subject":"Intro call"}"#)
            #expect(json(corrected)["subject"]?.string == "Intro call")
            #expect(json(try await client.send(.get, "\(Self.base)/activities/\(callID)", token: team.ann))["subject"]?.string == "Intro call")
            #expect(try await client.send(.get, "\(Self.base)/activities/\(callID)", token: team.bob).status == .notFound)
            let stageChange = try #require(json(activities)["data"]?.array?.first?["id"]?.string)
            #expect(try await client.send(.delete, "\(Self.base)/activities/\(stageChange)", token: team.ann).status == .notFound)
            #expect(try await client.send(.delete, "\(Self.base)/activities/\(callID)", token: team.ann).status == .noContent)
            // Bad input changes nothing and says what is wrong.
            let bad = try await client.send(.post, "\(Self.base)/deals", token: team.ann, json: #"{"title":"","amount":-1,"currency":"usd"}"#)
            #expect(bad.status == .unprocessableContent)
            #expect(json(bad)["errors"]?.array?.compactMap { $0["field"]?.string } == ["title", "amount", "currency"])
        }
    }

    @Test func listsPageWithCursorsAndFilter() async throws {
        try await SalesTeam.withTeam { client, team in
            for index in 0..<5 {
                _ = try await client.send(.post, "\(Self.base)/contacts", token: team.ann, json: #"{"email":"p\#(index)@example.com","tags":["\#(index % 2 == 0 ? "even" : "odd")"]}"#)
            }
            var seen: [String] = []
            var cursor: String?
            var pages = 0
            repeat {
                let page = try await client.send(.get, "\(Self.base)/contacts?limit=2" + (cursor.map { "&cursor=\($0)" } ?? ""), token: team.ann)
                #expect(page.status == .ok)
                seen += json(page)["data"]?.array?.compactMap { $0["email"]?.string } ?? []
                cursor = json(page)["next_cursor"]?.string
                pages += 1
            } while cursor != nil && pages < 10  // a cursor that never ends fails, not hangs
            #expect(pages == 3)
            #expect(seen == (0..<5).map { "p\($0)@example.com" })
            let even = try await client.send(.get, "\(Self.base)/contacts?tag=even", token: team.ann)
            #expect(json(even)["data"]?.array?.count == 3)
            #expect(try await client.send(.get, "\(Self.base)/contacts?cursor=bogus", token: team.ann).status == .unprocessableContent)
        }
    }

    /// A deal's line items are the deal's: reassigning the deal moves them, so its new
    /// owner sees them and they are not left with someone who no longer owns the deal.
    @Test func lineItemsFollowTheirDealToItsNewOwner() async throws {
        try await SalesTeam.withTeam { client, team in
            let product = try await client.send(.post, "\(Self.base)/products", token: team.manager, json: #"{"sku":"P-1","name":"Seat","unit_price":100,"currency":"USD"}"#)
            let productID = try #require(json(product)["id"]?.string)
            let deal = try await client.send(.post, "\(Self.base)/deals", token: team.ann, json: #"{"title":"Ann's deal"}"#)
            let dealID = try #require(json(deal)["id"]?.string)
            let item = try await client.send(.post, "\(Self.base)/deals/\(dealID)/items", token: team.ann, json: #"{"product_id":"\#(productID)","quantity":2}"#)
            #expect(item.status == .created || item.status == .ok, "\(String(buffer: item.body))")
            let moved = try await client.send(.patch, "\(Self.base)/deals/\(dealID)", token: team.manager, json: #"{"owner_id":"\#(team.bobID)"}"#)
            #expect(moved.status == .ok, "\(String(buffer: moved.body))")
            let items = try await client.send(.get, "\(Self.base)/deals/\(dealID)/items", token: team.bob)
            #expect(items.status == .ok, "\(String(buffer: items.body))")
            #expect(String(buffer: items.body).contains(productID), "Bob sees the items of the deal he now owns")
            let annAfter = try await client.send(.get, "\(Self.base)/deals/\(dealID)/items", token: team.ann)
            #expect(annAfter.status == .notFound)
        }
    }
}
