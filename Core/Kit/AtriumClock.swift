public import Foundation
import Synchronization

/// Wall-clock time as modules read it: the system's in production, one a test moves
/// (`MovableClock`) to expire a signed link or reach a booking's reminder without sleeping.
public protocol AtriumClock: Sendable {
    var now: Date { get }
}

/// The system clock.
public struct SystemClock: AtriumClock {
    public init() {}
    public var now: Date { Date() }
}

/// A clock that moves only when told to.
public final class MovableClock: AtriumClock {
    private let current: Mutex<Date>

    public init(_ start: Date = Date()) {
        current = Mutex(start)
    }

    public var now: Date { current.withLock { $0 } }

    public func advance(by interval: TimeInterval) {
        current.withLock { $0 += interval }
    }

    public func set(_ date: Date) {
        current.withLock { $0 = date }
    }
}
