@testable import AtriumCore
import Foundation
import NIOCore
import Testing

@Suite("Hashing pace: a hash that waited for the cores rests, one that did not runs on")
struct HashingPaceTests {
    @Test func aHashThatWaitedRestsTwiceItsCPUTimeAndOneThatDidNotRestsNot() {
        let computed = Duration.milliseconds(15)
        // Wall time about its CPU time: nothing else wanted the cores.
        #expect(HashingPace.rest(computed: computed, elapsed: .milliseconds(16)) == .zero)
        #expect(HashingPace.rest(computed: computed, elapsed: .milliseconds(18)) == .zero)
        // Twice its CPU time in wall time: it waited, and rests.
        #expect(HashingPace.rest(computed: computed, elapsed: .milliseconds(19)) == .milliseconds(30))
        #expect(HashingPace.rest(computed: computed, elapsed: .milliseconds(300)) == .milliseconds(30))
        #expect(HashingPace.rest(computed: .zero, elapsed: .milliseconds(300)) == .zero)
    }

    @Test func threadCPUTimeCountsWorkAndNotSleep() throws {
        let start = try #require(HashingPace.threadCPUTime())
        usleep(50_000)
        let slept = try #require(HashingPace.threadCPUTime()) - start
        #expect(slept < .milliseconds(20), "sleeping 50 ms used \(slept) of CPU")
        // Spinning advances it (however loaded the machine: up to 10 s of wall time for 10 ms).
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        var worked = Duration.zero
        var spins = 0
        while worked < .milliseconds(10), clock.now < deadline {
            spins &+= 1
            worked = try #require(HashingPace.threadCPUTime()) - start - slept
        }
        #expect(worked >= .milliseconds(10), "spinning until the deadline used \(worked) of CPU (\(spins) spins)")
    }

    @Test func aContendedPaceSleepsTheThread() {
        // CPU work, then a wait (as a hash preempted by the event loops).
        let pace = HashingPace.start()
        let clock = ContinuousClock()
        let busyUntil = clock.now + .milliseconds(5)
        var spins = 0
        while clock.now < busyUntil { spins &+= 1 }
        usleep(40_000)
        let before = clock.now
        let rested = pace.restIfContended()
        #expect(rested > .zero, "\(spins) spins")
        #expect(clock.now - before >= rested)
    }
}

@Suite("Hashing thread: a caller cancelled while its hash waits")
struct HashingThreadCancellationTests {
    @Test func isAnsweredCancellationErrorAndItsHashIsNotComputed() async throws {
        // Every hashing thread busy until released.
        let threads = max(1, System.coreCount - 1)
        let release = DispatchSemaphore(value: 0)
        let started = DispatchSemaphore(value: 0)
        var blockers: [Task<Void, any Error>] = []
        for _ in 0..<threads {
            blockers.append(Task { try await PasswordHasher.onHashingThread { started.signal(); release.wait() } })
        }
        for _ in 0..<threads { started.wait() }
        let computed = CancellationFlag()
        let waiting = Task { try await PasswordHasher.onHashingThread { computed.set() } }
        try await Task.sleep(for: .milliseconds(50))
        waiting.cancel()
        for _ in 0..<threads { release.signal() }
        for blocker in blockers { try await blocker.value }
        await #expect(throws: CancellationError.self) { try await waiting.value }
        // A hash queued after it runs (the thread went on), and the cancelled one never did.
        try await PasswordHasher.onHashingThread {}
        #expect(!computed.isSet)
    }
}
