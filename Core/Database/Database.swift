public import Foundation
public import Logging
public import PostgresNIO
import NIOPosix
import ServiceLifecycle

/// The kernel's access to PostgreSQL as the application role.
///
/// The application role owns no table and cannot bypass row-level security, so every
/// tenant-owned row it reads or writes goes through a transaction that has set
/// `app.tenant_id` transaction-locally: a pooled connection never carries one tenant's
/// setting into another tenant's request.
public struct Database: Sendable {
    /// The pool of work that runs off the server's event loops: jobs, listeners, the CLI.
    let shared: PostgresClient
    /// One pool per event loop of the HTTP server, whose connections live on that loop.
    let loopPools: [LoopPool]
    /// The pool of bulk work (imports), whose connections live on `BackgroundLane`'s
    /// thread; nil where none was made (a pool a test gives, the CLI).
    let background: BackgroundPool?
    /// The connections of authenticated requests, whose `BEGIN` goes with the first
    /// statement, over the socket or TCP, with or without TLS; nil only where none was made
    /// (a pool a caller gives, the CLI's): requests then take `client` and send `BEGIN` alone.
    let requests: RequestConnectionPool?
    /// The pools' connection limit, reported in `/metrics`.
    public let maximumConnections: Int

    struct LoopPool: Sendable {
        let eventLoop: any EventLoop
        let client: PostgresClient
    }

    struct BackgroundPool: Sendable {
        let client: PostgresClient
        /// Set for the embedded cluster, whose backends this process can renice.
        let backends: BackendPriority?
        /// What bulk work may hold of the pool: all but one connection.
        let bulk: BulkPermits
    }

    public init(client: PostgresClient, maximumConnections: Int = 20) {
        self.init(shared: client, loopPools: [], background: nil, maximumConnections: maximumConnections)
    }

    init(shared: PostgresClient, loopPools: [LoopPool], background: BackgroundPool?, requests: RequestConnectionPool? = nil, maximumConnections: Int) {
        self.shared = shared
        self.loopPools = loopPools
        self.background = background
        self.requests = requests
        self.maximumConnections = maximumConnections
    }

    /// The pool to take a connection from: on one of the server's event loops, the pool
    /// whose connections live on that loop, so a request's statements are written and
    /// answered on the thread it already runs on (see `LoopBoundChildChannel`); anywhere
    /// else, the shared pool.
    public var client: PostgresClient {
        if !loopPools.isEmpty, let loop = MultiThreadedEventLoopGroup.currentEventLoop {
            for pool in loopPools where pool.eventLoop === loop { return pool.client }
        }
        return shared
    }

    /// Runs `body` in one transaction scoped to `tenantID` by row-level security.
    @discardableResult
    public func withTenantTransaction<Result>(
        _ tenantID: UUID,
        logger: Logger,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        try await client.withConnection(isolation: isolation) { connection in
            try await connection.withTenantTransaction(tenantID, logger: logger, isolation: isolation, body)
        }
    }

    /// Runs `body` in one transaction scoped to `tenantID`, acting as `principal`
    /// (`app.principal_id`, which owner-scoped module tables read).
    @discardableResult
    public func withTenantTransaction<Result>(
        _ tenantID: UUID,
        principal: UUID?,
        logger: Logger,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        try await client.withConnection(isolation: isolation) { connection in
            try await connection.withTenantTransaction(tenantID, principal: principal, logger: logger, isolation: isolation, body)
        }
    }

    /// Runs `body` in one transaction that sees platform-scoped rows (the job queue)
    /// across tenants. Only the kernel's own cross-tenant machinery uses it.
    @discardableResult
    public func withPlatformTransaction<Result>(
        logger: Logger,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        try await client.withConnection(isolation: isolation) { connection in
            try await connection.withPlatformTransaction(logger: logger, isolation: isolation, body)
        }
    }

