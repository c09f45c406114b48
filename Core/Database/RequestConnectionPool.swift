import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The connections authenticated requests run on: one small pool per event loop of the
/// HTTP server, whose connections carry a `PipelinedBeginHandler`, so that a request's
/// `BEGIN` travels with its first statement (see `TenantMiddleware`).
///
/// PostgresNIO's own pool makes its connections itself and gives no way into their
/// channels, so this pool makes them: it opens the socket, adds the handler and hands the
/// channel to `PostgresConnection.connect`. It is only as much pool as the request path
/// needs — connections made on demand up to a limit, handed out last-in first-out,
/// waiters served in order, closed ones dropped.
///
/// Over TLS the driver negotiates it as usual (`SSLRequest`, then its TLS handler in front
/// of its own); once the connection is up, the pipelining handler goes on the plaintext
/// side of the TLS handler, so the request path is the same over TLS as over the socket.
final class RequestConnectionPool: Service, Sendable {
    let counters = PipelineCounters()
    private let pools: [LoopPool]
    /// A fault for the next lease's connection (`injectFaultIntoNextLease`): 0 for none,
    /// else `InjectedFault`'s raw value + 1.
    private let pendingFault = Atomic<Int>(0)

    /// Makes the connection the next lease takes die at its first write, before or after
    /// it: how tests reach the request path's answers to a lost database (a retry on a
    /// fresh connection, or 503). Costs each lease one atomic exchange.
    func injectFaultIntoNextLease(_ fault: PipelinedBeginHandler.InjectedFault) {
        pendingFault.store(fault == .beforeNextWrite ? 1 : 2, ordering: .relaxed)
    }

    /// How long a connection may sit unused before the pool closes it. A burst opens up
    /// to the limit; without this the backends it left (a process and its memory each in
    /// PostgreSQL) would stay for the life of the server, and a connection whose peer went
    /// away unannounced (a restarted database, a dropped NAT entry) would wait to fail a
    /// request instead of being replaced quietly.
    static let defaultIdleTimeout: TimeAmount = .minutes(5)

    /// nil when there is no loop to serve. Throws when `url`'s TLS settings cannot be
    /// made into a TLS context (an unreadable certificate file).
    init?(
        url: DatabaseURL, connectionsPerLoop: Int, eventLoops: [any EventLoop], idleTimeout: TimeAmount = defaultIdleTimeout, logger: Logger
    ) throws(ConfigurationError) {
        guard !eventLoops.isEmpty else { return nil }
        let counters = counters
        let tls = url.socketDirectory == nil ? try url.tls.connectionTLS() : .disable
        pools = eventLoops.map {
            LoopPool(
                eventLoop: $0, url: url, tls: tls, maximum: max(1, connectionsPerLoop), idleTimeout: idleTimeout, counters: counters, logger: logger)
        }
    }

    /// Leases handed out: with `counters.roundTrips`, the round trips per request.
    var leases: Int { pools.reduce(0) { $0 + $1.leases } }
    /// Leases waiting for a connection, for tests that must know a waiter is queued.
    var waiting: Int { pools.reduce(0) { $0 + $1.waiting } }
    /// What `/metrics` last reported, to add only what came after.
    private let reported = Mutex((roundTrips: 0, leases: 0, syncCommits: 0, retries: 0))

    /// Round trips, leases, transactions committed by their `Sync` and requests run again
    /// since the last call, for `/metrics`' counters.
    func unreportedCounts() -> (roundTrips: Int, leases: Int, syncCommits: Int, retries: Int) {
        reported.withLock { last in
            let now = (roundTrips: counters.roundTrips, leases: leases, syncCommits: counters.syncCommits, retries: counters.requestRetries)
            defer { last = now }
            return (
                now.roundTrips - last.roundTrips, now.leases - last.leases, now.syncCommits - last.syncCommits, now.retries - last.retries
            )
        }
    }

    /// Runs `body` with a connection of the current event loop's pool (off the loops, of a
    /// loop picked at random), and takes it back after.
    func withConnection<Result>(
        isolation: isolated (any Actor)? = #isolation, _ body: (RequestConnection) async throws -> sending Result
    ) async throws -> sending Result {
        let pool = self.pool(for: MultiThreadedEventLoopGroup.currentEventLoop)
        let connection = try await pool.lease()
        let fault = pendingFault.exchange(0, ordering: .relaxed)
        do {
            if fault != 0 {
                try await connection.connection.eventLoop.submit { connection.injectFault(fault == 1 ? .beforeNextWrite : .afterNextWrite) }.get()
            }
            let result = try await body(connection)
            await pool.release(connection)
            return result
        } catch {
            // A connection that died may not know it yet (over TLS its close waits for the
            // server's close_notify): it is dropped, never handed to the next request.
            await pool.release(connection, broken: DatabaseAvailability.isLost(error))
            throw error
        }
    }

