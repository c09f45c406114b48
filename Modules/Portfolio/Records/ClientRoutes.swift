import AtriumCore
import Foundation
import HTTPTypes

/// An advisor's assignment to a client: the client's portfolios, ledgers and reports
/// become readable by the advisor, never writable. Kept as a kernel owner delegation in
/// the `portfolio.records` scope, so the tables' row-level security enforces it.
struct ClientAssignment: Codable, Sendable {
    var advisorId: UUID
    var clientId: UUID
    var assignedBy: UUID?
    var createdAt: Date

    init(_ delegation: OwnerDelegation) {
        advisorId = delegation.delegateId
        clientId = delegation.ownerId
        assignedBy = delegation.grantedBy
        createdAt = delegation.createdAt
    }
}

struct ClientRoutes {
    func register(_ routes: ModuleRoutes) {
        routes.on(
            .get, "clients", summary: "Advisor assignments: yours as an advisor; every one (or ?advisor=) with portfolio.clients.assign",
            access: .permission(PortfolioPermission.clients), query: QueryParameter.pagination + [.init("advisor", "Only this advisor's clients (a user id).")],
            response: Page<ClientAssignment>.self
        ) { request in
            let principal = try request.requirePrincipal()
            let page = try request.pageRequest()
            var advisor = try request.uuidQuery("advisor")
            if !principal.has(PortfolioPermission.assignClients) {
                guard let me = principal.actingUserID else { throw AtriumError.forbidden(code: "no_acting_user", "this API key acts for no user") }
                advisor = me
            }
            let filter: SQL = advisor.map { "scope = \(PortfolioAccess.scope) AND delegate_id = \($0)" } ?? "scope = \(PortfolioAccess.scope)"
            let delegations = try await request.transaction { transaction in
                try await transaction.lastStatement { try await OwnerDelegation.table.page(page, where: filter, on: transaction) }
            }
            return Page(data: delegations.data.map(ClientAssignment.init), nextCursor: delegations.nextCursor)
        }

        routes.on(
            .put, "clients/{advisor}/{client}", summary: "Assign an advisor to a client (read-only access to the client's portfolios)",
            access: .permission(PortfolioPermission.assignClients), response: ClientAssignment.self
        ) { request in
            let (advisor, client) = (try request.uuidParameter("advisor"), try request.uuidParameter("client"))
            guard advisor != client else { throw AtriumError.validation(field: "client", "must be another user than the advisor") }
            return try await request.transaction { transaction in
                // Analyses are the one thing an advisor writes for a client.
                _ = try await transaction.delegate(PortfolioAccess.analysesScope, owner: client, to: advisor, canWrite: true)
                return ClientAssignment(try await transaction.delegate(PortfolioAccess.scope, owner: client, to: advisor, canWrite: false))
            }
        }

        routes.on(
            .delete, "clients/{advisor}/{client}", summary: "End an advisor's assignment to a client", access: .permission(PortfolioPermission.assignClients),
            response: NoContent.self, status: .noContent
        ) { request in
            let (advisor, client) = (try request.uuidParameter("advisor"), try request.uuidParameter("client"))
            let ended = try await request.transaction { transaction in
                try await transaction.revokeDelegation(PortfolioAccess.analysesScope, owner: client, from: advisor)
                return try await transaction.revokeDelegation(PortfolioAccess.scope, owner: client, from: advisor)
            }
            guard ended else { throw AtriumError.notFound("No such assignment.") }
            return NoContent()
        }
    }
}
