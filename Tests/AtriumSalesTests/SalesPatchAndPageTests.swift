import AtriumCore
import AtriumSales
import AtriumTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Testing

/// PATCH bodies are JSON Merge Patches on every sales record, and every list pages the
/// same way (`Page`, keyset cursors), activities newest first.
@Suite("Sales: merge patches on every record, pages on every list")
struct SalesPatchAndPageTests {
    static let base = "/v1/tenants/acme/sales"

    @Test func productsRefuseClearingARequiredFieldAndChangeNothing() async throws {
        try await SalesTeam.withTeam { client, team in
            let product = try await client.send(.post, "\(Self.base)/products", token: team.ann, json: #"{"sku":"P-1","name":"Seat","unit_price":100,"currency":"USD"}"#)
            let id = try #require(json(product)["id"]?.string)
            let cleared = try await client.send(.patch, "\(Self.base)/products/\(id)", token: team.ann, json: #"{"name":null,"unit_price":null,"sku":"P-2"}"#)
            #expect(cleared.status == .unprocessableContent)
            #expect(json(cleared)["errors"]?.array?.compactMap { $0["field"]?.string } == ["name", "unit_price"])
            let after = try await client.send(.get, "\(Self.base)/products/\(id)", token: team.ann)
            #expect(json(after)["sku"]?.string == "P-1", "a refused patch changes nothing")
            let renamed = try await client.send(.patch, "\(Self.base)/products/\(id)", token: team.ann, json: #"{"name":"Chair"}"#)
            #expect(json(renamed)["name"]?.string == "Chair")
            #expect(json(renamed)["unit_price"] == .number(100), "absent fields are kept")
            // Bob reads the catalog but cannot change Ann's product.
            #expect(try await client.send(.get, "\(Self.base)/products/\(id)", token: team.bob).status == .ok)
            #expect(try await client.send(.patch, "\(Self.base)/products/\(id)", token: team.bob, json: #"{"name":"Mine"}"#).status == .notFound)
        }
    }

    @Test func activityBodiesClearWithNullAndLineItemsKeepTheirValues() async throws {
        try await SalesTeam.withTeam { client, team in
            let deal = try await client.send(.post, "\(Self.base)/deals", token: team.ann, json: #"{"title":"Deal"}"#)
            let dealID = try #require(json(deal)["id"]?.string)
            let call = try await client.send(
                .post, "\(Self.base)/activities", token: team.ann, json: #"{"kind":"call","subject":"Intro","body":"Long notes","deal_id":"\#(dealID)"}"#)
            let callID = try #require(json(call)["id"]?.string)
            let cleared = try await client.send(.patch, "\(Self.base)/activities/\(callID)", token: team.ann, json: #"{"body":null}"#)
            #expect(cleared.status == .ok)
            #expect(json(cleared)["body"]?.string == "")
            #expect(json(cleared)["subject"]?.string == "Intro")
            let noSubject = try await client.send(.patch, "\(Self.base)/activities/\(callID)", token: team.ann, json: #"{"subject":null}"#)
            #expect(noSubject.status == .unprocessableContent)

            let product = try await client.send(.post, "\(Self.base)/products", token: team.ann, json: #"{"sku":"P-1","name":"Seat","unit_price":100,"currency":"USD"}"#)
            let productID = try #require(json(product)["id"]?.string)
            let item = try await client.send(.post, "\(Self.base)/deals/\(dealID)/items", token: team.ann, json: #"{"product_id":"\#(productID)","quantity":2}"#)
            let itemID = try #require(json(item)["id"]?.string)
            #expect(json(item)["unit_price"] == .number(100), "the catalog price by default")
            let noQuantity = try await client.send(.patch, "\(Self.base)/deals/\(dealID)/items/\(itemID)", token: team.ann, json: #"{"quantity":null}"#)
            #expect(noQuantity.status == .unprocessableContent)
            let repriced = try await client.send(.patch, "\(Self.base)/deals/\(dealID)/items/\(itemID)", token: team.ann, json: #"{"unit_price":80}"#)
            #expect(json(repriced)["unit_price"] == .number(80))
            #expect(json(repriced)["quantity"] == .number(2))
            let unknown = try await client.send(
                .post, "\(Self.base)/deals/\(dealID)/items", token: team.ann, json: #"{"product_id":"\#(UUID())","quantity":1}"#)
            #expect(unknown.status == .unprocessableContent)
            #expect(json(unknown)["errors"]?.array?.first?["field"]?.string == "product_id")
        }
    }

    @Test func activitiesPageNewestFirstAndOnlyTheCallersOwn() async throws {
        try await SalesTeam.withTeam { client, team in
            let deal = try await client.send(.post, "\(Self.base)/deals", token: team.ann, json: #"{"title":"Shared"}"#)
            let dealID = try #require(json(deal)["id"]?.string)
            for (index, token) in [team.ann, team.ann, team.manager, team.ann, team.ann].enumerated() {
                let logged = try await client.send(
                    .post, "\(Self.base)/activities", token: token,
                    json: #"{"kind":"note","subject":"n\#(index)","deal_id":"\#(dealID)","occurred_at":"2026-01-0\#(index + 1)T10:00:00Z"}"#)
                #expect(logged.status == .created, "\(String(buffer: logged.body))")
            }
            func pages(_ token: String) async throws -> [String] {
                var seen: [String] = []
                var cursor: String?
                var pages = 0
                repeat {
                    pages += 1
                    let page = try await client.send(
                        .get, "\(Self.base)/activities?deal=\(dealID)&limit=2" + (cursor.map { "&cursor=\($0)" } ?? ""), token: token)
                    #expect(page.status == .ok)
                    seen += json(page)["data"]?.array?.compactMap { $0["subject"]?.string } ?? []
                    cursor = json(page)["next_cursor"]?.string
                } while cursor != nil && pages < 10  // a cursor that never ends fails, not hangs
                return seen
            }
            #expect(try await pages(team.ann) == ["n4", "n3", "n1", "n0"])
            #expect(try await pages(team.manager) == ["n4", "n3", "n2", "n1", "n0"])
        }
    }

    /// The common list filters: `q` in the searched columns (wildcards taken literally),
    /// `owner` for a manager, `updated_since`; each narrows, none widens a rep's view.
    @Test func listFiltersNarrowTheCallersView() async throws {
        try await SalesTeam.withTeam { client, team in
            for (token, name, domain) in [(team.ann, "Acme 100%", "acme.example"), (team.ann, "Beta", "beta.example"), (team.bob, "Acme Two", "two.example")] {
                let made = try await client.send(.post, "\(Self.base)/companies", token: token, json: #"{"name":"\#(name)","domain":"\#(domain)"}"#)
                #expect(made.status == .created)
            }
            func names(_ query: String, _ token: String) async throws -> [String] {
                let page = try await client.send(.get, "\(Self.base)/companies?\(query)", token: token)
                #expect(page.status == .ok, "\(query)")
                return (json(page)["data"]?.array ?? []).compactMap { $0["name"]?.string }.sorted()
            }
            #expect(try await names("q=acme", team.ann) == ["Acme 100%"], "a rep searches only their own")
            #expect(try await names("q=acme", team.manager) == ["Acme 100%", "Acme Two"])
            #expect(try await names("q=100%25", team.manager) == ["Acme 100%"], "% is a character, not a wildcard")
            #expect(try await names("q=BETA.EXAMPLE", team.manager) == ["Beta"], "the domain is searched too")
            #expect(try await names("owner=\(team.bobID)", team.manager) == ["Acme Two"])
            #expect(try await names("owner=\(team.bobID)", team.ann) == [], "owner never widens a rep's view")
            #expect(try await names("updated_since=2999-01-01T00:00:00Z", team.manager) == [])
            // A past moment between two changes: only what changed since.
            try await withPostgresConnection(team.db.superuser, logger: TestDatabase.logger) { connection in
                try await connection.query("UPDATE sales_companies SET updated_at = now() - interval '2 days' WHERE name <> 'Beta'", logger: TestDatabase.logger)
            }
            let yesterday = ISO8601DateFormatter().string(from: Date().addingTimeInterval(-86_400))
            #expect(try await names("updated_since=\(yesterday)", team.manager) == ["Beta"])
            #expect(try await names("updated_since=\(yesterday)", team.bob) == [], "updated_since never widens a rep's view")
        }
    }
}
