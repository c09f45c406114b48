@testable import AtriumCore
import AtriumTesting
import NIOPosix
import Testing

/// CPU-bound work leaves the event loops, at a lower priority than they run at.
@Suite("Compute pool")
struct ComputePoolTests {
    struct Refused: Error {}

    @Test func workRunsOffTheEventLoopsAtALowerPriority() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let (onLoop, niceness) = try await EventLoopTaskExecutor.run(on: loop) {
            #expect(MultiThreadedEventLoopGroup.currentEventLoop != nil, "the caller runs on an event loop")
            return try await ComputePool.shared.run { (MultiThreadedEventLoopGroup.currentEventLoop != nil, ThreadPriority.callingThread) }
        }
        #expect(!onLoop, "the work ran on an event loop")
        #expect(niceness >= ComputePool.niceness)
        // A module reaches it through its context; the work's result and errors come back.
        let context = ModuleKit.ephemeral(logger: TestDatabase.logger).context(for: "probe")
        #expect(try await context.compute { (1...1000).reduce(0, +) } == 500_500)
        await #expect(throws: Refused.self) { try await context.compute { throw Refused() } }
    }

    @Test func passwordHashingRunsBelowTheEventLoops() async throws {
        let niceness = try await PasswordHasher.onHashingThread { ThreadPriority.callingThread }
        #expect(niceness >= PasswordHasher.niceness)
    }
}
