import NIOCore
import NIOPosix

/// Threads for CPU-bound work that must not run on the event loops: a handler that
/// values a portfolio of 10,000 lots, or scores every lead, would otherwise hold its loop
/// — and every request on it — for as long as it computes.
///
/// `run` moves a closure to one of these threads and suspends the caller until it is
/// done. The threads run at a raised nice value (`niceness`), so while the loops have
/// requests to serve they get the CPU first: a long computation slows itself down before
/// it slows anyone else's reads. Modules reach it as `context.compute { … }`.
public final class ComputePool: Sendable {
    /// The nice value of compute threads: below requests, above bulk imports (10).
    public static let niceness: Int32 = 5

    /// The process's pool: as many threads as cores.
    public static let shared = ComputePool(threads: System.coreCount)

    private let pool: NIOThreadPool

    public init(threads: Int) {
        pool = NIOThreadPool(numberOfThreads: max(1, threads))
        pool.start()
    }

    /// Runs `body` on a compute thread and returns its result (or throws its error).
    /// `body` cannot be interrupted once it runs: check `Task.isCancelled` beforehand, or
    /// split long work into pieces, when a cancelled request should stop it.
    public func run<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
        try Task.checkCancellation()
        return try await pool.runIfActive {
            ThreadPriority.lowerCallingThread(to: Self.niceness)
            return try body()
        }
    }
}

extension ModuleContext {
    /// Runs CPU-bound `body` off the event loops (`ComputePool.shared`).
    public func compute<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await ComputePool.shared.run(body)
    }
}
