import AtriumCore
import AtriumPortfolio
import AtriumTesting
import Foundation
import HTTPTypes
import PostgresNIO
import Testing

/// An advisor that always fails, as an outside model that is down would.
struct FailingAdvisor: PortfolioAdvisor {
    struct Down: Error {}
    var name: String { "down/1" }
    func advise(_ input: AnalysisInput) async throws -> [AdviceItem] { throw Down() }
}

/// Analyses on a real database, the advice and the bill computed by hand.
@Suite("Portfolio analyses: rules/1, metering, failures")
struct PortfolioAnalysisTests {
    /// 10 AAPL, 5 MSFT and 10 XOM bought on 2024-01-02 at 100, 120 and 60; closes on
    /// 2024-03-01 of 150, 100 and 50. Worth 1500 + 500 + 500 = 2500, no cash (the buys
    /// were implicit deposits). Weights 0.6, 0.2, 0.2: AAPL is above the moderate 20 %
    /// limit (MSFT, at exactly 20 %, is not); Technology is 80 % (> 40 %); HHI = 0.36 +
    /// 0.04 + 0.04 = 0.44 (> 0.25); MSFT and XOM are worth 1/6 less than they cost.
    static func market(_ team: PortfolioTeam) async throws -> String {
        try await team.market("AAPL", closes: [("2024-03-01", "150")])
        try await team.market("MSFT", closes: [("2024-03-01", "100")])
        try await team.market("XOM", sector: "Energy", closes: [("2024-03-01", "50")])
        let portfolio = try await team.portfolio("Analysed")
        try await team.trade(portfolio, "buy", "AAPL", "10", at: "100", on: "2024-01-02")
        try await team.trade(portfolio, "buy", "MSFT", "5", at: "120", on: "2024-01-02")
        try await team.trade(portfolio, "buy", "XOM", "10", at: "60", on: "2024-01-02")
        return portfolio
    }

