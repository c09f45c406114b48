import Foundation
import Logging
import PostgresNIO
import Synchronization

/// The one pooled connection, and the one transaction, of an authenticated request.
///
/// The tenant middleware opens it (`BEGIN`, then one statement that scopes it to the
/// tenant and principal and checks the credentials); the handler's first
/// `request.transaction { … }` runs in it and commits it; a handler that opens none has
/// it committed by the middleware (a read-only commit: no WAL flush). Where `BEGIN` and
/// the scope wait to travel with the first statement, a request that runs none costs
/// no round trip at all: there is nothing to commit. Later
/// `transaction` blocks of the same request run as transactions of their own on the same
/// connection, so each block stays one atomic unit, as it always was. After the
/// middleware returns (a streaming body still writing), blocks use the pool instead.
final class RequestTransaction: Sendable {
    enum State {
        /// Opened by the middleware, not yet used by the handler.
        case open
        /// A handler's block is running on the connection.
        case busy
        /// Committed or rolled back; the connection is still this request's.
        case idle
        /// The middleware is done; the connection went back to the pool.
        case released
    }

    let connection: PostgresConnection
    let logger: Logger
    /// The lease whose pipelined `BEGIN` opened the transaction, if it did: a transaction
    /// no statement reached was never opened, and is ended by taking the `BEGIN` back.
    let requestLease: RequestLease?
    private let state = Mutex(State.open)
    /// Set once the transaction the middleware opened has ended with the handler's last
    /// statement (its `COMMIT` pipelined behind it): nothing is left to commit or roll back.
    private let endedWithStatement = Atomic<Bool>(false)

    init(connection: PostgresConnection, logger: Logger, lease: RequestLease? = nil) {
        self.connection = connection
        self.logger = logger
        self.requestLease = lease
    }

    /// What a handler's `transaction` block may do with this request's connection.
    enum Lease {
        /// Run in the transaction the middleware opened; commit it after.
        case opened
        /// Run a transaction of its own on this connection.
        case reuse
        /// Use the pool.
        case none
    }

    func lease() -> Lease {
        state.withLock { state in
            switch state {
            case .open:
                state = .busy
                return .opened
            case .idle:
                state = .busy
                return .reuse
            case .busy, .released:
                return .none
            }
        }
    }

    /// Gives the connection back after a handler's block (its transaction has ended).
    func returnLease() {
        if endedWithStatement.load(ordering: .relaxed) {
            // Statements may follow again on the connection, in transactions of their own.
            _ = requestLease?.withdrawUnsentBegin()
        }
        state.withLock { state in if state == .busy { state = .idle } }
    }

    /// Ends the middleware's transaction if the handler left it open (commit when
    /// `success`, else roll back) and stops handing out the connection.
    func finish(success: Bool) async throws {
        let wasOpen = state.withLock { state -> Bool in
            defer { state = .released }
            return state == .open
        }
        guard wasOpen else { return }
        if success {
            try await commit()
        } else {
            try await rollbackIfConnected()
        }
    }

    /// Sends `COMMIT` behind the handler's next statement, in the same write (see
    /// `TenantTransaction.lastStatement`); nil where the connection does not pipeline.
    func commitWithNextStatement() -> EventLoopFuture<Void>? {
        guard !endedWithStatement.load(ordering: .relaxed) else { return nil }
        return requestLease?.commitAfterNextStatement()
    }

    /// Waits for the answer to a pipelined `COMMIT` (taking it back if no statement carried
    /// it): afterwards the transaction has ended, committed or not, unless nothing was sent.
    /// Throws when it did not commit.
    func settleCommit(_ commit: EventLoopFuture<Void>) async throws {
        requestLease?.withdrawUnsentCommit()
        do {
            try await commit.get()
        } catch PipelinedBeginHandler.CommitOutcome.notSent {
            return  // the block's end commits as usual
        } catch {
            endedWithStatement.store(true, ordering: .relaxed)
            throw error
        }
        endedWithStatement.store(true, ordering: .relaxed)
    }

    /// Sends `statement` with the transaction's next statement, or with its `COMMIT`; false
    /// where the connection does not pipeline (the caller runs it itself).
    func sendWithNextStatement(_ statement: PrefixedStatement) -> Bool {
        guard !endedWithStatement.load(ordering: .relaxed) else { return false }
        return requestLease?.sendWithNextWrite(statement) ?? false
    }

    func commit() async throws {
        if endedWithStatement.load(ordering: .relaxed) { return }
        // With statements waiting, COMMIT is a write to carry them (BEGIN too, if unsent).
        if requestLease?.hasDeferredStatements != true, requestLease?.withdrawUnsentBegin() == true { return }
        guard !connection.isClosed else { throw ConnectionLost() }
        try await TransactionControl.commit(on: connection, logger: logger)
    }

    func rollback() async { try? await rollbackIfConnected() }

    /// A statement written to a connection whose channel has closed is never answered
    /// (PostgresNIO writes it without a promise once its handler is gone), so after a
    /// lost backend — the error that brought a request here — the ROLLBACK would hold the
    /// request, and its pooled connection, forever. A closed connection has no
    /// transaction left to roll back.
    private func rollbackIfConnected() async throws {
        requestLease?.discardDeferred()
        if endedWithStatement.load(ordering: .relaxed) { return }
        if requestLease?.withdrawUnsentBegin() == true { return }
        guard !connection.isClosed else { return }
        try await connection.query("ROLLBACK", logger: logger)
    }

    struct ConnectionLost: Error, CustomStringConvertible {
        var description: String { "the database connection closed before the request's transaction committed" }
    }
}
