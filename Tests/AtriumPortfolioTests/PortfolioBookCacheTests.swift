import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import PostgresNIO
import Testing

/// Holdings reads keep the booked ledger (`BookCache`) and take it again only while the
/// ledger, its method and its splits are what it was made from: every change of any of
/// them is answered as a fresh booking would answer it.
@Suite("Portfolio book cache")
struct PortfolioBookCacheTests {
    func cached(_ team: PortfolioTeam) async throws -> [(asOf: String, version: Int64)] {
        try await team.db.withOwner { owner in
            try await owner.withTenantTransaction(team.tenant.id, logger: TestDatabase.logger) { connection in
                try await connection.query("SELECT as_of::text, ledger_version FROM portfolio_book_cache ORDER BY as_of", logger: TestDatabase.logger)
                    .collect().map { try $0.decode((String, Int64).self) }
            }
        }
    }

    func forget(_ team: PortfolioTeam) async throws {
        try await team.db.withOwner { owner in
            try await owner.withTenantTransaction(team.tenant.id, logger: TestDatabase.logger) { connection in
                try await connection.query("DELETE FROM portfolio_book_cache", logger: TestDatabase.logger)
            }
        }
    }

    @Test func aCachedBookIsTakenOnlyForTheLedgerItWasMadeFrom() async throws {
        try await PortfolioTeam.withTeam { team in
            try await team.market("NVDA", closes: [("2024-01-02", "100"), ("2024-03-01", "120")])
            let portfolio = try await team.portfolio("Cached")
            try await team.trade(portfolio, "buy", "NVDA", "10", at: "100", on: "2024-01-02")
            let path = "\(PortfolioTeam.base)/portfolios/\(portfolio)/holdings?as_of=2024-03-15"
            func holdings() async throws -> String {
                let response = try await team.client.send(.get, path, token: team.ann)
                #expect(response.status == .ok)
                return String(buffer: response.body)
            }
            /// What a booking from scratch answers now.
            func fresh() async throws -> String {
                try await forget(team)
                return try await holdings()
            }
            func parsed(_ body: String) throws -> JSONValue { try JSONDecoder().decode(JSONValue.self, from: Data(body.utf8)) }
            func quantity(_ body: String) throws -> String? {
                try parsed(body)["positions"]?.array?.first?["quantity"]?.string
            }

            let first = try await holdings()
            #expect(try await cached(team).map(\.asOf) == ["2024-03-15"])
            #expect(try await holdings() == first, "the same inputs, the same bytes, from the cache")
            #expect(try quantity(first) == "10")

            // A back-dated buy: the next read books again.
            let buy = try await team.trade(portfolio, "buy", "NVDA", "5", at: "110", on: "2024-02-01")
            let afterBuy = try await holdings()
            #expect(try quantity(afterBuy) == "15")
            #expect(afterBuy == (try await fresh()))

            // A deleted entry (entries are corrected by deleting them).
            let buyID = try #require(buy["id"]?.string)
            try await team.call(.delete, "/portfolios/\(portfolio)/transactions/\(buyID)", team.ann, expect: .noContent)
            #expect(try quantity(try await holdings()) == "10")

            // A split (market data, not the ledger) and the method are inputs too.
            try await team.call(
                .post, "/market/corporate-actions", team.manager, #"{"symbol":"NVDA","type":"split","effective_date":"2024-03-01","ratio":"2"}"#,
                expect: .created)
            #expect(try quantity(try await holdings()) == "20")
            try await team.trade(portfolio, "buy", "NVDA", "4", at: "60", on: "2024-03-05")
            let fifo = try await holdings()
            try await team.call(.patch, "/portfolios/\(portfolio)", team.ann, #"{"cost_method":"average"}"#)
            let average = try await holdings()
            #expect(average == (try await fresh()))
            #expect(try parsed(average)["inputs_hash"] != parsed(fifo)["inputs_hash"])
            #expect(try await cached(team).count == 1, "one book per portfolio and date")
        }
    }
}