    @Test func anAnalysisGivesTheRulesAdviceAndBillsOnePlusEachItemOnce() async throws {
        try await PortfolioTeam.withTeam { team in
            let portfolio = try await Self.market(team)
            let body = #"{"portfolio_id":"\#(portfolio)","as_of":"2024-03-04"}"#
            let key: HTTPFields = [.init("Idempotency-Key")!: "analysis-1"]
            let analysis = try await team.call(.post, "/analyses", team.ann, body, expect: .created, headers: key)
            let codes = analysis["advice"]?.array?.compactMap { $0["code"]?.string }
            #expect(codes == ["allocation", "position_concentration", "sector_concentration", "hhi_concentration", "loss_position", "loss_position"])
            let advice = analysis["advice"]?.array ?? []
            #expect(advice.first?["figures"]?["sector"]?.string == "Technology")
            #expect(advice.first?["figures"]?["sector_weight"]?.string == "0.8000")
            #expect(advice[safe: 1]?["figures"]?["symbol"]?.string == "AAPL")
            #expect(advice[safe: 1]?["figures"]?["weight"]?.string == "0.6000")
            #expect(advice[safe: 3]?["figures"]?["hhi"]?.string == "0.4400")
            #expect(advice[safe: 4]?["figures"]?["symbol"]?.string == "MSFT")
            #expect(analysis["value"]?.string == "2500.00")
            #expect(analysis["advisor"]?.string == "rules/1")
            // One analysis and six advice items, billed to Ann, once however often retried.
            let retried = try await team.call(.post, "/analyses", team.ann, body, expect: .created, headers: key)
            #expect(retried["id"] == analysis["id"])
            let usage = try await team.usage()
            #expect(usage.map(\.meter) == ["portfolio.advice", "portfolio.analysis"])
            #expect(usage.map(\.quantity) == [6, 1])
            #expect(usage.allSatisfy { $0.user == team.annID.uuidString.lowercased() })
            // Stored as answered, listed, and the same inputs give the same hash and advice.
            let id = try #require(analysis["id"]?.string)
            let stored = try await team.call(.get, "/analyses/\(id)", team.ann)
            #expect(stored["advice"] == analysis["advice"])
            let again = try await team.call(.post, "/analyses", team.ann, body, expect: .created)
            #expect(again["inputs_hash"] == analysis["inputs_hash"])
            #expect(again["advice"] == analysis["advice"])
            #expect(try await team.call(.get, "/analyses?portfolio_id=\(portfolio)", team.ann)["data"]?.array?.count == 2)
            // Bob sees none of it; a conservative band finds MSFT too concentrated as well.
            try await team.call(.get, "/analyses/\(id)", team.bob, expect: .notFound)
            try await team.call(.post, "/analyses", team.bob, body, expect: .notFound)
            let conservative = try await team.call(
                .post, "/analyses", team.ann, #"{"portfolio_id":"\#(portfolio)","as_of":"2024-03-04","risk_band":"conservative"}"#, expect: .created)
            #expect(conservative["advice"]?.array?.filter { $0["code"]?.string == "position_concentration" }.count == 3)
        }
    }

    @Test func holdingsSentInlineAreAnalysedAtTheTenantsCloses() async throws {
        try await PortfolioTeam.withTeam { team in
            _ = try await Self.market(team)
            let analysis = try await team.call(
                .post, "/analyses", team.bob, #"{"holdings":[{"symbol":"AAPL","quantity":"10"}],"currency":"USD","as_of":"2024-03-04"}"#, expect: .created)
            #expect(analysis["value"]?.string == "1500.00")
            #expect(analysis["portfolio_id"] == nil, "holdings sent inline name no portfolio")
            #expect(analysis["advice"]?.array?.compactMap { $0["code"]?.string } == ["allocation", "position_concentration", "sector_concentration"])
            let unknown = try await team.call(.post, "/analyses", team.bob, #"{"holdings":[{"symbol":"NOPE","quantity":"1"}]}"#, expect: .unprocessableContent)
            #expect(unknown["errors"]?.array?.first?["field"]?.string == "holdings[0].symbol")
            #expect(try await team.usage().map(\.quantity) == [3, 1], "three items and one analysis; the refused request billed nothing")
        }
    }

    @Test func aFailedOrImpossibleAnalysisBillsNothing() async throws {
        try await PortfolioTeam.withTeam(module: PortfolioModule(advisor: FailingAdvisor())) { team in
            let portfolio = try await Self.market(team)
            let failed = try await team.call(.post, "/analyses", team.ann, #"{"portfolio_id":"\#(portfolio)","as_of":"2024-03-04"}"#, expect: .badGateway)
            #expect(failed["code"]?.string == "advisor_failed")
            // Before any close, the prices are missing: refused, named, unbilled.
            let early = try await team.call(.post, "/analyses", team.ann, #"{"portfolio_id":"\#(portfolio)","as_of":"2024-02-01"}"#, expect: .unprocessableContent)
            #expect(early["code"]?.string == "prices_missing")
            #expect(early["detail"]?.string?.contains("AAPL") == true)
            #expect(try await team.usage().isEmpty)
            #expect(try await team.call(.get, "/analyses", team.ann)["data"]?.array?.isEmpty == true)
        }
    }

    @Test func anAssignedAdvisorAnalysesForTheClientWhoSeesIt() async throws {
        try await PortfolioTeam.withTeam { team in
            let portfolio = try await Self.market(team)
            let body = #"{"portfolio_id":"\#(portfolio)","as_of":"2024-03-04"}"#
            try await team.call(.post, "/analyses", team.advisor, body, expect: .notFound)
            try await team.call(.put, "/clients/\(team.advisorID)/\(team.annID)", team.manager)
            let analysis = try await team.call(.post, "/analyses", team.advisor, body, expect: .created)
            #expect(analysis["owner_id"]?.string == team.annID.uuidString.lowercased(), "the client's analysis, billed to the client")
            let id = try #require(analysis["id"]?.string)
            try await team.call(.get, "/analyses/\(id)", team.ann)
            #expect(try await team.usage().allSatisfy { $0.user == team.annID.uuidString.lowercased() })
        }
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