    private func pool(for loop: (any EventLoop)?) -> LoopPool {
        if let loop, let pool = pools.first(where: { $0.eventLoop === loop }) { return pool }
        return pools[Int.random(in: 0..<pools.count)]
    }

    /// Waits for a graceful shutdown (or cancellation), then closes every connection:
    /// idle ones at once, leased ones when they come back.
    func run() async throws {
        try? await gracefulShutdown()
        for pool in pools { await pool.close() }
    }
}

/// The request connections' pool has closed (the server is stopping).
struct RequestPoolClosed: Error, CustomStringConvertible {
    var description: String { "the request connection pool is closed" }
}

/// A pooled connection of a request, with its `BEGIN` pipelining.
struct RequestConnection: Sendable {
    let connection: PostgresConnection
    fileprivate let handler: NIOLoopBoundBox<PipelinedBeginHandler>
    /// The connection's channel (the driver keeps its own to itself), for tests that watch
    /// what goes over it.
    let channel: any Channel

    /// The connection's next statement opens a transaction: `BEGIN` goes with it in one
    /// write. Called on the connection's event loop.
    func beginWithNextStatement() {
        handler.value.arm()
    }

    /// Makes `settings` transaction-locally in the transaction `beginWithNextStatement`
    /// opens, in the same write. False when that `BEGIN` has gone already (or this is not
    /// the connection's event loop): the caller then runs its own statement.
    func setLocallyWithBegin(_ settings: [(name: String, value: String)]) -> Bool {
        guard connection.eventLoop.inEventLoop else { return false }
        return handler.value.setWithNextStatement(settings)
    }

    /// Sends `statement` in front of the connection's next write, in the same `Sync` group.
    /// False off the connection's event loop (the caller then runs it itself).
    func sendWithNextWrite(_ statement: PrefixedStatement) -> Bool {
        guard connection.eventLoop.inEventLoop else { return false }
        handler.value.sendWithNextWrite(statement)
        return true
    }

    /// Whether statements wait for the connection's next write; true where that cannot be
    /// known (off the connection's event loop).
    var hasDeferredStatements: Bool {
        guard connection.eventLoop.inEventLoop else { return true }
        return handler.value.hasDeferredStatements
    }

    /// Drops the statements waiting for the connection's next write.
    func discardDeferred() {
        guard connection.eventLoop.inEventLoop else {
            let handler = handler
            connection.eventLoop.execute { handler.value.discardDeferred() }
            return
        }
        handler.value.discardDeferred()
    }

    /// Takes back a `BEGIN` no statement followed: true when there was one, and the
    /// transaction it would have opened needs neither `COMMIT` nor `ROLLBACK`. Also ends a
    /// transaction whose `COMMIT` went with its last statement: statements may follow again.
    func withdrawUnsentBegin() -> Bool {
        guard connection.eventLoop.inEventLoop else { return false }
        return handler.value.disarm()
    }

    /// Sends `COMMIT` behind the connection's next statement, in the same write; the
    /// future tells how PostgreSQL answered it (`PipelinedBeginHandler.CommitOutcome`).
    /// nil off the connection's event loop, or when one is already on its way.
    func commitAfterNextStatement() -> EventLoopFuture<Void>? {
        guard connection.eventLoop.inEventLoop else { return nil }
        let promise = connection.eventLoop.makePromise(of: Void.self)
        guard handler.value.commitAfterNextStatement(promise) else {
            promise.fail(PipelinedBeginHandler.CommitOutcome.notSent)
            return nil
        }
        return promise.futureResult
    }

    /// Whether anything was written to the connection since it was taken from the pool;
    /// true where that cannot be known (off the connection's event loop).
    var wroteSinceLease: Bool {
        guard connection.eventLoop.inEventLoop else { return true }
        return handler.value.wroteSinceReturned
    }

    /// Makes the connection die at its next write, before it (a connection whose server
    /// went away while it sat in the pool) or just after it (a server that went away while
    /// the statement ran): how tests reach the request path's answers to a lost database.
    /// Called on the connection's event loop.
    func injectFault(_ fault: PipelinedBeginHandler.InjectedFault) {
        handler.value.injectedFault = fault
    }