    /// Runs `body` in a transaction with no tenant set: only platform tables are visible.
    @discardableResult
    public func withTransaction<Result>(
        logger: Logger,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        try await client.withConnection(isolation: isolation) { connection in
            try await connection.withUnwrappedTransaction(logger: logger, isolation: isolation, body)
        }
    }
}

extension Database {
    /// The pools of an `atrium serve` process, split as `budget` says: a shared one, and
    /// two per event loop of `MultiThreadedEventLoopGroup.singleton` (the loops the HTTP
    /// server runs on), one for authenticated requests and one for the rest. Whoever runs
    /// them runs `clients` (first, so that they close last). Bulk work gets a pool of its
    /// own on `BackgroundLane`'s thread (see `withBackgroundConnection`), whose backends
    /// are niced when they are `embedded`'s.
    static func pooled(_ url: DatabaseURL, budget: ConnectionBudget, embedded: EmbeddedPostgres? = nil, logger: Logger) throws(ConfigurationError)
        -> Database
    {
        let loops = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())
        let requests = try RequestConnectionPool(url: url, connectionsPerLoop: budget.perLoop, eventLoops: loops, logger: logger)
        let perLoopConfiguration = try url.clientConfiguration(maximumConnections: budget.perLoop)
        let loopPools = loops.map { loop in
            LoopPool(eventLoop: loop, client: PostgresClient(configuration: perLoopConfiguration, eventLoopGroup: loop, backgroundLogger: logger))
        }
        let background = BackgroundPool(
            client: PostgresClient(
                configuration: try url.clientConfiguration(maximumConnections: budget.background), eventLoopGroup: BackgroundLane.eventLoop,
                backgroundLogger: logger),
            backends: embedded.map { BackendPriority(cluster: $0) }, bulk: BulkPermits(connections: budget.background))
        return Database(
            shared: PostgresClient(configuration: try url.clientConfiguration(maximumConnections: budget.shared), backgroundLogger: logger),
            loopPools: loopPools, background: background, requests: requests, maximumConnections: budget.total)
    }

    /// Pools of `size` shared connections and `size / loops` (at least two) per loop and
    /// kind: for tests that want small pools of a known shape.
    static func pooled(_ url: DatabaseURL, size: Int, backgroundSize: Int = 4, embedded: EmbeddedPostgres? = nil, logger: Logger) throws(ConfigurationError)
        -> Database
    {
        let loops = serverLoopCount
        return try pooled(
            url, budget: ConnectionBudget(shared: size, perLoop: max(2, size / max(1, loops)), background: backgroundSize, loops: loops),
            embedded: embedded, logger: logger)
    }

    /// The event loops the HTTP server runs on (`MultiThreadedEventLoopGroup.singleton`),
    /// each of which gets pools of its own.
    static var serverLoopCount: Int { MultiThreadedEventLoopGroup.singleton.makeIterator().map { _ in 1 }.count }

    /// This database without its event-loop pools: for what a request runs while it holds
    /// a connection of its loop's pool (the shared rate limiter's check, a reload of the
    /// signing keys while a token is verified). Taken from the shared pool, such a second
    /// connection never waits behind requests that hold the loop's connections and wait
    /// for it: a pool of holders waiting on each other would never drain.
    var sharedPoolOnly: Database {
        Database(shared: shared, loopPools: [], background: background, maximumConnections: maximumConnections)
    }

    /// Every pool, the shared one first.
    var clients: [PostgresClient] { [shared] + loopPools.map(\.client) + (background.map { [$0.client] } ?? []) }

    /// What runs the pools: `clients`, then the request connections' pool.
    var services: [any Service] { clients + (requests.map { [$0] } ?? []) }

    /// Runs `body` with the connection an authenticated request runs on: one of the
    /// request pool's, whose `BEGIN` travels with the next statement, or else one of
    /// `client`'s.
    func withRequestConnection<Result>(
        isolation: isolated (any Actor)? = #isolation, _ body: (RequestLease) async throws -> sending Result
    ) async throws -> sending Result {
        if let requests {
            return try await requests.withConnection(isolation: isolation) { pooled in
                try await body(RequestLease(connection: pooled.connection, pipelined: pooled))
            }
        }
        return try await client.withConnection(isolation: isolation) { connection in
            try await body(RequestLease(connection: connection, pipelined: nil))
        }
    }

    /// Runs `body` behind the request path (`BackgroundLane`): on the background thread,
    /// with a connection of the background pool whose backend is niced when it is the
    /// embedded cluster's. What `body` runs on `self` meanwhile (side writes such as an
    /// import's progress) takes the shared pool as usual. Without a background pool,
    /// `body` gets a connection of the shared pool at normal priority.
    ///
    /// `bulk` work (an import, holding its connection for minutes) takes one of the pool's
    /// `BulkPermits` first, so it never holds the last connection a report read needs.
    func withBackgroundConnection<Result: Sendable>(
        logger: Logger, bulk: Bool = true, isolation: isolated (any Actor)? = #isolation, _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        guard let background else { return try await shared.withConnection(isolation: isolation) { connection in try await body(connection) } }
        func run() async throws -> Result {
            try await EventLoopTaskExecutor.run(on: BackgroundLane.eventLoop, isolation: isolation) {
                try await background.client.withConnection(isolation: isolation) { connection in
                    await background.backends?.lower(connection, logger: logger)
                    return try await body(connection)
                }
            }
        }
        guard bulk else { return try await run() }
        return try await background.bulk.withPermit(isolation: isolation) { try await run() }
    }
}

