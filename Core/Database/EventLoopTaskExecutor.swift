import NIOCore

/// Runs a task's jobs on one NIO event loop: the loop of the pooled connection a request
/// holds. Each database round trip then stays on one thread — the query is written and
/// its answer read on the loop, and the task resumes there — instead of hopping from
/// Swift's global executor to the loop and back twice per statement, which on a small
/// machine made the scheduler's wake-ups a visible share of every request.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

extension EventLoopTaskExecutor {
    /// Runs `body` preferring `eventLoop`, unless the task runs on that loop already.
    static func run<Result: Sendable>(
        on eventLoop: any EventLoop, isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> Result
    ) async throws -> Result {
        if eventLoop.inEventLoop { return try await body() }
        return try await withTaskExecutorPreference(EventLoopTaskExecutor(eventLoop: eventLoop), isolation: isolation, operation: body)
    }
}
