import NIOCore
import Synchronization

/// Sends a request's `BEGIN`, its transaction-local scope and its `COMMIT` in the same
/// write as its statements, so that a transaction of one statement costs one round trip
/// and PostgreSQL answers it in one packet.
///
/// PostgresNIO sends each statement as its own message sequence, ending in `Sync`, and
/// waits for its `ReadyForQuery` before it writes the next. This handler sits between the
/// socket and the driver's handler. Once armed, it puts messages of its own in front of
/// the driver's next write, and on the way back it takes their replies out of the byte
/// stream before the driver sees them: the driver sees the replies it expects for the
/// statements it sent, however the bytes arrive.
///
/// What goes in front carries no `Sync` of its own: PostgreSQL flushes its output at every
/// `ReadyForQuery`, so each `Sync` would be a packet to send and a read to wake for.
///
/// - **`BEGIN`** is bound and executed (prepared once per connection) ahead of the
///   driver's messages, in their `Sync` group; it turns the group into a transaction that
///   outlives the `Sync`.
/// - **Settings** (`setWithNextStatement`, the request's tenant, principal and owner scope)
///   follow as one statement, `SELECT set_config($1, $2, true), …`, prepared once per
///   connection and bound with the values.
/// - **Statements of the caller's** (`sendWithNextWrite`, usage a request records) follow,
///   each prepared once per connection and bound with text values. Their replies are taken
///   out as the settings' are; when one fails, PostgreSQL skips the rest of the `Sync`
///   group, so its `ErrorResponse` is handed to the driver as the answer to the driver's
///   own statement (which did not run), and the transaction fails as it would had that
///   statement failed. The connection stays usable.
/// - **`COMMIT`** (`commitAfterNextStatement`) goes behind the driver's next write that
///   executes something, as a `Query("COMMIT")`, its outcome reported through a promise.
/// - **One statement, opened and committed together.** When the armed write is the
///   driver's one statement (one `Execute`, one `Sync`) and a `COMMIT` waits for it, there
///   is no `BEGIN` and no `COMMIT` at all: the settings and the statement run in the one
///   implicit transaction PostgreSQL gives the messages up to a `Sync`, which commits at
///   the `Sync` (rolls back when something in it failed). A refusal at that commit comes
///   after the statement's own `CommandComplete`: it is taken out of the driver's stream
///   and reported through the promise.
///
/// A refused `BEGIN` or setting closes the connection; PostgreSQL skips the driver's
/// statement behind it (up to the `Sync`), so it never runs unscoped. The transaction has
/// ended once its `COMMIT` has gone out, so a statement the driver writes after it, before
/// `disarm()`, would run outside the transaction and unscoped: it closes the connection
/// instead.
final class PipelinedBeginHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct BeginRefused: Error, CustomStringConvertible {
        var description: String { "PostgreSQL refused a pipelined BEGIN; the connection is closed" }
    }

    struct MalformedReply: Error, CustomStringConvertible {
        var description: String { "PostgreSQL's reply to a pipelined BEGIN did not parse; the connection is closed" }
    }

    struct SettingRefused: Error, CustomStringConvertible {
        var description: String { "PostgreSQL refused a pipelined transaction-local setting; the connection is closed" }
    }

    struct StatementAfterCommit: Error, CustomStringConvertible {
        var description: String {
            "a statement was written after its transaction's pipelined COMMIT (it would have run outside the transaction); the connection is closed"
        }
    }

    /// Why a pipelined `COMMIT` did not commit.
    enum CommitOutcome: Error, CustomStringConvertible, Equatable {
        /// No statement that executes was written before `disarm()`: nothing was sent.
        case notSent
        /// PostgreSQL answered `ROLLBACK`: the transaction had failed before it (or, in a
        /// transaction its `Sync` commits, its statement failed and the `Sync` rolled it back).
        case rolledBack
        /// PostgreSQL refused the `COMMIT`, or the commit at the `Sync` (SQLSTATE, message,
        /// and the constraint, table and column it named, if any); the transaction is gone.
        case refused(sqlState: String, message: String, constraint: String? = nil, table: String? = nil, column: String? = nil)
        /// The connection closed before the answer came.
        case connectionClosed

        var description: String {
            switch self {
            case .notSent: "the pipelined COMMIT was not sent"
            case .rolledBack: "the transaction was rolled back: a statement in it had failed"
            case .refused(let state, let message, _, _, _): "PostgreSQL refused COMMIT (\(state)): \(message)"
            case .connectionClosed: "the database connection closed before COMMIT was answered"
            }
        }
    }

    /// `Query` ("COMMIT"): the type byte, the length (itself, the text and its NUL), the text.
    static let commitMessage = simpleQuery("COMMIT")
    /// The name this connection prepares `BEGIN` under.
    static let beginStatement = "atrium_pipelined_begin"

    private static func simpleQuery(_ text: StaticString) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(ascii: "Q"))
        buffer.writeInteger(Int32(4 + text.utf8CodeUnitCount + 1))
        buffer.writeStaticString(text)
        buffer.writeInteger(UInt8(0))
        return buffer
    }

    /// Counts the message sequences written (each one waits for its answer), the
    /// connection's round trips, and the transactions committed by their `Sync`.
    let counters: PipelineCounters
    private var armed = false
    /// Settings to make, transaction-locally, right after the armed `BEGIN`.
    private var settings: [(name: String, value: String)] = []
    /// Statements of the caller's to send in front of the driver's next write.
    private var deferred: [PrefixedStatement] = []
    /// The names of the statements (settings, the caller's) this connection has prepared.
    private var preparedNames: Set<String> = []
    /// Whether this connection has prepared `BEGIN`.
    private var beginPrepared = false
    /// The statements sent, in order, whose replies have not all come back, where one of
    /// them is the handler's own (otherwise the driver's replies pass untouched).
    private var unanswered: [Sent] = []
    /// Waiting for the driver's next write that executes a statement, to follow it.
    private var commitWaiting: EventLoopPromise<Void>?
    /// What the driver has written since the last flush while a `COMMIT` waits: how many
    /// message sequences (each ends with `Sync`, answered by one `ReadyForQuery`), and
    /// whether one executes a statement (a `Parse` and `Describe` alone prepare one).
    private var syncsWritten = 0
    private var executeWritten = false
    /// A `COMMIT` has gone out behind the driver's statement: until `disarm()`, any further
    /// statement would run outside the transaction.
    private var committed = false
    /// Whether anything was written since the connection last went back to its pool
    /// (`returnedToPool()`): when a connection dies and nothing was, no statement of the
    /// request ran.
    private(set) var wroteSinceReturned = false
    /// After an injected death: what PostgreSQL still sends is dropped, as a dead socket
    /// would.
    private var deaf = false

    /// A connection dying at a chosen moment, for tests (`RequestConnection.injectFault`).
    enum InjectedFault {
        /// The next write fails and the connection closes: nothing reaches the server.
        case beforeNextWrite
        /// The next write goes out, then the connection closes before any answer.
        case afterNextWrite
    }
    var injectedFault: InjectedFault?
    private var closeAfterFlush = false

    enum Sent {
        /// Answered by (`ParseComplete`,) `BindComplete` and `CommandComplete`.
        case begin
        /// Answered by (`ParseComplete`,) `BindComplete`, its row and `CommandComplete`.
        case settings
        /// A statement of the caller's, answered like the settings, or by an
        /// `ErrorResponse` handed to the driver; `parsed` names it when this write prepared it.
        case deferred(parsed: String?)
        /// The driver's statements, answered by this many `ReadyForQuery`s: passed through.
        case driver(syncs: Int)
        case commit(EventLoopPromise<Void>, outcome: CommitOutcome?)
        /// The driver's one statement in the implicit transaction its `Sync` commits: passed
        /// through, but for an `ErrorResponse` after the statement ended (the commit's).
        case implicitCommit(EventLoopPromise<Void>, statementEnded: Bool, outcome: CommitOutcome?)
    }
    /// Bytes held back while such a reply is read: a message can arrive in pieces.
    private var held = ByteBuffer()

    init(counters: PipelineCounters) {
        self.counters = counters
    }

    /// The next statement written on this connection runs in a new transaction.
    func arm() { armed = true }

    /// Makes `settings` transaction-locally in the transaction `arm()` opens, in the same
    /// write. False when no `BEGIN` is waiting to be sent (the caller then makes them
    /// itself, in the transaction it is in).
    func setWithNextStatement(_ settings: [(name: String, value: String)]) -> Bool {
        guard armed else { return false }
        self.settings += settings
        return true
    }

    /// Sends `statement` in front of the driver's next write, in the same `Sync` group (so
    /// in the same transaction, after any pending `BEGIN` and settings).
    func sendWithNextWrite(_ statement: PrefixedStatement) {
        deferred.append(statement)
    }

    /// Whether statements wait for the driver's next write.
    var hasDeferredStatements: Bool { !deferred.isEmpty }

    /// Drops the statements waiting for the driver's next write (their transaction is
    /// being rolled back).
    func discardDeferred() {
        deferred = []
    }

    /// Sends `COMMIT` right behind the driver's next write that executes a statement, in
    /// the same flush; `promise` succeeds when PostgreSQL answers `COMMIT`, and fails with
    /// a `CommitOutcome` otherwise. False (the promise untouched) when one already waits
    /// or has gone in this transaction.
    func commitAfterNextStatement(_ promise: EventLoopPromise<Void>) -> Bool {
        guard commitWaiting == nil, !committed else { return false }
        commitWaiting = promise
        syncsWritten = 0
        executeWritten = false
        return true
    }

    /// Takes back a `COMMIT` that has not gone out: its promise fails with `.notSent`.
    func withdrawUnsentCommit() {
        commitWaiting?.fail(CommitOutcome.notSent)
        commitWaiting = nil
    }

    /// The connection is back in its pool: disarmed, and nothing written by its next holder yet.
    func returnedToPool() {
        disarm()
        wroteSinceReturned = false
    }

    /// Forgets an `arm()` no statement followed (a connection going back to its pool, a
    /// request that ran no statement): true when there was one, so that the transaction
    /// it would have opened needs no `COMMIT` either. Also takes back an unsent `COMMIT`,
    /// and lets statements through again after a sent one.
    @discardableResult
    func disarm() -> Bool {
        defer {
            armed = false
            settings = []
            deferred = []
            committed = false
        }
        withdrawUnsentCommit()
        return armed
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch injectedFault {
        case .beforeNextWrite:
            injectedFault = nil
            promise?.fail(ChannelError.ioOnClosedChannel)
            context.close(promise: nil)
            return
        case .afterNextWrite:
            injectedFault = nil
            closeAfterFlush = true
        case nil:
            break
        }
        wroteSinceReturned = true
        if committed {
            promise?.fail(StatementAfterCommit())
            fail(context, StatementAfterCommit())
            return
        }
        var messages = (syncs: 0, executes: 0, endsWithSync: false)
        if commitWaiting != nil {
            messages = Self.count(unwrapOutboundIn(data))
            syncsWritten += messages.syncs
            executeWritten = executeWritten || messages.executes > 0
        }
        if armed {
            armed = false
            var prefix = context.channel.allocator.buffer(capacity: 256)
            if let promise = commitWaiting, messages.executes == 1, messages.syncs == 1, messages.endsWithSync {
                // The statement is the transaction: its Sync commits it.
                commitWaiting = nil
                committed = true
                if !settings.isEmpty {
                    writeSettings(settings, to: &prefix)
                    unanswered.append(.settings)
                }
                writeDeferred(to: &prefix)
                unanswered.append(.implicitCommit(promise, statementEnded: false, outcome: nil))
            } else {
                writeBegin(to: &prefix)
                unanswered.append(.begin)
                if !settings.isEmpty {
                    writeSettings(settings, to: &prefix)
                    unanswered.append(.settings)
                }
                writeDeferred(to: &prefix)
            }
            settings = []
            if prefix.readableBytes > 0 { context.write(wrapOutboundOut(prefix), promise: nil) }
        } else if !deferred.isEmpty {
            var prefix = context.channel.allocator.buffer(capacity: 256)
            writeDeferred(to: &prefix)
            context.write(wrapOutboundOut(prefix), promise: nil)
        }
        context.write(data, promise: promise)
    }

    /// `BEGIN` in the extended protocol, without a `Sync`: `Parse` the first time on this
    /// connection, then `Bind` and `Execute`.
    private func writeBegin(to buffer: inout ByteBuffer) {
        if !beginPrepared {
            beginPrepared = true
            Self.message("P", to: &buffer) { body in
                body.writeNullTerminatedString(Self.beginStatement)
                body.writeNullTerminatedString("BEGIN")
                body.writeInteger(Int16(0))
            }
        }
        Self.message("B", to: &buffer) { body in
            body.writeNullTerminatedString("")
            body.writeNullTerminatedString(Self.beginStatement)
            body.writeInteger(Int16(0))
            body.writeInteger(Int16(0))
            body.writeInteger(Int16(0))
        }
        Self.message("E", to: &buffer) { body in
            body.writeNullTerminatedString("")
            body.writeInteger(Int32(0))
        }
    }

    /// `SELECT set_config($1, $2, true), …` for `settings`, prepared once per connection
    /// for each number of settings: the SQL text is the same for every request with as
    /// many settings; the values travel bound.
    private func writeSettings(_ settings: [(name: String, value: String)], to buffer: inout ByteBuffer) {
        let calls = (0..<settings.count).map { "set_config($\(2 * $0 + 1), $\(2 * $0 + 2), true)" }
        let statement = PrefixedStatement(
            name: "atrium_pipelined_settings_\(settings.count)", text: "SELECT " + calls.joined(separator: ", "),
            values: settings.flatMap { [$0.name, $0.value] })
        _ = write(statement, to: &buffer)
    }

    /// The caller's statements, each answered by a `.deferred` entry.
    private func writeDeferred(to buffer: inout ByteBuffer) {
        for statement in deferred {
            unanswered.append(.deferred(parsed: write(statement, to: &buffer) ? statement.name : nil))
        }
        deferred = []
    }

    /// `statement` in the extended protocol, without a `Sync` (it runs in the `Sync` group
    /// of the statement behind it): `Parse` the first time this connection sends it (every
    /// parameter declared `text`), then `Bind` (the values as text) and `Execute`. True
    /// when it was parsed here.
    private func write(_ statement: PrefixedStatement, to buffer: inout ByteBuffer) -> Bool {
        let parse = preparedNames.insert(statement.name).inserted
        if parse {
            Self.message("P", to: &buffer) { body in
                body.writeNullTerminatedString(statement.name)
                body.writeNullTerminatedString(statement.text)
                body.writeInteger(Int16(statement.values.count))
                for _ in statement.values { body.writeInteger(Int32(25)) }  // text
            }
        }
        Self.message("B", to: &buffer) { body in
            body.writeNullTerminatedString("")  // the unnamed portal
            body.writeNullTerminatedString(statement.name)
            body.writeInteger(Int16(0))  // every parameter in text format
            body.writeInteger(Int16(statement.values.count))
            for text in statement.values {
                body.writeInteger(Int32(text.utf8.count))
                body.writeString(text)
            }
            body.writeInteger(Int16(0))  // the result in text format
        }
        Self.message("E", to: &buffer) { body in
            body.writeNullTerminatedString("")
            body.writeInteger(Int32(0))  // every row
        }
        return parse
    }

    /// A frontend message: its type, its length (itself included), its body.
    private static func message(_ type: Character, to buffer: inout ByteBuffer, _ body: (inout ByteBuffer) -> Void) {
        buffer.writeInteger(type.asciiValue ?? 0)
        let lengthAt = buffer.writerIndex
        buffer.writeInteger(Int32(0))
        body(&buffer)
        buffer.setInteger(Int32(buffer.writerIndex - lengthAt), at: lengthAt)
    }

    /// The `Sync`s and `Execute`s among the driver's messages in `buffer`, and whether its
    /// last message is a `Sync`.
    private static func count(_ buffer: ByteBuffer) -> (syncs: Int, executes: Int, endsWithSync: Bool) {
        var counted = (syncs: 0, executes: 0, endsWithSync: false)
        var index = buffer.readerIndex
        while let type = buffer.getInteger(at: index, as: UInt8.self), let length = buffer.getInteger(at: index + 1, as: Int32.self), length >= 4 {
            if type == UInt8(ascii: "S") { counted.syncs += 1 }
            if type == UInt8(ascii: "E") { counted.executes += 1 }
            counted.endsWithSync = type == UInt8(ascii: "S")
            index += 1 + Int(length)
        }
        if index != buffer.writerIndex { counted.endsWithSync = false }
        return counted
    }

    func flush(context: ChannelHandlerContext) {
        if let promise = commitWaiting, executeWritten {
            commitWaiting = nil
            committed = true
            unanswered.append(.driver(syncs: syncsWritten))
            unanswered.append(.commit(promise, outcome: nil))
            context.write(wrapOutboundOut(Self.commitMessage), promise: nil)
        }
        syncsWritten = 0
        counters.addRoundTrip()
        context.flush()
        if closeAfterFlush {
            // The statement has gone; the connection dies before any answer is read (over
            // TLS too, where a close would first exchange close_notify and read on).
            closeAfterFlush = false
            deaf = true
            failPendingCommits()
            context.fireErrorCaught(ChannelError.ioOnClosedChannel)
            context.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if deaf { return }
        guard !unanswered.isEmpty else {
            context.fireChannelRead(data)
            return
        }
        var incoming = unwrapInboundIn(data)
        if held.readableBytes == 0 { held = incoming } else { held.writeBuffer(&incoming) }
        // The driver's messages at the reader index, passed on in one read once complete.
        var passing = 0
        func pass() {
            if passing > 0, let slice = held.readSlice(length: passing) { context.fireChannelRead(wrapInboundOut(slice)) }
            passing = 0
        }
        while let answering = unanswered.first {
            let at = held.readerIndex + passing
            guard let type = held.getInteger(at: at, as: UInt8.self), let length = held.getInteger(at: at + 1, as: Int32.self) else {
                break  // the rest of the header is still on its way
            }
            guard length >= 4 else {
                fail(context, MalformedReply())
                return
            }
            if case .driver(let syncs) = answering {
                guard held.readableBytes >= passing + 1 + Int(length) else { break }  // the rest of the message
                passing += 1 + Int(length)
                if type == UInt8(ascii: "Z") {
                    if syncs > 1 { unanswered[0] = .driver(syncs: syncs - 1) } else { unanswered.removeFirst() }
                    pass()
                }
                continue
            }
            if case .implicitCommit(let promise, let ended, let outcome) = answering {
                guard held.readableBytes >= passing + 1 + Int(length) else { break }  // the rest of the message
                if type == UInt8(ascii: "E"), ended {
                    // The commit at the Sync refused, after the statement had ended: PostgreSQL's
                    // answer to the transaction, not to the driver's statement.
                    pass()
                    guard let refusal = held.readSlice(length: 1 + Int(length)) else { break }
                    unanswered[0] = .implicitCommit(promise, statementEnded: true, outcome: outcome ?? Self.refusal(refusal))
                    continue
                }
                passing += 1 + Int(length)
                switch type {
                case UInt8(ascii: "C"), UInt8(ascii: "I"):  // CommandComplete, EmptyQueryResponse
                    unanswered[0] = .implicitCommit(promise, statementEnded: true, outcome: outcome)
                case UInt8(ascii: "E"):  // the statement failed: the Sync rolls the transaction back
                    unanswered[0] = .implicitCommit(promise, statementEnded: true, outcome: outcome ?? .rolledBack)
                case UInt8(ascii: "Z"):
                    unanswered.removeFirst()
                    pass()
                    if let outcome {
                        promise.fail(outcome)
                    } else {
                        counters.addSyncCommit()
                        promise.succeed()
                    }
                default:
                    break
                }
                continue
            }
            guard let message = held.readSlice(length: 1 + Int(length)) else { break }  // the rest of the message
            switch (type, answering) {
            // ParseComplete, BindComplete and the row of the settings
            case (UInt8(ascii: "1"), .begin), (UInt8(ascii: "2"), .begin),
                (UInt8(ascii: "1"), .settings), (UInt8(ascii: "2"), .settings), (UInt8(ascii: "D"), .settings),
                (UInt8(ascii: "1"), .deferred), (UInt8(ascii: "2"), .deferred), (UInt8(ascii: "D"), .deferred):
                continue
            case (UInt8(ascii: "C"), .begin), (UInt8(ascii: "C"), .settings), (UInt8(ascii: "C"), .deferred):
                // CommandComplete: the next reply is the next statement's
                unanswered.removeFirst()
            case (UInt8(ascii: "E"), .deferred):
                // PostgreSQL skips the rest of the Sync group: the caller's statements behind
                // this one and the driver's. The driver gets the error as its statement's.
                while case .deferred(let parsed) = unanswered.first {
                    if let parsed { preparedNames.remove(parsed) }
                    unanswered.removeFirst()
                }
                if case .implicitCommit(let promise, _, let outcome) = unanswered.first {
                    unanswered[0] = .implicitCommit(promise, statementEnded: false, outcome: outcome ?? .rolledBack)
                }
                context.fireChannelRead(wrapInboundOut(message))
            case (UInt8(ascii: "C"), .commit(let promise, let outcome)):
                let tag = message.getNullTerminatedString(at: message.readerIndex + 5)
                unanswered[0] = .commit(promise, outcome: outcome ?? (tag == "COMMIT" ? nil : .rolledBack))
            case (UInt8(ascii: "E"), .commit(let promise, _)):
                unanswered[0] = .commit(promise, outcome: Self.refusal(message))
            case (UInt8(ascii: "Z"), .commit(let promise, let outcome)):  // ReadyForQuery
                unanswered.removeFirst()
                if let outcome { promise.fail(outcome) } else { promise.succeed() }
            case (UInt8(ascii: "E"), .begin):
                fail(context, BeginRefused())
                return
            case (UInt8(ascii: "E"), _):
                fail(context, SettingRefused())
                return
            case (UInt8(ascii: "N"), _), (UInt8(ascii: "S"), _), (UInt8(ascii: "A"), _):
                // a notice, a parameter status or a notification: the driver's to handle
                context.fireChannelRead(wrapInboundOut(message))
            default:
                fail(context, MalformedReply())
                return
            }
        }
        pass()
        if unanswered.isEmpty {
            if held.readableBytes > 0 {
                let rest = held
                context.fireChannelRead(wrapInboundOut(rest))
            }
            held = ByteBuffer()
        } else {
            held.discardReadBytes()
        }
    }

    /// A commit's `ErrorResponse`: its SQLSTATE (`C`), message (`M`), constraint (`n`),
    /// table (`t`) and column (`c`) fields.
    private static func refusal(_ message: ByteBuffer) -> CommitOutcome {
        var body = message
        body.moveReaderIndex(forwardBy: 5)
        var fields: [UInt8: String] = [:]
        while let field = body.readInteger(as: UInt8.self), field != 0, let value = body.readNullTerminatedString() {
            fields[field] = value
        }
        return .refused(
            sqlState: fields[UInt8(ascii: "C")] ?? "", message: fields[UInt8(ascii: "M")] ?? "", constraint: fields[UInt8(ascii: "n")],
            table: fields[UInt8(ascii: "t")], column: fields[UInt8(ascii: "c")])
    }

    func channelInactive(context: ChannelHandlerContext) {
        failPendingCommits()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        failPendingCommits()
    }

    private func failPendingCommits() {
        for sent in unanswered {
            switch sent {
            case .commit(let promise, _), .implicitCommit(let promise, _, _): promise.fail(CommitOutcome.connectionClosed)
            case .begin, .settings, .deferred, .driver: break
            }
        }
        unanswered = []
        commitWaiting?.fail(CommitOutcome.connectionClosed)
        commitWaiting = nil
    }

    private func fail(_ context: ChannelHandlerContext, _ error: any Error) {
        failPendingCommits()
        held = ByteBuffer()
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }
}

