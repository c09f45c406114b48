import AtriumCore
import AtriumPortfolio
import AtriumTesting
import Foundation
import HTTPTypes
import Testing

/// An advisor assigned to a client reads the client's portfolios and reports, and
/// changes nothing of them; unassigned, or for another investor, it is as if they did
/// not exist.
@Suite struct PortfolioAdvisorTests {
    @Test func anAdvisorReadsAssignedClientsOnly() async throws {
        try await PortfolioTeam.withTeam { team in
            let anns = try await team.portfolio("Ann's")
            let bobs = try await team.portfolio("Bob's", token: team.bob)
            let buy = try await team.trade(anns, "buy", "AAPL", "3", at: "100", on: "2024-01-02")
            let tx = try #require(buy["id"]?.string)
            let reads = ["", "/transactions", "/transactions/\(tx)", "/holdings?as_of=2024-02-01", "/realized"]
            for path in reads { try await team.call(.get, "/portfolios/\(anns)\(path)", team.advisor, expect: .notFound) }

            let assignment = "/clients/\(team.advisorID)/\(team.annID)"
            try await team.call(.put, assignment, team.ann, expect: .forbidden)
            try await team.call(.put, assignment, team.advisor, expect: .forbidden)
            let assigned = try await team.call(.put, assignment, team.manager)
            #expect(assigned["client_id"]?.string == team.annID.uuidString.lowercased())
            for path in reads { try await team.call(.get, "/portfolios/\(anns)\(path)", team.advisor) }
            #expect(
                try await team.call(.get, "/portfolios/\(anns)/holdings?as_of=2024-02-01", team.advisor)["positions"]?.array?.first?["quantity"]?.string == "3")
            let listed = try await team.call(.get, "/portfolios", team.advisor)
            #expect(listed["data"]?.array?.compactMap { $0["id"]?.string } == [anns])
            // Read-only: no entry, change or deletion reaches Ann's ledger.
            try await team.trade(anns, "buy", "AAPL", "1", at: "100", on: "2024-01-03", token: team.advisor, expect: .notFound)
            try await team.call(.delete, "/portfolios/\(anns)/transactions/\(tx)", team.advisor, expect: .notFound)
            try await team.call(.patch, "/portfolios/\(anns)", team.advisor, #"{"name":"Advised"}"#, expect: .notFound)
            try await team.call(.delete, "/portfolios/\(anns)", team.advisor, expect: .notFound)
            // Bob is not a client.
            try await team.call(.get, "/portfolios/\(bobs)", team.advisor, expect: .notFound)
            // The advisor lists their own clients; the manager sees every assignment.
            let mine = try await team.call(.get, "/clients", team.advisor)
            #expect(mine["data"]?.array?.compactMap { $0["client_id"]?.string } == [team.annID.uuidString.lowercased()])
            try await team.call(.get, "/clients", team.ann, expect: .forbidden)

            try await team.call(.delete, assignment, team.manager, expect: .noContent)
            try await team.call(.delete, assignment, team.manager, expect: .notFound)
            for path in reads { try await team.call(.get, "/portfolios/\(anns)\(path)", team.advisor, expect: .notFound) }
            #expect(try await team.call(.get, "/portfolios/\(anns)/holdings?as_of=2024-02-01", team.ann)["positions"]?.array?.first?["quantity"]?.string == "3")
        }
    }
}