    /// Takes back a `COMMIT` that no statement carried: its future fails with `.notSent`
    /// (on the connection's event loop, so a caller that left it still gets its answer).
    func withdrawUnsentCommit() {
        guard connection.eventLoop.inEventLoop else {
            let handler = handler
            connection.eventLoop.execute { handler.value.withdrawUnsentCommit() }
            return
        }
        handler.value.withdrawUnsentCommit()
    }
}

/// One event loop's connections. The state is behind a lock that is never held across an
/// await: lease and release touch it briefly on their way.
private final class LoopPool: Sendable {
    let eventLoop: any EventLoop
    private let url: DatabaseURL
    private let tls: PostgresConnection.Configuration.TLS
    private let maximum: Int
    private let counters: PipelineCounters
    private let logger: Logger
    private let idleTimeout: TimeAmount
    private let state = Mutex(State())
    private let leaseCount = Atomic<Int>(0)
    /// The sweep that closes connections idle past `idleTimeout`, until the pool closes.
    private let sweep = Mutex<RepeatedTask?>(nil)

    struct Idle {
        var connection: RequestConnection
        var since: NIODeadline
    }

    struct State {
        /// Oldest first: leases take the newest, so the oldest are the ones left unused.
        var idle: [Idle] = []
        /// Connections made or being made, leased or idle.
        var open = 0
        var waiters: [(id: Int, continuation: CheckedContinuation<RequestConnection?, any Error>)] = []
        var nextID = 0
        var closed = false
    }

    init(
        eventLoop: any EventLoop, url: DatabaseURL, tls: PostgresConnection.Configuration.TLS, maximum: Int, idleTimeout: TimeAmount,
        counters: PipelineCounters, logger: Logger
    ) {
        self.eventLoop = eventLoop
        self.url = url
        self.tls = tls
        self.maximum = maximum
        self.idleTimeout = idleTimeout
        self.counters = counters
        self.logger = logger
        let every = max(TimeAmount.nanoseconds(idleTimeout.nanoseconds / 2), .milliseconds(10))
        let task = eventLoop.scheduleRepeatedTask(initialDelay: every, delay: every) { [weak self] task in
            guard let self else { return task.cancel() }
            self.closeIdleConnections()
        }
        sweep.withLock { $0 = task }
    }

    /// Closes the connections unused for longer than `idleTimeout`; the next lease past the
    /// idle ones makes a new one. Each is out of the idle list before it closes, so no
    /// lease can take it; a waiter (there is none while connections sit idle) would get
    /// the freed slot.
    private func closeIdleConnections() {
        let cutoff = NIODeadline.now() - idleTimeout
        let (expired, waiters) = state.withLock { state -> ([RequestConnection], [CheckedContinuation<RequestConnection?, any Error>]) in
            let expired = state.idle.prefix { $0.since <= cutoff }.map(\.connection)
            state.idle.removeFirst(expired.count)
            state.open -= expired.count
            let waiters = state.waiters.prefix(expired.count).map(\.continuation)
            state.waiters.removeFirst(waiters.count)
            return (expired, waiters)
        }
        guard !expired.isEmpty else { return }
        logger.debug("closing idle request connections", metadata: ["db.connections": "\(expired.count)"])
        for waiter in waiters { waiter.resume(returning: nil) }
        for connection in expired { connection.connection.close().whenComplete { _ in } }
    }

    var leases: Int { leaseCount.load(ordering: .relaxed) }
    var waiting: Int { state.withLock { $0.waiters.count } }

    enum Step {
        case use(RequestConnection)
        case connect(id: Int)
        case wait
    }

    func lease() async throws -> RequestConnection {
        leaseCount.wrappingAdd(1, ordering: .relaxed)
        while true {
            let step = try state.withLock { state throws -> Step in
                if state.closed { throw RequestPoolClosed() }
                while let connection = state.idle.popLast()?.connection {
                    if !connection.connection.isClosed { return .use(connection) }
                    state.open -= 1  // closed while idle (the server went away): dropped
                }
                if state.open < maximum {
                    state.open += 1
                    state.nextID += 1
                    return .connect(id: state.nextID)
                }
                return .wait
            }
            switch step {
            case .use(let connection):
                return connection
            case .connect(let id):
                do {
                    return try await connect(id: id)
                } catch {
                    slotFreed()
                    throw error
                }
            case .wait:
                // nil: a slot was freed rather than a connection handed over; try again.
                if let connection = try await waitForRelease() { return connection }
            }
        }
    }

