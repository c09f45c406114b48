import AtriumCore
import Foundation
import PostgresNIO

/// An investor's risk profile, made by the scorer from their survey answers.
struct Profile: Codable, Sendable {
    var ownerId: UUID
    var surveyVersion: Int
    var answers: [String: String]
    var scorer: String
    var score: DecimalString
    var band: String
    var goals: [String]
    var horizon: String
    var returnMinBp: Int
    var returnMaxBp: Int
    var points: [String: Int]
    var createdAt, updatedAt: Date

    static let columns = """
        owner_id, survey_version, answers::text, scorer, score::text, band, goals, horizon, return_min_bp, return_max_bp, points::text, created_at, updated_at
        """

    init(_ row: PostgresRow) throws {
        var columns = RowReader(row)
        ownerId = try columns.next()
        surveyVersion = try columns.next()
        let answers: String = try columns.next()
        self.answers = try JSONDecoder().decode([String: String].self, from: Data(answers.utf8))
        scorer = try columns.next()
        score = try LedgerTransaction.decimal(columns.next()) ?? DecimalString(0)
        band = try columns.next()
        goals = try columns.next()
        horizon = try columns.next()
        returnMinBp = try columns.next()
        returnMaxBp = try columns.next()
        let points: String = try columns.next()
        self.points = try JSONDecoder().decode([String: Int].self, from: Data(points.utf8))
        createdAt = try columns.next()
        updatedAt = try columns.next()
    }
}

/// `PUT profile/survey`: the answers, and the goals the investor names.
struct SurveySubmission: Codable, Sendable {
    var answers: [String: String]
    var goals: [String]?

    func validated() throws -> SurveySubmission {
        var checks = FieldChecks()
        checks.fail("goals", "may name at most 10 goals", when: (goals ?? []).count > 10)
        for (index, goal) in (goals ?? []).enumerated() {
            checks.record("goals[\(index)]", PortfolioValidation.textProblem(goal, maximum: 100))
        }
        checks.fail("answers", "may hold at most 50 answers", when: answers.count > 50)
        for (question, answer) in answers {
            checks.record("answers.\(question)", InputDomain.textProblem(question, maximum: 100) ?? InputDomain.textProblem(answer, maximum: 100))
        }
        try checks.finish()
        return self
    }
}

/// The survey as a client draws it.
struct Survey: Codable, Sendable {
    var version: Int
    var scorer: String
    var questions: [SurveyQuestion]
}

enum ProfileStore {
    static func profile(of owner: UUID, on transaction: TenantTransaction) async throws -> Profile {
        guard let row = try await transaction.query("SELECT \(unescaped: Profile.columns) FROM portfolio_profiles WHERE owner_id = \(owner)").first else {
            throw AtriumError.notFound("No risk profile yet: answer the survey (PUT profile/survey).")
        }
        return try Profile(row)
    }

    /// The band the owner's profile says, or nil without one.
    static func band(of owner: UUID, on transaction: TenantTransaction) async throws -> String? {
        try await transaction.query("SELECT band FROM portfolio_profiles WHERE owner_id = \(owner)").first.map { row in
            var columns = RowReader(row)
            return try columns.next()
        }
    }

    static func save(
        _ score: RiskScore, answers: SurveyAnswers, goals: [String], scorer: any RiskScorer, owner: UUID, on transaction: TenantTransaction
    ) async throws -> Profile {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let answersJSON = String(decoding: try encoder.encode(answers), as: UTF8.self)
        let pointsJSON = String(decoding: try encoder.encode(score.points), as: UTF8.self)
        let rows = try await transaction.query(
            """
            INSERT INTO portfolio_profiles AS p (tenant_id, owner_id, survey_version, answers, scorer, score, band, goals, horizon, return_min_bp, return_max_bp, points)
            VALUES (\(transaction.tenantID), \(owner), \(scorer.surveyVersion), \(answersJSON)::jsonb, \(scorer.name), \(score.score.text)::numeric, \(score.band),
                \(goals), \(score.horizon), \(score.returnMinBp), \(score.returnMaxBp), \(pointsJSON)::jsonb)
            ON CONFLICT (tenant_id, owner_id) DO UPDATE SET survey_version = excluded.survey_version, answers = excluded.answers, scorer = excluded.scorer,
                score = excluded.score, band = excluded.band, goals = excluded.goals, horizon = excluded.horizon, return_min_bp = excluded.return_min_bp,
                return_max_bp = excluded.return_max_bp, points = excluded.points, updated_at = now()
            RETURNING \(unescaped: Profile.columns)
            """)
        return try Profile(rows.first.unwrapped("the saved profile"))
    }
}