/// A statement sent in front of the driver's next write (`PipelinedBeginHandler`): prepared
/// under `name` once per connection, every parameter `text` (the SQL casts them).
struct PrefixedStatement: Sendable, Equatable {
    /// The same for every statement with this text.
    let name: String
    let text: String
    let values: [String]

    /// The same statement for the driver, where it cannot travel in front of another.
    var sql: SQL {
        var sql = SQL(unescaped: "")
        for value in values { _ = sql.bind(value) }
        sql.append(unescaped: text)
        return sql
    }
}

/// What a pool's connections did, for `/metrics` and the request-path bench: their round
/// trips, and the transactions their `Sync` committed (which sent no `BEGIN` or `COMMIT`).
final class PipelineCounters: Sendable {
    private let trips = Atomic<Int>(0)
    private let syncs = Atomic<Int>(0)
    private let retries = Atomic<Int>(0)

    /// A request ran again on a fresh connection after its own died.
    func addRetry() { retries.wrappingAdd(1, ordering: .relaxed) }

    var requestRetries: Int { retries.load(ordering: .relaxed) }

    func addRoundTrip() { trips.wrappingAdd(1, ordering: .relaxed) }

    func addSyncCommit() { syncs.wrappingAdd(1, ordering: .relaxed) }

    var roundTrips: Int { trips.load(ordering: .relaxed) }

    var syncCommits: Int { syncs.load(ordering: .relaxed) }
}
