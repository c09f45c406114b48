import Foundation
import Synchronization

/// This process's realtime subscribers, fed by the one connection that LISTENs on
/// `atrium_events` (see `TenantDirectory.Listener`).
///
/// A notification names a tenant, a channel and an id, never data: each subscriber
/// loads what the id stands for in its own tenant transaction, under its own caller's
/// row-level security, so an event can never show a row its subscriber could not read.
/// Notifications are sent by PostgreSQL only when the notifying transaction commits.
public final class EventHub: Sendable {
    /// The PostgreSQL channel every realtime notification travels on.
    public static let channel = "atrium_events"

    /// What a subscriber's stream receives.
    enum Signal: Sendable, Equatable {
        case event(id: String)
        case heartbeat
    }

    struct Subscriber {
        var tenantID: UUID
        var channel: String
        var continuation: AsyncStream<Signal>.Continuation
    }

    private let subscribers = Mutex<[UUID: Subscriber]>([:])
    /// Signals a slow subscriber may have queued before the oldest are dropped (it then
    /// catches up with `Last-Event-ID` on its next connection).
    let bufferSize: Int

    public init(bufferSize: Int = 256) {
        self.bufferSize = bufferSize
    }

    public var subscriberCount: Int { subscribers.withLock { $0.count } }

    /// A stream of the events of `channel` in `tenantID`, ended by `cancel` or `closeAll`.
    func subscribe(tenantID: UUID, channel: String) -> (stream: AsyncStream<Signal>, subscription: Subscription) {
        let id = UUID()
        let (stream, continuation) = AsyncStream.makeStream(of: Signal.self, bufferingPolicy: .bufferingNewest(bufferSize))
        subscribers.withLock { $0[id] = Subscriber(tenantID: tenantID, channel: channel, continuation: continuation) }
        continuation.onTermination = { [weak self] _ in
            _ = self?.subscribers.withLock { $0.removeValue(forKey: id) }
        }
        return (stream, Subscription(continuation: continuation))
    }

    /// Delivers a notification's payload (`<tenant id> <channel> <id>`) to its subscribers.
    func deliver(payload: String) {
        let parts = payload.split(separator: " ", maxSplits: 2)
        guard parts.count == 3, let tenantID = UUID(uuidString: String(parts[0])) else { return }
        let channel = String(parts[1])
        let id = String(parts[2])
        let matching = subscribers.withLock { subscribers in
            subscribers.values.filter { $0.tenantID == tenantID && $0.channel == channel }.map(\.continuation)
        }
        for continuation in matching { continuation.yield(.event(id: id)) }
    }

    /// Ends every stream: when the listening connection is lost (notifications may have
    /// been missed, so clients reconnect and replay from `Last-Event-ID`) and on shutdown.
    func closeAll() {
        let all = subscribers.withLock { subscribers in
            defer { subscribers = [:] }
            return subscribers.values.map(\.continuation)
        }
        for continuation in all { continuation.finish() }
    }

    static func payload(tenantID: UUID, channel: String, id: String) -> String {
        "\(tenantID.uuidString.lowercased()) \(channel) \(id)"
    }

    struct Subscription: Sendable {
        let continuation: AsyncStream<Signal>.Continuation
        func heartbeat() { continuation.yield(.heartbeat) }
        func cancel() { continuation.finish() }
    }
}
