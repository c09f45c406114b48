public import AtriumCore
public import Foundation
import HTTPTypes

/// An outside model behind the chat-completions wire format (`POST …/chat/completions`
/// with `{"model", "messages"}`, answered `{"choices": [{"message": {"content"}}]}`),
/// called through the module's outbound HTTP (address policy, timeout, size limit; logs
/// show host and path only). Off unless `ATRIUM_PORTFOLIO_LLM_URL` is set; the key is
/// `ATRIUM_PORTFOLIO_LLM_KEY`, the model `ATRIUM_PORTFOLIO_LLM_MODEL`. The latest
/// analysis's advice goes in the system message, so the model answers from the same
/// figures the rules would.
public struct OpenAICompatibleResponder: ChatResponder {
    let url: URL
    let key: String?
    let model: String
    let timeout: Duration
    let http: OutboundHTTP

    public init(url: URL, key: String?, model: String, timeout: Duration, http: OutboundHTTP) {
        (self.url, self.key, self.model, self.timeout, self.http) = (url, key, model, timeout, http)
    }

    public var name: String { "openai-compatible:\(model)" }

    struct Completion: Decodable {
        struct Choice: Decodable {
            struct Message: Decodable { var content: String? }
            var message: Message
        }
        var choices: [Choice]
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    public func respond(_ context: ChatContext) async throws -> String {
        var system = "You answer an investor's questions about their portfolio. Use only these findings of its latest analysis"
        system += context.analysisDate.map { " (of \($0))" } ?? ""
        system += "; say so when they do not cover the question.\n"
        system += context.advice.map { "- [\($0.code)] \($0.text)" }.joined(separator: "\n")
        var messages: [[String: String]] = [["role": "system", "content": system]]
        messages += context.history.map { ["role": $0.role, "content": $0.content] }
        messages.append(["role": "user", "content": context.question])
        let body = try JSONSerialization.data(withJSONObject: ["model": model, "messages": messages] as [String: Any], options: [.sortedKeys])
        var headers = [(name: "Content-Type", value: "application/json")]
        if let key { headers.append((name: "Authorization", value: "Bearer \(key)")) }
        let response = try await http.send(OutboundRequest(.post, url, headers: headers, body: body, timeout: timeout, maxResponseBytes: 1 << 20))
        guard (200..<300).contains(response.status) else { throw Failure(description: "the model answered HTTP \(response.status)") }
        guard let content = try? JSONDecoder().decode(Completion.self, from: response.body).choices.first?.message.content,
            !content.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
        else { throw Failure(description: "the model's answer has no message content") }
        return String(content.prefix(20_000))
    }
}
