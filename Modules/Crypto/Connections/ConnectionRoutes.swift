import AtriumCore
import Foundation
import HTTPTypes

/// Connections over HTTP. `POST connections` checks the body, then asks the exchange what
/// the key may do before anything is written (outside any transaction: an exchange can
/// be slow): a key it refuses is 422 `exchange_rejected_credentials`, one that may
/// withdraw is 422 `key_permits_withdrawals` (Atrium only reads), an exchange that cannot
/// answer is 503 `exchange_unavailable` with `Retry-After`; the same key twice is 409
/// `connection_exists`. The answer never carries the key or secret.
struct ConnectionRoutes {
    let adapter: any ExchangeAdapter

    func register(_ routes: ModuleRoutes) {
        let adapter = adapter
        let sealer = routes.context.sealer
        routes.create(
            "connections", summary: "Connect an exchange account by a read-only API key (checked with the exchange first)", access: CryptoAccess.records,
            body: ConnectionFields.self, response: Connection.self,
            prepare: { request, input in
                let fields = try input.validated()
                let ownership = try request.requireOwnership()
                // A tenant at its plan's count is told so before the exchange is asked (the
                // write checks again, under the lock that settles a race for the last slot).
                try await request.transaction { try await $0.requireCountSlot(CryptoModule.exchangesQuota, counting: "crypto_connections") }
                let permissions = try await ConnectionProblems.readOnlyPermissions(
                    of: ExchangeCredentials(apiKey: fields.apiKey, apiSecret: fields.apiSecret), at: adapter)
                return (fields, permissions, ownership.userID)
            },
            write: { (_: TenantRequest, transaction: TenantTransaction, prepared: (ConnectionFields, KeyPermissions, UUID)) in
                let (fields, permissions, owner) = prepared
                // The plan's count is checked under a lock held to the commit: two creates
                // cannot both take the last slot.
                try await transaction.requireCountSlot(CryptoModule.exchangesQuota, counting: "crypto_connections")
                // The first sync is queued with the connection, in the same transaction.
                let id = UUID()
                try await transaction.enqueue(CryptoSync.kind, .init(connection: id), uniqueKey: CryptoSync.uniqueKey(id))
                return try await ConnectionStore.insert(id: id, fields, permissions: permissions, owner: owner, sealer: sealer, on: transaction)
            })

        CryptoAccess.recordRoutes.list(routes, "connections", summary: "Exchange connections you may see", search: "label") { request, page, filter in
            try await request.transaction { transaction in
                try await transaction.lastStatement {
                    try await ConnectionStore.table.page(page, where: filter.conditions(searching: ["label"]), on: transaction)
                }
            }
        }
        CryptoAccess.recordRoutes.get(routes, "connections/{id}", summary: "One exchange connection", table: ConnectionStore.table)

        routes.on(
            .patch, "connections/{id}", summary: "Rename a connection, change the markets it syncs or its owner (JSON Merge Patch)",
            access: CryptoAccess.records, body: ConnectionChanges.self, response: Connection.self
        ) { request, input in
            let id = try request.uuidParameter("id")
            let changes = try input.validated()
            var owner: UUID?
            if let requested = changes.ownerId.value {
                owner = try request.requireOwnership().owner(for: requested, assignPermission: CryptoPermission.assign)
            }
            return try await request.transaction { [owner] in try await ConnectionStore.update(id, changes, owner: owner, on: $0) }
        }

        // New credentials for a connection: checked as a new connection's are, after the
        // connection is found (another owner's is a missing one, and the exchange is not asked).
        routes.on(
            .put, "connections/{id}/credentials", summary: "Replace a connection's API key and secret (checked with the exchange first)",
            access: CryptoAccess.records, body: ConnectionFields.Credentials.self, response: Connection.self
        ) { request, input in
            let id = try request.uuidParameter("id")
            let credentials = try input.validated()
            _ = try await request.transaction { transaction in
                try await transaction.lastStatement { try await ConnectionStore.table.find(id, on: transaction) }
            }
            let permissions = try await ConnectionProblems.readOnlyPermissions(of: credentials.exchangeCredentials, at: adapter)
            return try await request.transaction { transaction in
                try await ConnectionStore.replaceCredentials(of: id, with: credentials, permissions: permissions, sealer: sealer, on: transaction)
            }
        }
        CryptoAccess.recordRoutes.delete(routes, "connections/{id}", summary: "Disconnect an exchange account (its sealed key and secret go with it)", table: ConnectionStore.table)
    }
}

/// How an exchange's failure is told to the client.
enum ConnectionProblems {
    /// What `credentials` may do, when the exchange accepts them and they only read:
    /// else the problem to answer (nothing is written either way).
    static func readOnlyPermissions(of credentials: ExchangeCredentials, at adapter: any ExchangeAdapter) async throws -> KeyPermissions {
        let permissions: KeyPermissions
        do throws(ExchangeFailure) {
            permissions = try await adapter.permissions(of: credentials)
        } catch {
            throw problem(for: error)
        }
        guard !permissions.withdrawals else {
            throw AtriumError(
                status: .unprocessableContent, code: "key_permits_withdrawals", title: "The key may withdraw funds",
                detail: "Atrium only reads an account: create an API key with withdrawals disabled and connect that one.",
                fieldErrors: [.init(field: "api_key", message: "permits withdrawals")])
        }
        guard permissions.reading else {
            throw AtriumError(
                status: .unprocessableContent, code: "key_cannot_read", title: "The key cannot read the account",
                detail: "Enable reading on the API key, then connect it again.", fieldErrors: [.init(field: "api_key", message: "cannot read")])
        }
        return permissions
    }

    static func problem(for failure: ExchangeFailure) -> AtriumError {
        switch failure {
        case .rejectedCredentials(let code, let message):
            var error = AtriumError(
                status: .unprocessableContent, code: "exchange_rejected_credentials", title: "The exchange refused the key",
                detail: "The exchange refused this API key and secret (\(code): \(message)). Check both, and that the key is enabled.",
                fieldErrors: [.init(field: "api_key", message: "refused by the exchange")])
            error.extensions["exchange_code"] = .number(Double(code))
            return error
        case .unavailable(let reason, let retryAfter):
            var error = AtriumError(
                status: .serviceUnavailable, code: "exchange_unavailable", title: "The exchange is unavailable",
                detail: "\(reason); nothing was saved. Try again later.")
            error.headers[.retryAfter] = String(retryAfter ?? 30)
            return error
        case .clockSkew(let milliseconds):
            return AtriumError(
                status: .serviceUnavailable, code: "clock_skew", title: "The server's clock and the exchange's disagree",
                detail: "The exchange's clock is \(milliseconds) ms from the server's, beyond what it accepts; nothing was saved.")
        case .badResponse(let what):
            return AtriumError(
                status: .badGateway, code: "bad_exchange_response", title: "The exchange answered what it does not document",
                detail: "\(what); nothing was saved.")
        }
    }
}
