@testable import AtriumCore
import Foundation
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
        let clock = ContinuousClock()
        let busyUntil = clock.now + .milliseconds(30)
        var spins = 0
        while clock.now < busyUntil { spins &+= 1 }
        let worked = try #require(HashingPace.threadCPUTime()) - start - slept
        #expect(worked > .milliseconds(5), "spinning 30 ms of wall time used \(worked) of CPU (\(spins) spins)")
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
