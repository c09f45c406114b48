public import AtriumCore
import Foundation

/// The risk survey's answers: one choice per question, by question id.
public typealias SurveyAnswers = [String: String]

/// What a scorer makes of a survey: a score from 0 (no risk) to 1, its band, the
/// horizon, the return range the band expects (basis points a year), and the points
/// each answer gave, so an investor sees why.
public struct RiskScore: Codable, Sendable, Equatable {
    public var score: DecimalString
    public var band: String
    public var horizon: String
    public var returnMinBp: Int
    public var returnMaxBp: Int
    public var points: [String: Int]

    public init(score: DecimalString, band: String, horizon: String, returnMinBp: Int, returnMaxBp: Int, points: [String: Int]) {
        (self.score, self.band, self.horizon, self.returnMinBp, self.returnMaxBp, self.points) = (score, band, horizon, returnMinBp, returnMaxBp, points)
    }
}

/// Turns survey answers into a risk score. The shipped one is `RubricScorer`
/// (`rubric/1`), a documented point table; another plugs in through
/// `PortfolioModule(scorer:)`. A scorer refuses answers it cannot score by naming them.
public protocol RiskScorer: Sendable {
    /// The scorer and its version, `name/N`, stored on every profile.
    var name: String { get }
    /// The survey version these answers belong to.
    var surveyVersion: Int { get }
    /// Every question and its choices, for clients to draw the survey from.
    var questions: [SurveyQuestion] { get }
    func score(_ answers: SurveyAnswers) throws(AtriumError) -> RiskScore
}

/// One question of the survey and its choices, each worth points.
public struct SurveyQuestion: Codable, Sendable, Equatable {
    public struct Choice: Codable, Sendable, Equatable {
        public var id: String
        public var points: Int
    }

    public var id: String
    public var text: String
    public var choices: [Choice]
}

/// `rubric/1`: six questions, each choice worth points; the score is where the total
/// lies between the least and the most a survey can score, to two places (half-even).
/// Below 0.34 is `conservative` (expects 3–6 % a year), below 0.67 `moderate` (5–9 %),
/// else `aggressive` (8–15 %). The horizon answer is also the profile's horizon.
public struct RubricScorer: RiskScorer {
    public init() {}

    public var name: String { "rubric/1" }
    public var surveyVersion: Int { 1 }

    public var questions: [SurveyQuestion] {
        func question(_ id: String, _ text: String, _ choices: [(String, Int)]) -> SurveyQuestion {
            SurveyQuestion(id: id, text: text, choices: choices.map { SurveyQuestion.Choice(id: $0.0, points: $0.1) })
        }
        return [
            question("age_band", "How old are you?", [("under_30", 4), ("30_44", 3), ("45_59", 2), ("60_plus", 1)]),
            question("horizon", "When will you need most of this money?", [("under_3y", 1), ("3_7y", 2), ("7_15y", 3), ("over_15y", 4)]),
            question("loss_reaction", "Your portfolio falls 20 % in a month. You…", [("sell_all", 0), ("sell_some", 1), ("hold", 3), ("buy_more", 4)]),
            question("income_stability", "How steady is your income?", [("unstable", 1), ("stable", 3), ("very_stable", 4)]),
            question("experience", "How much have you invested before?", [("none", 1), ("some", 2), ("experienced", 3), ("professional", 4)]),
            question("goal", "What is this money for?", [("preserve", 1), ("income", 2), ("growth", 3), ("speculation", 4)]),
        ]
    }

    public func score(_ answers: SurveyAnswers) throws(AtriumError) -> RiskScore {
        var checks = FieldChecks()
        var points: [String: Int] = [:]
        for question in questions {
            guard let answer = answers[question.id] else {
                checks.fail("answers.\(question.id)", "is required", when: true)
                continue
            }
            guard let choice = question.choices.first(where: { $0.id == answer }) else {
                checks.fail("answers.\(question.id)", "must be one of \(question.choices.map(\.id).joined(separator: ", "))", when: true)
                continue
            }
            points[question.id] = choice.points
        }
        for unknown in answers.keys.sorted() where !questions.contains(where: { $0.id == unknown }) {
            checks.fail("answers.\(unknown)", "is not a question of survey \(surveyVersion)", when: true)
        }
        try checks.finish()
        let least = questions.reduce(0) { $0 + ($1.choices.map(\.points).min() ?? 0) }
        let most = questions.reduce(0) { $0 + ($1.choices.map(\.points).max() ?? 0) }
        let total = points.values.reduce(0, +)
        let score = DecimalString(Decimal(total - least) / Decimal(most - least), scale: 2)
        let (band, low, high) =
            score.value < Decimal(34) / 100 ? ("conservative", 300, 600) : score.value < Decimal(67) / 100 ? ("moderate", 500, 900) : ("aggressive", 800, 1500)
        return RiskScore(score: score, band: band, horizon: answers["horizon"] ?? "3_7y", returnMinBp: low, returnMaxBp: high, points: points)
    }
}
