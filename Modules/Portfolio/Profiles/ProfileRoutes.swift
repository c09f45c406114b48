import AtriumCore
import Foundation
import HTTPTypes

/// The risk survey and the profile it makes. The answers are scored by the module's
/// `RiskScorer` (`rubric/1` unless another is given); the profile's band sets the limits
/// an analysis applies unless the request names one.
struct ProfileRoutes {
    let scorer: any RiskScorer

    func register(_ routes: ModuleRoutes) {
        let scorer = scorer
        let access = PortfolioAccess.records
        routes.on(.get, "profile/survey", summary: "The risk survey's questions and what each choice scores", access: access, response: Survey.self) { _ in
            Survey(version: scorer.surveyVersion, scorer: scorer.name, questions: scorer.questions)
        }

        routes.on(
            .put, "profile/survey", summary: "Answer the risk survey: scores it and saves your profile", access: access, body: SurveySubmission.self,
            response: Profile.self
        ) { request, input in
            let submission = try input.validated()
            let owner = try request.requireOwnership().userID
            let score = try scorer.score(submission.answers)
            return try await request.transaction { transaction in
                try await ProfileStore.save(score, answers: submission.answers, goals: submission.goals ?? [], scorer: scorer, owner: owner, on: transaction)
            }
        }

        routes.on(
            .get, "profile", summary: "Your risk profile (?owner= a client's, for their advisor or a manager)", access: access,
            query: [.init("owner", "Whose profile (a user id); yours when absent.")], response: Profile.self
        ) { request in
            let owner = try request.uuidQuery("owner") ?? request.requireOwnership().userID
            return try await request.transaction { transaction in try await ProfileStore.profile(of: owner, on: transaction) }
        }
    }
}
