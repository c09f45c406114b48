import Foundation
import Synchronization

/// The live sessions this process has checked, so an authenticated request with a session
/// seen before runs one cheap statement (the transaction's scope) instead of the check.
///
/// Kept fresh the way `TenantDirectory` is: entries exist only while this process listens
/// on `atrium_tenancy`, where triggers name a tenant after any change to its sessions,
/// users, role grants or custom roles commits (migration 0019), and its entries are
/// dropped; a dropped listener empties the cache and stops caching until it is back. A
/// write through the kernel's own routes drops the tenant's entries in this process at
/// once, before its response is sent (`TenantMiddleware`), so a client never sees its own
/// logout or role change lag. An entry is served at most `maximumAge` after it was read
/// and never past the session's expiry.
public final class SessionCache: Sendable {
    /// What the request path needs of a live session.
    struct Session: Sendable {
        var tenantID: UUID
        var userID: UUID
        var permissions: Set<String>
        var expiresAt: Date
    }

    struct Entry {
        var session: Session
        var loadedAt: ContinuousClock.Instant
    }

    struct State {
        var entries: [UUID: Entry] = [:]
        var generation: UInt64 = 0
        var listening = false
    }

    private let state = Mutex(State())
    let maximumAge: Duration
    /// Entries kept at most; past it the cache starts over (a bound on memory, not a policy).
    let capacity: Int

    init(maximumAge: Duration, capacity: Int = 100_000) {
        self.maximumAge = maximumAge
        self.capacity = capacity
    }

    /// The cached session `id` of `userID` in `tenantID`, when it is fresh.
    func session(_ id: UUID, tenantID: UUID, userID: UUID, now: Date = Date()) -> Session? {
        let clock = ContinuousClock.now
        return state.withLock { state in
            guard state.listening, let entry = state.entries[id] else { return nil }
            guard entry.session.tenantID == tenantID, entry.session.userID == userID,
                entry.session.expiresAt > now, clock - entry.loadedAt < maximumAge
            else {
                state.entries[id] = nil
                return nil
            }
            return entry.session
        }
    }

    /// The generation to pass to `store` for a session about to be read from the database.
    var generation: UInt64 { state.withLock { $0.generation } }

    /// Keeps `session`, read after `generation` was taken, unless an invalidation came between.
    func store(_ id: UUID, _ session: Session, readAfter generation: UInt64) {
        let now = ContinuousClock.now
        state.withLock { state in
            guard state.listening, state.generation == generation else { return }
            if state.entries.count >= capacity { state.entries = [:] }
            state.entries[id] = Entry(session: session, loadedAt: now)
        }
    }

    /// Forgets every session of `tenantID`.
    func invalidate(tenantID: UUID) {
        state.withLock { state in
            state.generation &+= 1
            state.entries = state.entries.filter { $0.value.session.tenantID != tenantID }
        }
    }

    /// Forgets every session, and whether to cache at all.
    func reset(listening: Bool) {
        state.withLock { state in
            state.generation &+= 1
            state.entries = [:]
            state.listening = listening
        }
    }

    var count: Int { state.withLock { $0.entries.count } }
}
