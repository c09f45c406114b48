import Synchronization

/// How many of the background pool's connections bulk work (imports) may hold at once:
/// one fewer than the pool has, so a report read behind the request path
/// (`TenantRequest.readBehindRequests`) finds a connection while imports run, instead of
/// waiting minutes for one to finish. A pool of one is shared as before.
///
/// Waiters are served in order; a cancelled waiter leaves the queue and takes nothing.
final class BulkPermits: Sendable {
    private struct State {
        var available: Int
        var waiters: [(id: Int, continuation: CheckedContinuation<Void, any Error>)] = []
        var nextID = 0
    }

    private let state: Mutex<State>

    /// Permits for a background pool of `connections`.
    init(connections: Int) {
        state = Mutex(State(available: max(1, connections - 1)))
    }

    /// Runs `body` holding a permit, waiting for one when all are held.
    func withPermit<Result>(isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> sending Result) async throws -> sending Result {
        try await acquire()
        defer { release() }
        return try await body()
    }

    private func acquire() async throws {
        let id: Int? = state.withLock { state in
            if state.available > 0 {
                state.available -= 1
                return nil
            }
            state.nextID += 1
            return state.nextID
        }
        guard let id else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let cancelled = state.withLock { state in
                    if Task.isCancelled { return true }
                    state.waiters.append((id, continuation))
                    return false
                }
                if cancelled { continuation.resume(throwing: CancellationError()) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, any Error>? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index).continuation
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    private func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            guard !state.waiters.isEmpty else {
                state.available += 1
                return nil
            }
            return state.waiters.removeFirst().continuation
        }
        next?.resume()
    }

    /// Permits free now (tests).
    var available: Int { state.withLock { $0.available } }
}
