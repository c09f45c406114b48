import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Keeps a login storm from stalling everyone's reads: after a hash that had to wait for
/// the cores, the hashing thread rests before it takes the next.
///
/// A raised nice value was not enough. On a busy 2-core machine a hashing thread that is
/// runnable all the time (logins queued behind each other) stalls the event loops now
/// and then for 50–250 ms: `auth/me` p99 measured at 1–25× its quiet p99 during a storm,
/// alike at nice 0, nice 10 and in the idle scheduling class, and never with the same
/// logins made cheap to hash. A thread that goes idle between hashes leaves the
/// scheduler room to place the loops. It rests only after a hash that waited (wall time
/// well above its CPU time: something else wanted the cores), so an idle server still
/// hashes back to back at full speed, and a busy one gives logins at most a third of the
/// share of a core the loops leave them.
struct HashingPace {
    /// A hash whose wall time was more than this many times its CPU time waited.
    static let contention = 1.2
    /// How long a hash that waited rests, per unit of CPU time it took.
    static let restPerComputed = 2

    let wall: ContinuousClock.Instant
    let cpu: Duration?

    static func start() -> HashingPace {
        HashingPace(wall: .now, cpu: threadCPUTime())
    }

    /// How long to rest after a hash that took `computed` of CPU time in `elapsed`.
    static func rest(computed: Duration, elapsed: Duration) -> Duration {
        guard computed > .zero, elapsed > computed * contention else { return .zero }
        return computed * restPerComputed
    }

    /// Sleeps the calling (hashing) thread as `rest(computed:elapsed:)` says for the work
    /// done on it since `start`; returns how long it rested.
    @discardableResult
    func restIfContended() -> Duration {
        guard let before = cpu, let after = Self.threadCPUTime() else { return .zero }
        let rest = Self.rest(computed: after - before, elapsed: ContinuousClock.now - wall)
        guard rest > .zero else { return .zero }
        usleep(UInt32(clamping: rest.components.seconds * 1_000_000 + rest.components.attoseconds / 1_000_000_000_000))
        return rest
    }

    /// The CPU time the calling thread has used.
    ///
    /// Read into a pair of `Int`s (timespec's layout on 64-bit Linux: seconds, then
    /// nanoseconds) rather than through timespec's members: glibc's, Dispatch's and
    /// CoreFoundation's module maps each declare timespec, which of them "defines" it
    /// varies between builds, and under MemberImportVisibility a clean build refused its
    /// members for want of whichever module it picked that time.
    static func threadCPUTime() -> Duration? {
        guard MemoryLayout<timespec>.size == MemoryLayout<(Int, Int)>.size else { return nil }
        var time = (seconds: 0, nanoseconds: 0)
        let status = withUnsafeMutablePointer(to: &time) { pointer in
            pointer.withMemoryRebound(to: timespec.self, capacity: 1) { clock_gettime(CLOCK_THREAD_CPUTIME_ID, $0) }
        }
        guard status == 0 else { return nil }
        return .seconds(time.seconds) + .nanoseconds(time.nanoseconds)
    }
}

/// Set once when the task waiting for a hash is cancelled; read by the hashing thread.
final class CancellationFlag: Sendable {
    private let flag = Atomic<Bool>(false)

    var isSet: Bool { flag.load(ordering: .acquiring) }

    func set() { flag.store(true, ordering: .releasing) }
}
