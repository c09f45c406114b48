import AtriumCore
import AtriumPortfolio
import AtriumTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Synchronization
import Testing

/// Chat over a real database: the rules answer from the latest analysis; an outside
/// model is a loopback server speaking the chat-completions wire format.
@Suite struct PortfolioChatTests {
    @Test func theRulesAnswerFromTheLatestAnalysisAndBothSidesAreStored() async throws {
        try await PortfolioTeam.withTeam { team in
            let portfolio = try await PortfolioAnalysisTests.market(team)
            let conversation = try await team.call(.post, "/conversations", team.ann, #"{"title":"My plan","portfolio_id":"\#(portfolio)"}"#, expect: .created)
            let id = try #require(conversation["id"]?.string)
            let early = try await team.call(.post, "/conversations/\(id)/messages", team.ann, #"{"content":"How am I doing?"}"#, expect: .created)
            #expect(early["answer"]?["content"]?.string?.hasPrefix("There is no analysis") == true)
            #expect(early["answer"]?["responder"]?.string == "rules/1")
            #expect(early["question"]?["responder"] == nil)

            try await team.call(.post, "/analyses", team.ann, #"{"portfolio_id":"\#(portfolio)","as_of":"2024-03-04"}"#, expect: .created)
            let aapl = try await team.call(.post, "/conversations/\(id)/messages", team.ann, #"{"content":"Is AAPL too big a part?"}"#, expect: .created)
            let answer = try #require(aapl["answer"]?["content"]?.string)
            #expect(answer.hasPrefix("From the analysis of 2024-03-04 (worth 2500.00 USD):"))
            #expect(answer.contains("AAPL is 60.0% of the portfolio"))
            #expect(!answer.contains("MSFT"), "only the advice about the symbol asked about")
            let risk = try await team.call(.post, "/conversations/\(id)/messages", team.ann, #"{"content":"how risky is this?"}"#, expect: .created)
            #expect(risk["answer"]?["content"]?.string?.contains("Herfindahl") == true)

            let messages = try await team.call(.get, "/conversations/\(id)/messages", team.ann)
            #expect(messages["data"]?.array?.compactMap { $0["role"]?.string } == ["user", "assistant", "user", "assistant", "user", "assistant"])
            #expect(messages["data"]?.array?.first?["content"]?.string == "How am I doing?")
            // Another investor's conversation is missing; chat bills nothing.
            try await team.call(.get, "/conversations/\(id)/messages", team.bob, expect: .notFound)
            try await team.call(.post, "/conversations/\(id)/messages", team.bob, #"{"content":"hi"}"#, expect: .notFound)
            try await team.call(.post, "/conversations", team.bob, #"{"title":"x","portfolio_id":"\#(portfolio)"}"#, expect: .unprocessableContent)
            #expect(try await team.usage().map(\.meter) == ["portfolio.advice", "portfolio.analysis"])
        }
    }

    @Test func aMalformedModelSettingStopsStartUpNamingIt() async throws {
        let db = try await TestDatabase.create(modules: [PortfolioModule()])
        let error = await #expect(throws: ConfigurationError.self) {
            try await withTestApplication(db, modules: [PortfolioModule()], environment: ["ATRIUM_PORTFOLIO_LLM_URL": "ftp://models.example"]) { _, _ in }
        }
        #expect(error?.description.contains("ATRIUM_PORTFOLIO_LLM_URL") == true)
    }

    /// A chat-completions server on a loopback port: answers with a fixed text, or fails
    /// while `down`; records what it was sent.
    final class ModelServer: Sendable {
        let requests = Mutex<[String]>([])
        let down = Mutex(false)

        func run(_ body: @escaping @Sendable (URL) async throws -> Void) async throws {
            let router = Router()
            router.post("v1/chat/completions") { request, _ -> Response in
                let received = try await request.body.collect(upTo: 1 << 20)
                self.requests.withLock { $0.append((request.headers[.authorization] ?? "") + " " + String(buffer: received)) }
                if self.down.withLock({ $0 }) { return Response(status: .serviceUnavailable) }
                return Response(
                    status: .ok, headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: #"{"choices":[{"message":{"role":"assistant","content":"Trim AAPL."}}]}"#)))
            }
            let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: Logger(label: "model"))
            try await app.test(.live) { client in
                let port = try #require(client.port)
                try await body(try #require(URL(string: "http://127.0.0.1:\(port)/v1/chat/completions")))
            }
        }
    }

    @Test func anOutsideModelAnswersWhenSetAndTheRulesWhenItFails() async throws {
        let model = ModelServer()
        try await model.run { url in
            let db = try await TestDatabase.create(modules: [PortfolioModule()])
            let tenant = try await db.createTenant("fund", modules: ["portfolio"])
            _ = try await db.createUser("ann@fund.test", password: "correct horse battery", roles: ["investor"], in: tenant)
            let environment = [
                "ATRIUM_PORTFOLIO_LLM_URL": url.absoluteString, "ATRIUM_PORTFOLIO_LLM_KEY": "sk-test", "ATRIUM_PORTFOLIO_LLM_MODEL": "tiny",
                "ATRIUM_PORTFOLIO_OUTBOUND_ALLOW": "loopback",
            ]
            try await withTestApplication(db, modules: [PortfolioModule()], environment: environment) { client, _ in
                let token = try await client.login("fund", "ann@fund.test", "correct horse battery").access
                let base = PortfolioTeam.base
                let created = try await client.send(.post, "\(base)/conversations", token: token, json: #"{"title":"Ask"}"#)
                let id = try #require(json(created)["id"]?.string)
                let answered = json(try await client.send(.post, "\(base)/conversations/\(id)/messages", token: token, json: #"{"content":"What now?"}"#))
                #expect(answered["answer"]?["content"]?.string == "Trim AAPL.")
                #expect(answered["answer"]?["responder"]?.string == "openai-compatible:tiny")
                let sent = try #require(model.requests.withLock { $0.first })
                #expect(sent.hasPrefix("Bearer sk-test "))
                #expect(sent.contains(#""model":"tiny""#))
                #expect(sent.contains(#""content":"What now?""#))
                // The model down: the rules answer, and the message says which answered.
                model.down.withLock { $0 = true }
                let fallback = json(try await client.send(.post, "\(base)/conversations/\(id)/messages", token: token, json: #"{"content":"And now?"}"#))
                #expect(fallback["answer"]?["responder"]?.string == "rules/1 (fallback: openai-compatible:tiny failed)")
                #expect(fallback["answer"]?["content"]?.string?.hasPrefix("There is no analysis") == true)
                // The history went to the model with the second question.
                #expect(model.requests.withLock { $0.last }?.contains("Trim AAPL.") == true)
            }
        }
    }
}
