import AtriumCore
import AtriumPortfolio
import AtriumTesting
import Foundation
import HTTPTypes
import Testing

/// The risk survey scored by `rubric/1`, by hand: the least a survey scores is
/// 1 + 1 + 0 + 1 + 1 + 1 = 5, the most 24.
@Suite struct PortfolioProfileTests {
    static func answers(_ age: String, _ horizon: String, _ loss: String, _ income: String, _ experience: String, _ goal: String) -> String {
        #"{"answers":{"age_band":"\#(age)","horizon":"\#(horizon)","loss_reaction":"\#(loss)","income_stability":"\#(income)","experience":"\#(experience)","goal":"\#(goal)"},"goals":["retire at 60"]}"#
    }

    @Test func theSurveyScoresByTheRubricAndSetsTheAnalysisBand() async throws {
        try await PortfolioTeam.withTeam { team in
            try await team.call(.get, "/profile", team.ann, expect: .notFound)
            let survey = try await team.call(.get, "/profile/survey", team.ann)
            #expect(survey["scorer"]?.string == "rubric/1")
            #expect(survey["questions"]?.array?.count == 6)

            // 3 + 3 + 3 + 3 + 2 + 3 = 17: (17 − 5) / 19 = 0.6315… → 0.63, moderate.
            let moderate = try await team.call(.put, "/profile/survey", team.ann, Self.answers("30_44", "7_15y", "hold", "stable", "some", "growth"))
            #expect(moderate["score"]?.string == "0.63")
            #expect(moderate["band"]?.string == "moderate")
            #expect(moderate["horizon"]?.string == "7_15y")
            #expect(moderate["return_min_bp"] == 500)
            #expect(moderate["points"]?["experience"] == 2)
            #expect(moderate["goals"]?.array?.first?.string == "retire at 60")
            let aggressive = try await team.call(.put, "/profile/survey", team.bob, Self.answers("under_30", "over_15y", "buy_more", "very_stable", "professional", "speculation"))
            #expect(aggressive["score"]?.string == "1.00")
            #expect(aggressive["band"]?.string == "aggressive")

            // Answers it cannot score are named, and the profile stays as it was.
            let refused = try await team.call(
                .put, "/profile/survey", team.ann, #"{"answers":{"age_band":"ninety","horizon":"7_15y","mood":"fine"}}"#, expect: .unprocessableContent)
            let fields = Set(refused["errors"]?.array?.compactMap { $0["field"]?.string } ?? [])
            #expect(fields == ["answers.age_band", "answers.loss_reaction", "answers.income_stability", "answers.experience", "answers.goal", "answers.mood"])
            #expect(try await team.call(.get, "/profile", team.ann)["score"]?.string == "0.63")

            // 1 + 1 + 0 + 1 + 1 + 1 = 5: 0.00, conservative; its 10 % limit makes every one
            // of the three positions too large, where moderate's 20 % found one.
            let conservative = try await team.call(.put, "/profile/survey", team.ann, Self.answers("60_plus", "under_3y", "sell_all", "unstable", "none", "preserve"))
            #expect(conservative["score"]?.string == "0.00")
            #expect(conservative["band"]?.string == "conservative")
            let portfolio = try await PortfolioAnalysisTests.market(team)
            let analysis = try await team.call(.post, "/analyses", team.ann, #"{"portfolio_id":"\#(portfolio)","as_of":"2024-03-04"}"#, expect: .created)
            #expect(analysis["advice"]?.array?.filter { $0["code"]?.string == "position_concentration" }.count == 3)

            // Another investor's profile is missing to Bob; the assigned advisor reads it.
            try await team.call(.get, "/profile?owner=\(team.annID)", team.bob, expect: .notFound)
            try await team.call(.get, "/profile?owner=\(team.annID)", team.advisor, expect: .notFound)
            try await team.call(.put, "/clients/\(team.advisorID)/\(team.annID)", team.manager)
            #expect(try await team.call(.get, "/profile?owner=\(team.annID)", team.advisor)["band"]?.string == "conservative")
        }
    }
}
