public import Foundation
public import Logging
import PostgresNIO
public import ServiceLifecycle
import Synchronization

/// A tenant as the request path needs it: its row and the modules it has enabled.
public struct TenantSnapshot: Sendable, Equatable {
    public var tenant: Tenant
    public var modules: Set<String>
}

/// Resolves `/v1/tenants/{slug}` from memory, so a request pays no round trip for its
/// tenant; its `sessions` do the same for the sessions of access tokens.
///
/// Entries are kept only while this process is listening on `atrium_tenancy` (see
/// `TenantDirectory.Listener`): a trigger on `tenants` and `tenant_modules` names every
/// changed tenant after its transaction commits, and the entry is dropped. When the
/// listening connection drops, the cache is emptied and every lookup reads the database
/// until the listener is back (and reloads), so an entry is never older than the last
/// notification this process could have received. As a second bound, entries are reread
/// after `maximumAge` even while listening.
public final class TenantDirectory: Sendable {
    struct Entry {
        var snapshot: TenantSnapshot
        var loadedAt: ContinuousClock.Instant
    }

    struct State {
        var entries: [String: Entry] = [:]
        /// Moves on every invalidation, so a load that raced one is not cached.
        var generation: UInt64 = 0
        var listening = false
    }

    let state = Mutex(State())
    let logger: Logger
    /// How long an entry is trusted while listening, as a bound on a lost notification.
    public let maximumAge: Duration
    /// The live sessions checked in this process, fresh by the same notifications.
    public let sessions: SessionCache

    public init(logger: Logger, maximumAge: Duration = .seconds(60)) {
        self.logger = logger
        self.maximumAge = maximumAge
        self.sessions = SessionCache(maximumAge: maximumAge)
    }

    /// The tenant named `slug`, or nil when there is none.
    public func tenant(slug: String, database: Database) async throws -> TenantSnapshot? {
        let now = ContinuousClock.now
        let (cached, generation) = state.withLock { state -> (TenantSnapshot?, UInt64) in
            guard state.listening, let entry = state.entries[slug], now - entry.loadedAt < maximumAge else { return (nil, state.generation) }
            return (entry.snapshot, state.generation)
        }
        if let cached { return cached }
        let loaded = try await load(slug: slug, database: database)
        if let loaded {
            state.withLock { state in
                if state.listening, state.generation == generation { state.entries[slug] = Entry(snapshot: loaded, loadedAt: now) }
            }
        }
        return loaded
    }

    /// Forgets `tenantID` and its sessions, after a change to it (its modules, sessions,
    /// users or roles) committed.
    public func invalidate(tenantID: UUID) {
        state.withLock { state in
            state.generation &+= 1
            state.entries = state.entries.filter { $0.value.snapshot.tenant.id != tenantID }
        }
        sessions.invalidate(tenantID: tenantID)
    }

    /// Forgets every tenant, and whether to cache at all: while `listening` is false,
    /// every lookup reads the database.
    func reset(listening: Bool) {
        state.withLock { state in
            state.generation &+= 1
            state.entries = [:]
            state.listening = listening
        }
        sessions.reset(listening: listening)
    }

    /// Whether entries are being cached (the listener is connected).
    public var isListening: Bool { state.withLock { $0.listening } }

    private func load(slug: String, database: Database) async throws -> TenantSnapshot? {
        // One statement in its own implicit transaction: atrium_tenant_by_slug reads the
        // modules in platform scope and restores the scope before it returns.
        let rows = try await database.client.withConnection { connection in
            try await connection.query(
                "SELECT id, slug, name, status, plan, created_at, updated_at, modules FROM atrium_tenant_by_slug(\(slug))", logger: logger
            ).collect()
        }
        guard let row = rows.first else { return nil }
        let (id, foundSlug, name, status, plan, created, updated, modules) = try row.decode(
            (UUID, String, String, String, String, Date, Date, [String]).self)
        guard let status = Tenant.Status(rawValue: status) else { throw AtriumError.internalError() }
        return TenantSnapshot(
            tenant: Tenant(id: id, slug: foundSlug, name: name, status: status, plan: plan, createdAt: created, updatedAt: updated),
            modules: Set(modules))
    }
}

extension TenantDirectory {
    /// Keeps a `TenantDirectory` fresh and feeds realtime subscribers: one pooled
    /// connection LISTENs on `atrium_tenancy` and `atrium_events` for as long as the
    /// process runs; a lost connection is re-established within a second, the tenant
    /// cache is emptied both when it drops and when it is back, and event streams are
    /// ended when it drops (their clients reconnect and replay what they missed).
    public struct Listener: Service {
        public static let channel = "atrium_tenancy"
        let directory: TenantDirectory
        let database: Database
        let events: EventHub?
        let retryDelay: Duration

        public init(directory: TenantDirectory, database: Database, events: EventHub? = nil, retryDelay: Duration = .seconds(1)) {
            self.directory = directory
            self.database = database
            self.events = events
            self.retryDelay = retryDelay
        }

        public func run() async throws {
            let logger = directory.logger
            let directory = directory
            let events = events
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                do {
                    try await cancelWhenGracefulShutdown {
                        try await database.client.withConnection { connection in
                            try await withThrowingTaskGroup(of: Void.self) { group in
                                group.addTask {
                                    try await connection.listen(on: Self.channel) { notifications in
                                        directory.reset(listening: true)
                                        logger.debug("listening for tenant changes")
                                        for try await notification in notifications {
                                            if let id = UUID(uuidString: notification.payload) {
                                                directory.invalidate(tenantID: id)
                                            } else {
                                                directory.reset(listening: true)
                                            }
                                        }
                                    }
                                }
                                if let events {
                                    group.addTask {
                                        try await connection.listen(on: EventHub.channel) { notifications in
                                            for try await notification in notifications { events.deliver(payload: notification.payload) }
                                        }
                                    }
                                }
                                // Either listen ending means the connection is gone: stop both.
                                try await group.next()
                                group.cancelAll()
                            }
                        }
                    }
                } catch {
                    if Task.isShuttingDownGracefully || Task.isCancelled { break }
                    logger.warning("tenant change listener lost; tenants are read from the database until it is back",
                                   metadata: ["error": "\(String(reflecting: error))"])
                }
                directory.reset(listening: false)
                events?.closeAll()
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: retryDelay) }
            }
            directory.reset(listening: false)
            events?.closeAll()
        }
    }
}
