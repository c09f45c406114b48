import AtriumCore
import Foundation
import HTTPTypes
import Logging

/// Conversations and their messages. `POST conversations/{id}/messages` reads the
/// context (committing at once), asks the responder outside any transaction, then stores
/// the question and the answer together (Idempotency-Key honoured). When an outside
/// model is set and fails (down, slow, a malformed answer), the rules answer instead and
/// the message says so in its `responder`. Chat is not billed.
struct ChatRoutes {
    /// The responder asked first (an outside model when configured), and the rules.
    let primary: (any ChatResponder)?
    let rules: any ChatResponder

    func register(_ routes: ModuleRoutes) {
        let (primary, rules) = (primary, rules)
        let records = PortfolioAccess.recordRoutes
        records.list(routes, "conversations", summary: "Your conversations, most recent first", search: "title") { request, page, filter in
            try await request.transaction { transaction in
                try await transaction.lastStatement {
                    try await ConversationStore.table.page(page, where: filter.conditions(searching: ["title"]), on: transaction)
                }
            }
        }
        records.register(routes, "conversations", store: ConversationStore.self, summaries: .init(
            create: "Start a conversation (optionally about one portfolio)", get: "One conversation",
            change: "Rename a conversation or change its portfolio (JSON Merge Patch)", delete: "Delete a conversation and its messages"))

        routes.on(
            .get, "conversations/{id}/messages", summary: "A conversation's messages, oldest first", access: PortfolioAccess.records,
            query: QueryParameter.pagination, response: Page<Message>.self
        ) { request in
            let (id, page) = (try request.uuidParameter("id"), try request.pageRequest())
            return try await request.transaction { transaction in
                _ = try await ConversationStore.table.find(id, on: transaction)
                return try await transaction.lastStatement {
                    try await ConversationStore.messages.page(page, where: "conversation_id = \(id)", on: transaction)
                }
            }
        }

        routes.create(
            "conversations/{id}/messages", summary: "Ask a question: answered from your latest analysis (stored, not billed)",
            access: PortfolioAccess.records, body: NewMessage.self, response: Exchange.self,
            prepare: { request, input in
                let (id, message) = (try request.uuidParameter("id"), try input.validated())
                let context = try await request.transaction { transaction in
                    let conversation = try await ConversationStore.table.find(id, on: transaction)
                    return try await ConversationStore.context(for: conversation, question: message.content, on: transaction)
                }
                let (answer, responder) = try await Self.answer(context, primary: primary, rules: rules, logger: request.logger)
                return (id, message.content, answer, responder)
            },
            write: { _, transaction, prepared in
                let (id, question, answer, responder) = prepared
                return try await ConversationStore.append(question, answer: answer, responder: responder, to: id, on: transaction)
            })
    }

    /// The primary responder's answer, or the rules' when it fails (named as a fallback).
    static func answer(_ context: ChatContext, primary: (any ChatResponder)?, rules: any ChatResponder, logger: Logger) async throws -> (String, String) {
        if let primary {
            do {
                return (try await primary.respond(context), primary.name)
            } catch {
                logger.warning("chat responder failed; the rules answer", metadata: ["responder": "\(primary.name)", "error": "\(String(describing: error))"])
                return (try await rules.respond(context), "\(rules.name) (fallback: \(primary.name) failed)")
            }
        }
        return (try await rules.respond(context), rules.name)
    }
}
