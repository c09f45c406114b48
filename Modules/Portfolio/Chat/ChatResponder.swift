import AtriumCore
import Foundation

/// What a responder is given: the question, the conversation so far (oldest first, at
/// most the last 20 messages) and the investor's latest analysis, if any.
public struct ChatContext: Sendable {
    public struct Turn: Sendable, Equatable {
        public var role: String
        public var content: String
    }

    public var question: String
    public var history: [Turn]
    /// The latest analysis's advice items, in order; empty when there is none.
    public var advice: [AdviceItem]
    /// When and in what currency that analysis valued the portfolio.
    public var analysisDate: String?
    public var analysisValue: String?
    public var currency: String?
}

/// Answers a chat message. Shipped: `RulesResponder` (`rules/1`, the default, answering
/// from the latest analysis) and `OpenAICompatibleResponder` (an outside
/// chat-completions endpoint: Groq, OpenAI, Ollama or a local server). It runs outside any
/// transaction; its answer is stored with its `name`.
public protocol ChatResponder: Sendable {
    var name: String { get }
    func respond(_ context: ChatContext) async throws -> String
}

/// `rules/1`: answers from the latest analysis, deterministically. A question naming a
/// symbol gets the advice about that symbol; one about risk or concentration gets the
/// concentration items; anything else the analysis's first three items. Without an
/// analysis it says how to get one. It never invents a figure: every sentence is an
/// advice item's own text.
public struct RulesResponder: ChatResponder {
    public init() {}

    public var name: String { "rules/1" }

    public func respond(_ context: ChatContext) async throws -> String {
        guard !context.advice.isEmpty, let date = context.analysisDate else {
            return "There is no analysis of your portfolio yet, so I have nothing to answer from. Run one (POST analyses) and ask again."
        }
        let words = Set(context.question.uppercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber && $0 != "." }).map(String.init))
        var chosen = context.advice.filter { item in item.figures["symbol"].map { words.contains($0) } ?? false }
        if chosen.isEmpty, !words.isDisjoint(with: ["RISK", "RISKY", "CONCENTRATION", "CONCENTRATED", "DIVERSIFIED", "DIVERSIFY"]) {
            chosen = context.advice.filter { $0.code.hasSuffix("_concentration") }
        }
        if chosen.isEmpty { chosen = Array(context.advice.prefix(3)) }
        let value = context.analysisValue.map { " (worth \($0) \(context.currency ?? ""))" } ?? ""
        return "From the analysis of \(date)\(value):\n" + chosen.map { "- \($0.text)" }.joined(separator: "\n")
    }
}
