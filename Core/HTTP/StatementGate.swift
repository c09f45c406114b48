import Synchronization

/// What `TenantTransaction.lastStatement` allows: one statement inside it and none after
/// it, on every connection, so that a block tested where its `COMMIT` is not pipelined (a
/// job, a later block) cannot run a statement outside its transaction on the request's
/// own connection (where it is). Every call that sends a statement passes it.
final class StatementGate: Sendable {
    struct Closed: Error, CustomStringConvertible {
        var description: String
    }

    /// The request's transaction whose `COMMIT` may travel with the last statement: set
    /// only for the block that runs in the transaction the middleware opened.
    let request: RequestTransaction?
    private let phase = Atomic<Int>(Phase.open)

    private enum Phase {
        static let open = 0
        /// Inside `lastStatement`, its statement not yet run.
        static let lastPending = 1
        /// Inside `lastStatement`, its statement run.
        static let lastRun = 2
        /// After `lastStatement`: the transaction has ended.
        static let closed = 3
    }

    init(request: RequestTransaction?) {
        self.request = request
    }

    func enterLast() throws {
        guard phase.compareExchange(expected: Phase.open, desired: Phase.lastPending, ordering: .relaxed).exchanged else {
            throw Closed(description: "lastStatement was called twice in one transaction block; it ends the transaction")
        }
    }

    func exitLast() {
        phase.store(Phase.closed, ordering: .relaxed)
    }

    /// Lets a statement through, or throws before it is sent.
    func admitStatement() throws {
        switch phase.load(ordering: .relaxed) {
        case Phase.open:
            return
        case Phase.lastPending:
            phase.store(Phase.lastRun, ordering: .relaxed)
        case Phase.lastRun:
            throw Closed(description: "a lastStatement block ran a second statement; it may run one, the transaction's last")
        default:
            throw Closed(description: "a statement came after lastStatement, which ended the transaction; run it before, or in a block of its own")
        }
    }
}