/// A request's connection and how its transaction opens.
struct RequestLease: Sendable {
    let connection: PostgresConnection
    let pipelined: RequestConnection?

    /// The lease of the request this task serves, while the tenant middleware holds it:
    /// how `scopeTransaction` and `scopeToAllOwners` find the `BEGIN` their settings can
    /// travel with.
    @TaskLocal static var current: RequestLease?

    /// Makes `settings` transaction-locally with the pipelined `BEGIN`, when it has not
    /// gone yet; false otherwise.
    func setLocallyWithBegin(_ settings: [(name: String, value: String)]) -> Bool {
        pipelined?.setLocallyWithBegin(settings) ?? false
    }

    /// Sends `statement` in front of the connection's next write where it pipelines; false
    /// where it does not (the caller runs it itself).
    func sendWithNextWrite(_ statement: PrefixedStatement) -> Bool {
        pipelined?.sendWithNextWrite(statement) ?? false
    }

    /// Whether statements wait for the connection's next write.
    var hasDeferredStatements: Bool {
        pipelined?.hasDeferredStatements ?? false
    }

    /// Drops the statements waiting for the connection's next write.
    func discardDeferred() {
        pipelined?.discardDeferred()
    }

    /// Takes back a pipelined `BEGIN` no statement followed: true when there was one.
    func withdrawUnsentBegin() -> Bool {
        pipelined?.withdrawUnsentBegin() ?? false
    }

    /// Sends `COMMIT` behind the next statement where the connection pipelines; nil where
    /// it does not (the caller commits as usual).
    func commitAfterNextStatement() -> EventLoopFuture<Void>? {
        pipelined?.commitAfterNextStatement()
    }

    /// Whether anything of the request reached the connection: false only where it is
    /// known that nothing did (so no statement of the request ran).
    var sentStatement: Bool {
        pipelined?.wroteSinceLease ?? true
    }

    /// Takes back a pipelined `COMMIT` no statement carried.
    func withdrawUnsentCommit() {
        pipelined?.withdrawUnsentCommit()
    }

    /// Opens the request's transaction: with the next statement where the connection
    /// pipelines `BEGIN`, else as a statement of its own.
    func begin(logger: Logger) async throws {
        if let pipelined {
            pipelined.beginWithNextStatement()
        } else {
            try await TransactionControl.begin(on: connection, logger: logger)
        }
    }
}
