import AtriumCore
import Foundation
import PostgresNIO

/// A chat of an investor's, optionally about one portfolio.
struct Conversation: Codable, Sendable {
    var id, ownerId: UUID
    var title: String
    var portfolioId: UUID?
    var createdAt, updatedAt: Date

    init(_ row: PostgresRow) throws {
        var columns = RowReader(row)
        id = try columns.next()
        ownerId = try columns.next()
        title = try columns.next()
        portfolioId = try columns.next()
        createdAt = try columns.next()
        updatedAt = try columns.next()
    }
}

struct ConversationFields: RecordFields {
    var title: Patch<String>
    var portfolioId: Patch<UUID>
    var ownerId: Patch<UUID>

    func validated(creating: Bool) throws -> ConversationFields {
        try MergePatch.refuseClearing([("title", title.isCleared), ("owner_id", ownerId.isCleared)])
        var checks = FieldChecks()
        checks.record("title", title.value.flatMap { PortfolioValidation.textProblem($0, maximum: 200) })
        try checks.finish()
        return self
    }
}

/// One message: the investor's (`user`) or the responder's (`assistant`, naming it).
struct Message: Codable, Sendable {
    var id, conversationId: UUID
    var role: String
    var content: String
    var responder: String?
    var createdAt: Date

    init(_ row: PostgresRow) throws {
        var columns = RowReader(row)
        id = try columns.next()
        conversationId = try columns.next()
        role = try columns.next()
        content = try columns.next()
        responder = try columns.next()
        createdAt = try columns.next()
    }
}

struct NewMessage: Codable, Sendable {
    var content: String

    func validated() throws -> NewMessage {
        var checks = FieldChecks()
        checks.record("content", PortfolioValidation.textProblem(content, maximum: 4000))
        try checks.finish()
        return self
    }
}

/// A question and the answer it got.
struct Exchange: Codable, Sendable {
    var question: Message
    var answer: Message
}

enum ConversationStore: OwnedRecordStore {
    static let table = RecordTable<Conversation>(
        "portfolio_conversations", columns: "id, owner_id, title, portfolio_id, created_at, updated_at", noun: "conversation",
        delegatedAs: PortfolioAccess.scope, order: .descending("updated_at", time: \.updatedAt, id: \.id), decode: Conversation.init)
    static let messages = RecordTable<Message>(
        "portfolio_messages", columns: "id, conversation_id, role, content, responder, created_at", noun: "message", delegatedAs: PortfolioAccess.scope,
        order: .ascending("created_at", time: \.createdAt, id: \.id), decode: Message.init)

    static func insert(_ fields: ConversationFields, owner: UUID, on transaction: TenantTransaction) async throws -> Conversation {
        try await transaction.requireVisible(Reference("portfolio_id", table: "portfolio_portfolios", id: fields.portfolioId.value))
        return try await table.one(
            """
            INSERT INTO portfolio_conversations (tenant_id, owner_id, title, portfolio_id)
            VALUES (\(transaction.tenantID), \(owner), \(fields.title.value ?? "Conversation"), \(fields.portfolioId.value))
            RETURNING \(unescaped: table.columns)
            """, on: transaction)
    }

    static func update(_ id: UUID, _ fields: ConversationFields, owner: UUID?, on transaction: TenantTransaction) async throws -> Conversation {
        try await transaction.requireVisible(Reference("portfolio_id", table: "portfolio_portfolios", id: fields.portfolioId.value))
        return try await table.one(
            """
            UPDATE portfolio_conversations SET title = coalesce(\(fields.title.value), title),
                portfolio_id = CASE WHEN \(fields.portfolioId.isSet) THEN \(fields.portfolioId.value) ELSE portfolio_id END,
                owner_id = coalesce(\(owner), owner_id), updated_at = now()
            WHERE id = \(id) RETURNING \(unescaped: table.columns)
            """, on: transaction)
    }

    /// What the responder is given: the conversation's last 20 messages and the owner's
    /// latest analysis (of the conversation's portfolio when it names one).
    static func context(for conversation: Conversation, question: String, on transaction: TenantTransaction) async throws -> ChatContext {
        let history = try await transaction.query(
            """
            SELECT role, content FROM (
                SELECT role, content, created_at, id FROM portfolio_messages WHERE conversation_id = \(conversation.id)
                ORDER BY created_at DESC, id DESC LIMIT 20
            ) recent ORDER BY created_at, id
            """
        ).map { row in
            var columns = RowReader(row)
            return ChatContext.Turn(role: try columns.next(), content: try columns.next())
        }
        let latest = try await AnalysisStore.table.all(
            """
            SELECT \(unescaped: AnalysisStore.columns) FROM portfolio_analyses
            WHERE owner_id = \(conversation.ownerId) AND (\(conversation.portfolioId)::uuid IS NULL OR portfolio_id = \(conversation.portfolioId))
            ORDER BY created_at DESC, id DESC LIMIT 1
            """, on: transaction
        ).first
        return ChatContext(
            question: question, history: history, advice: latest?.advice ?? [], analysisDate: latest?.asOf, analysisValue: latest?.value.text,
            currency: latest?.currency)
    }

    /// Stores the question and the answer in the conversation, locked for writing (404
    /// for a conversation the caller may only read).
    static func append(_ question: String, answer: String, responder: String, to id: UUID, on transaction: TenantTransaction) async throws -> Exchange {
        let conversation = try await table.find(id, on: transaction, forUpdate: true)
        let stored = try await messages.all(
            """
            WITH touched AS (UPDATE portfolio_conversations SET updated_at = now() WHERE id = \(conversation.id))
            INSERT INTO portfolio_messages (tenant_id, conversation_id, owner_id, role, content, responder)
            VALUES (\(transaction.tenantID), \(conversation.id), \(conversation.ownerId), 'user', \(question), NULL),
                   (\(transaction.tenantID), \(conversation.id), \(conversation.ownerId), 'assistant', \(answer), \(responder))
            RETURNING \(unescaped: messages.columns)
            """, on: transaction)
        guard let asked = stored.first(where: { $0.role == "user" }), let answered = stored.first(where: { $0.role == "assistant" }) else {
            throw PortfolioDataError("the exchange was not stored")
        }
        return Exchange(question: asked, answer: answered)
    }
}