    private func waitForRelease() async throws -> RequestConnection? {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<RequestConnection?, any Error>) in
                enum Now {
                    case wait, retry, cancelled, closed
                }
                let now = state.withLock { state -> Now in
                    if state.closed { return .closed }
                    if Task.isCancelled { return .cancelled }
                    if !state.idle.isEmpty || state.open < maximum { return .retry }
                    state.waiters.append((id, continuation))
                    return .wait
                }
                switch now {
                case .wait: break
                case .retry: continuation.resume(returning: nil)
                case .cancelled: continuation.resume(throwing: CancellationError())
                case .closed: continuation.resume(throwing: RequestPoolClosed())
                }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<RequestConnection?, any Error>? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index).continuation
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    /// Takes a connection back: to the first waiter, else to the idle list; a closed or
    /// `broken` one (or any, once the pool is closed) is dropped and its slot freed.
    func release(_ connection: RequestConnection, broken: Bool = false) async {
        if eventLoop.inEventLoop {
            connection.handler.value.returnedToPool()
        } else {
            try? await eventLoop.submit { connection.handler.value.returnedToPool() }.get()
        }
        enum Next {
            case handedOver(CheckedContinuation<RequestConnection?, any Error>)
            case kept
            case drop
        }
        let next = state.withLock { state -> Next in
            if broken || state.closed || connection.connection.isClosed { return .drop }
            if !state.waiters.isEmpty { return .handedOver(state.waiters.removeFirst().continuation) }
            state.idle.append(Idle(connection: connection, since: .now()))
            return .kept
        }
        switch next {
        case .handedOver(let waiter):
            waiter.resume(returning: connection)
        case .kept:
            break
        case .drop:
            try? await connection.connection.close()
            slotFreed()
        }
    }

    /// A connection that failed to open or was dropped: its slot goes to the first waiter.
    private func slotFreed() {
        let waiter = state.withLock { state -> CheckedContinuation<RequestConnection?, any Error>? in
            state.open -= 1
            return state.waiters.isEmpty ? nil : state.waiters.removeFirst().continuation
        }
        waiter?.resume(returning: nil)
    }

    private func connect(id: Int) async throws -> RequestConnection {
        let bootstrap = ClientBootstrap(group: eventLoop).connectTimeout(.seconds(5))
        let channel: any Channel
        if let directory = url.socketDirectory {
            channel = try await bootstrap.connect(unixDomainSocketPath: "\(directory)/.s.PGSQL.\(url.port)").get()
        } else {
            // Keepalive probes find a peer that vanished without closing (a NAT entry dropped).
            channel = try await bootstrap.channelOption(.tcpOption(.tcp_nodelay), value: 1).channelOption(.socketOption(.so_keepalive), value: 1)
                .connect(host: url.host, port: url.port).get()
        }
        var configuration = PostgresConnection.Configuration(
            establishedChannel: channel, tls: tls, username: url.username, password: url.password, database: url.database)
        configuration.options.tlsServerName = url.tlsServerName
        do {
            let connection = try await PostgresConnection.connect(on: eventLoop, configuration: configuration, id: id, logger: logger)
            do {
                let handler = try await eventLoop.submit {
                    let handler = PipelinedBeginHandler(counters: self.counters)
                    try Self.addPipelining(handler, to: channel.pipeline.syncOperations)
                    return NIOLoopBoundBox(handler, eventLoop: self.eventLoop)
                }.get()
                return RequestConnection(connection: connection, handler: handler, channel: channel)
            } catch {
                try? await connection.close()
                throw error
            }
        } catch {
            try? await channel.close()
            throw error
        }
    }

    /// Puts the pipelining handler where it reads and writes PostgreSQL's plaintext
    /// messages: right behind the TLS handler the driver added, or first of all where
    /// there is none (the socket, `sslmode=disable`, a server that refused TLS under
    /// `prefer`). Done once the connection has started up, when nothing is in flight.
    static func addPipelining(_ handler: PipelinedBeginHandler, to pipeline: ChannelPipeline.SynchronousOperations) throws {
        if let tls = try? pipeline.handler(type: NIOSSLClientHandler.self) {
            try pipeline.addHandler(handler, position: .after(tls))
        } else {
            try pipeline.addHandler(handler, position: .first)
        }
    }

    func close() async {
        sweep.withLock { $0?.cancel() }
        let (idle, waiters) = state.withLock { state in
            state.closed = true
            defer {
                state.open -= state.idle.count
                state.idle = []
                state.waiters = []
            }
            return (state.idle, state.waiters.map(\.continuation))
        }
        for waiter in waiters { waiter.resume(throwing: RequestPoolClosed()) }
        for idle in idle { try? await idle.connection.connection.close() }
    }
}
