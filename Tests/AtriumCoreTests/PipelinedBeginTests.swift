@testable import AtriumCore
import AtriumSales
import AtriumTesting
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOEmbedded
import NIOPosix
import NIOSSL
import PostgresNIO
import Synchronization
import Testing

/// `BEGIN` and the request's scope travel with the statement after them, and `COMMIT`
/// with a block's last (`PipelinedBeginHandler`), so a read is one round trip; the bytes
/// PostgreSQL answers them with never reach the driver, however they arrive; and the
/// request connections' pool hands out, waits and closes as a pool must.
@Suite("Pipelined BEGIN and the request connections' pool")
struct PipelinedBeginTests {
    // MARK: The handler, byte by byte

    /// A backend message: type byte, length, body.
    static func message(_ type: Character, _ body: [UInt8]) -> [UInt8] {
        let length = UInt32(4 + body.count)
        return [UInt8(ascii: type.unicodeScalars.first ?? "?")] + withUnsafeBytes(of: length.bigEndian) { Array($0) } + body
    }

    /// What the pipelined `BEGIN` is answered with: ParseComplete (the first time on the
    /// connection), BindComplete, CommandComplete; no ReadyForQuery, as it has no `Sync`.
    static func beginReply(parsed: Bool = true) -> [UInt8] {
        (parsed ? message("1", []) : []) + message("2", []) + message("C", Array("BEGIN".utf8) + [0])
    }
    /// What the driver's statement is answered with: BindComplete, a notice in between,
    /// CommandComplete, ReadyForQuery.
    static let statementReply = message("2", []) + message("N", Array("SNOTICE\0\0".utf8)) + message("C", Array("SELECT 1".utf8) + [0])
        + message("Z", [UInt8(ascii: "T")])

    /// `reply` cut in two at every place it can be, and one byte at a time: how a reply may
    /// arrive in reads.
    static func cuts(of reply: [UInt8]) -> [[[UInt8]]] {
        (0...reply.count).map { [Array(reply[..<$0]), Array(reply[$0...])] } + [reply.map { [$0] }]
    }

    func channel() throws -> (EmbeddedChannel, PipelinedBeginHandler, PipelineCounters) {
        let counter = PipelineCounters()
        let handler = PipelinedBeginHandler(counters: counter)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 5432)).wait()
        return (channel, handler, counter)
    }

    func written(_ channel: EmbeddedChannel) throws -> [UInt8] {
        var bytes: [UInt8] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { bytes += Array(buffer.readableBytesView) }
        return bytes
    }

    func received(_ channel: EmbeddedChannel) throws -> [UInt8] {
        var bytes: [UInt8] = []
        while let buffer = try channel.readInbound(as: ByteBuffer.self) { bytes += Array(buffer.readableBytesView) }
        return bytes
    }

    @Test func anArmedWriteStartsWithBeginAndItsReplyIsTakenOutWhereverItIsCut() throws {
        let statement: [UInt8] = Self.message("B", [1, 2, 3]) + Self.message("S", [])
        for parsed in [true, false] {
            let reply = Self.beginReply(parsed: parsed) + Self.statementReply
            for pieces in Self.cuts(of: reply) {
                let (channel, handler, counter) = try channel()
                if !parsed {
                    // The connection prepared its BEGIN before.
                    handler.arm()
                    try channel.writeAndFlush(ByteBuffer(bytes: statement)).wait()
                    _ = try written(channel)
                    try channel.writeInbound(ByteBuffer(bytes: Self.beginReply() + Self.statementReply))
                    _ = try received(channel)
                }
                handler.arm()
                try channel.writeAndFlush(ByteBuffer(bytes: statement)).wait()
                let sent = try written(channel)
                // BEGIN (prepared once per connection), bound and executed in the statement's
                // Sync group: one write, one Sync.
                #expect(Self.types(sent) == (parsed ? "PBEBS" : "BEBS"))
                #expect(sent.suffix(statement.count) == statement[...])
                #expect(!parsed || String(decoding: sent, as: UTF8.self).contains("BEGIN\0"))
                #expect(counter.roundTrips == (parsed ? 1 : 2))
                for piece in pieces where !piece.isEmpty { try channel.writeInbound(ByteBuffer(bytes: piece)) }
                #expect(try received(channel) == Self.statementReply, "cut into \(pieces.map(\.count))")

                // The next statement, not armed, goes and comes back untouched.
                try channel.writeAndFlush(ByteBuffer(bytes: statement)).wait()
                #expect(try written(channel) == statement)
                try channel.writeInbound(ByteBuffer(bytes: Self.statementReply))
                #expect(try received(channel) == Self.statementReply)
                _ = try channel.finish()
            }
        }
    }

    /// The type bytes of the frontend messages in `bytes`.
    static func types(_ bytes: [UInt8]) -> String {
        var types = ""
        var at = 0
        while at + 5 <= bytes.count {
            types.append(Character(UnicodeScalar(bytes[at])))
            let length = bytes[(at + 1)..<(at + 5)].reduce(0) { $0 << 8 | Int($1) }
            at += 1 + length
        }
        return types
    }

    /// What the settings' statement is answered with: ParseComplete (the first time),
    /// BindComplete, its row, CommandComplete; no ReadyForQuery, as it has no `Sync`.
    static func settingsReply(parsed: Bool) -> [UInt8] {
        (parsed ? message("1", []) : []) + message("2", []) + message("D", [0, 2, 0, 0, 0, 1, 0x61, 0, 0, 0, 1, 0x62])
            + message("C", Array("SELECT 1".utf8) + [0])
    }

    @Test func settingsTravelWithBeginAndTheirReplyIsTakenOutWhereverItIsCut() throws {
        let statement: [UInt8] = Self.message("B", [1, 2, 3]) + Self.message("S", [])
        for parsed in [true, false] {
            let reply = Self.beginReply(parsed: parsed) + Self.settingsReply(parsed: parsed) + Self.statementReply
            for pieces in Self.cuts(of: reply) {
                let (channel, handler, counter) = try channel()
                if !parsed {
                    // The connection prepared its statement for two settings before.
                    handler.arm()
                    #expect(handler.setWithNextStatement([("a", "1"), ("b", "2")]))
                    try channel.writeAndFlush(ByteBuffer(bytes: statement)).wait()
                    _ = try written(channel)
                    try channel.writeInbound(ByteBuffer(bytes: Self.beginReply() + Self.settingsReply(parsed: true) + Self.statementReply))
                    _ = try received(channel)
                }
                handler.arm()
                #expect(handler.setWithNextStatement([("app.tenant_id", "t")]))
                #expect(handler.setWithNextStatement([("app.principal_id", "p")]))
                try channel.writeAndFlush(ByteBuffer(bytes: statement)).wait()
                let sent = try written(channel)
                // One write, one Sync: BEGIN and the settings (each parsed once per
                // connection), then the statement.
                #expect(Self.types(sent) == (parsed ? "PBEPBEBS" : "BEBEBS"))
                #expect(sent.suffix(statement.count) == statement[...])
                #expect(counter.roundTrips == (parsed ? 1 : 2))
                for piece in pieces where !piece.isEmpty { try channel.writeInbound(ByteBuffer(bytes: piece)) }
                #expect(try received(channel) == Self.statementReply, "cut into \(pieces.map(\.count))")
                _ = try channel.finish()
            }
        }
    }

    @Test func settingsWaitOnlyForAPendingBegin() throws {
        let (channel, handler, _) = try channel()
        #expect(!handler.setWithNextStatement([("a", "1")]))
        handler.arm()
        #expect(handler.setWithNextStatement([("a", "1")]))
        // Withdrawn with the BEGIN: nothing goes with the next statement.
        #expect(handler.disarm())
        #expect(!handler.disarm())
        try channel.writeAndFlush(ByteBuffer(bytes: Self.message("S", []))).wait()
        #expect(try written(channel) == Self.message("S", []))
        _ = try channel.finish()
    }

    @Test func aDisarmedConnectionSendsNoBegin() throws {
        let (channel, handler, _) = try channel()
        handler.arm()
        handler.disarm()
        try channel.writeAndFlush(ByteBuffer(bytes: Self.message("S", []))).wait()
        #expect(try written(channel) == Self.message("S", []))
        _ = try channel.finish()
    }

    /// A refused BEGIN, or a refused setting after it, closes the connection: the
    /// driver's statement behind them must not run outside the transaction or its scope.
    @Test(arguments: [false, true]) func aRefusedBeginOrSettingClosesTheConnection(withSetting: Bool) throws {
        let (channel, handler, _) = try channel()
        handler.arm()
        if withSetting { #expect(handler.setWithNextStatement([("a", "1")])) }
        try channel.writeAndFlush(ByteBuffer(bytes: Self.message("S", []))).wait()
        _ = try written(channel)
        let refusal = Self.message("E", Array("SERROR\0\0".utf8)) + Self.message("Z", [UInt8(ascii: withSetting ? "E" : "I")])
        let reply = ByteBuffer(bytes: (withSetting ? Self.beginReply() : []) + refusal)
        if withSetting {
            #expect(throws: PipelinedBeginHandler.SettingRefused.self) { try channel.writeInbound(reply) }
        } else {
            #expect(throws: PipelinedBeginHandler.BeginRefused.self) { try channel.writeInbound(reply) }
        }
        #expect(!channel.isActive)
        #expect(try received(channel).isEmpty)
    }

    // MARK: COMMIT with the last statement, byte by byte

    static let commitReply = message("C", Array("COMMIT".utf8) + [0]) + message("Z", [UInt8(ascii: "I")])

    /// `COMMIT` waits for the driver's write that executes a statement (a preparation's
    /// Parse, Describe and Sync go alone), follows it in the same write, and its answer is
    /// taken out of the reply however it is cut: the driver sees its own replies only.
    @Test func aCommitFollowsTheStatementThatExecutesAndItsReplyIsTakenOutWhereverItIsCut() throws {
        let prepare: [UInt8] = Self.message("P", [0, 0]) + Self.message("D", [UInt8(ascii: "S"), 0]) + Self.message("S", [])
        let prepared = Self.message("1", []) + Self.message("n", []) + Self.message("Z", [UInt8(ascii: "T")])
        let execute: [UInt8] = Self.message("B", [1, 2, 3]) + Self.message("E", [0, 0, 0, 0, 0]) + Self.message("S", [])
        let rows = Self.message("2", []) + Self.message("D", [0, 1, 0, 0, 0, 1, 0x61]) + Self.message("D", [0, 1, 0, 0, 0, 1, 0x62])
            + Self.message("N", Array("SNOTICE\0\0".utf8)) + Self.message("C", Array("SELECT 2".utf8) + [0]) + Self.message("Z", [UInt8(ascii: "T")])
        let reply = rows + Self.commitReply
        for pieces in Self.cuts(of: reply) {
            let (channel, handler, counter) = try channel()
            let committed = channel.eventLoop.makePromise(of: Void.self)
            handler.arm()
            #expect(handler.commitAfterNextStatement(committed))
            let second = channel.eventLoop.makePromise(of: Void.self)
            #expect(!handler.commitAfterNextStatement(second), "a second COMMIT while one waits")
            second.succeed()
            try channel.writeAndFlush(ByteBuffer(bytes: prepare)).wait()
            #expect(Self.types(try written(channel)) == "PBEPDS")
            try channel.writeInbound(ByteBuffer(bytes: Self.beginReply() + prepared))
            #expect(try received(channel) == prepared)

            try channel.writeAndFlush(ByteBuffer(bytes: execute)).wait()
            #expect(try written(channel) == execute + Array(PipelinedBeginHandler.commitMessage.readableBytesView))
            #expect(counter.roundTrips == 2)
            let answer = Answer(committed.futureResult)
            for piece in pieces where !piece.isEmpty { try channel.writeInbound(ByteBuffer(bytes: piece)) }
            #expect(try received(channel) == rows, "cut into \(pieces.map(\.count))")
            #expect(throws: Never.self, "cut into \(pieces.map(\.count))") { try #require(answer.result).get() }
            #expect(channel.isActive)
            _ = try channel.finish()
        }
    }

    /// A `COMMIT` answered `ROLLBACK` (the statement before it failed) or refused fails
    /// its promise with what PostgreSQL said; the connection stays, as the driver's does.
    @Test(arguments: [
        (message("C", Array("ROLLBACK".utf8) + [0]), PipelinedBeginHandler.CommitOutcome.rolledBack),
        (message("E", Array("SERROR\0C40001\0Mcould not serialize access\0\0".utf8)),
         PipelinedBeginHandler.CommitOutcome.refused(sqlState: "40001", message: "could not serialize access")),
    ])
    func aCommitThatDidNotCommitFailsItsPromise(answer: [UInt8], outcome: PipelinedBeginHandler.CommitOutcome) throws {
        let (channel, handler, _) = try channel()
        let committed = channel.eventLoop.makePromise(of: Void.self)
        #expect(handler.commitAfterNextStatement(committed))
        try channel.writeAndFlush(ByteBuffer(bytes: Self.message("E", [0, 0, 0, 0, 0]) + Self.message("S", []))).wait()
        _ = try written(channel)
        let failed = Self.message("E", Array("SERROR\0C22P02\0Mbad\0\0".utf8)) + Self.message("Z", [UInt8(ascii: "E")])
        let result = Answer(committed.futureResult)
        try channel.writeInbound(ByteBuffer(bytes: failed + answer + Self.message("Z", [UInt8(ascii: "I")])))
        #expect(try received(channel) == failed)
        #expect(throws: outcome) { try #require(result.result).get() }
        #expect(channel.isActive)
        _ = try channel.finish()
    }

    /// A statement that opens the transaction and ends it (armed, a `COMMIT` waiting, one
    /// `Execute` and one `Sync`) runs with its settings in the implicit transaction its
    /// `Sync` commits: no `BEGIN`, no `COMMIT`, and the driver sees its own replies only,
    /// however they are cut.
    @Test func aStatementThatIsTheWholeTransactionIsCommittedByItsSync() throws {
        let execute: [UInt8] = Self.message("B", [1, 2, 3]) + Self.message("E", [0, 0, 0, 0, 0]) + Self.message("S", [])
        let rows = Self.message("2", []) + Self.message("D", [0, 1, 0, 0, 0, 1, 0x61]) + Self.message("N", Array("SNOTICE\0\0".utf8))
            + Self.message("C", Array("SELECT 1".utf8) + [0]) + Self.message("Z", [UInt8(ascii: "I")])
        let reply = Self.settingsReply(parsed: true) + rows
        for pieces in Self.cuts(of: reply) {
            let (channel, handler, counter) = try channel()
            let committed = channel.eventLoop.makePromise(of: Void.self)
            handler.arm()
            #expect(handler.setWithNextStatement([("app.tenant_id", "t")]))
            #expect(handler.commitAfterNextStatement(committed))
            try channel.writeAndFlush(ByteBuffer(bytes: execute)).wait()
            let sent = try written(channel)
            #expect(Self.types(sent) == "PBEBES")
            #expect(sent.suffix(execute.count) == execute[...])
            #expect(counter.roundTrips == 1)
            let answer = Answer(committed.futureResult)
            for piece in pieces where !piece.isEmpty { try channel.writeInbound(ByteBuffer(bytes: piece)) }
            #expect(try received(channel) == rows, "cut into \(pieces.map(\.count))")
            #expect(throws: Never.self, "cut into \(pieces.map(\.count))") { try #require(answer.result).get() }
            #expect(counter.syncCommits == 1)
            let second = channel.eventLoop.makePromise(of: Void.self)
            #expect(!handler.commitAfterNextStatement(second), "the transaction has ended")
            second.succeed()
            #expect(channel.isActive)
            _ = try channel.finish()
        }
    }

    /// In the transaction its `Sync` commits, a failed statement reaches the driver as
    /// itself and the promise fails `rolledBack`; a refusal at the commit, after the
    /// statement's own `CommandComplete`, is taken out of the driver's stream and fails the
    /// promise with what PostgreSQL said. The connection stays either way.
    @Test(arguments: [
        (message("E", Array("SERROR\0C22012\0Mdivision by zero\0\0".utf8)), [UInt8](), PipelinedBeginHandler.CommitOutcome.rolledBack),
        (message("2", []) + message("C", Array("INSERT 0 1".utf8) + [0]),
         message("E", Array("SERROR\0C23505\0Mduplicate key value\0\0".utf8)),
         PipelinedBeginHandler.CommitOutcome.refused(sqlState: "23505", message: "duplicate key value")),
    ])
    func aTransactionItsSyncDidNotCommitFailsItsPromise(statement: [UInt8], atCommit: [UInt8], outcome: PipelinedBeginHandler.CommitOutcome) throws {
        let (channel, handler, counter) = try channel()
        let committed = channel.eventLoop.makePromise(of: Void.self)
        handler.arm()
        #expect(handler.commitAfterNextStatement(committed))
        try channel.writeAndFlush(ByteBuffer(bytes: Self.message("B", []) + Self.message("E", [0, 0, 0, 0, 0]) + Self.message("S", []))).wait()
        #expect(Self.types(try written(channel)) == "BES")
        let ready = Self.message("Z", [UInt8(ascii: "I")])
        let result = Answer(committed.futureResult)
        try channel.writeInbound(ByteBuffer(bytes: statement + atCommit + ready))
        #expect(try received(channel) == statement + ready)
        #expect(throws: outcome) { try #require(result.result).get() }
        #expect(counter.syncCommits == 0)
        #expect(channel.isActive)
        _ = try channel.finish()
    }

    /// An armed write of more than one statement (or none that executes) keeps `BEGIN`, and
    /// `COMMIT` follows as a statement of its own: only one statement is one transaction.
    @Test func aWriteOfTwoStatementsKeepsBeginAndCommit() throws {
        let one: [UInt8] = Self.message("B", []) + Self.message("E", [0, 0, 0, 0, 0]) + Self.message("S", [])
        let (channel, handler, _) = try channel()
        let committed = channel.eventLoop.makePromise(of: Void.self)
        handler.arm()
        #expect(handler.commitAfterNextStatement(committed))
        try channel.writeAndFlush(ByteBuffer(bytes: one + one)).wait()
        #expect(Self.types(try written(channel)) == "PBEBESBESQ")
        let statementReply = Self.message("2", []) + Self.message("C", Array("SELECT 1".utf8) + [0]) + Self.message("Z", [UInt8(ascii: "T")])
        let result = Answer(committed.futureResult)
        try channel.writeInbound(ByteBuffer(bytes: Self.beginReply() + statementReply + statementReply + Self.commitReply))
        #expect(try received(channel) == statementReply + statementReply)
        #expect(throws: Never.self) { try #require(result.result).get() }
        _ = try channel.finish()
    }

    /// Once `COMMIT` has gone, a statement written before `disarm()` would run outside
    /// the transaction and its scope: the connection closes instead of sending it.
    @Test func aStatementAfterThePipelinedCommitClosesTheConnection() throws {
        let statement: [UInt8] = Self.message("B", []) + Self.message("E", [0, 0, 0, 0, 0]) + Self.message("S", [])
        let (channel, handler, _) = try channel()
        let committed = channel.eventLoop.makePromise(of: Void.self)
        #expect(handler.commitAfterNextStatement(committed))
        let answer = Answer(committed.futureResult)
        try channel.writeAndFlush(ByteBuffer(bytes: statement)).wait()
        _ = try written(channel)
        let second = channel.eventLoop.makePromise(of: Void.self)
        #expect(!handler.commitAfterNextStatement(second), "the transaction has ended")
        second.succeed()
        #expect(throws: PipelinedBeginHandler.StatementAfterCommit.self) { try channel.writeAndFlush(ByteBuffer(bytes: statement)).wait() }
        #expect(try written(channel).isEmpty)
        #expect(!channel.isActive)
        #expect(throws: PipelinedBeginHandler.CommitOutcome.connectionClosed) { try #require(answer.result).get() }
    }

    /// After `disarm()` (the block has ended) statements go again; a `COMMIT` no
    /// statement carried is taken back, its promise failed with `notSent`.
    @Test func disarmTakesBackAnUnsentCommitAndEndsASentOne() throws {
        let statement: [UInt8] = Self.message("B", []) + Self.message("E", [0, 0, 0, 0, 0]) + Self.message("S", [])
        let (channel, handler, _) = try channel()
        let sent = channel.eventLoop.makePromise(of: Void.self)
        #expect(handler.commitAfterNextStatement(sent))
        try channel.writeAndFlush(ByteBuffer(bytes: statement)).wait()
        _ = try written(channel)
        let sentAnswer = Answer(sent.futureResult)
        try channel.writeInbound(ByteBuffer(bytes: Self.statementReply + Self.commitReply))
        #expect(throws: Never.self) { try #require(sentAnswer.result).get() }
        handler.disarm()
        try channel.writeAndFlush(ByteBuffer(bytes: statement)).wait()
        #expect(try written(channel) == statement)
        try channel.writeInbound(ByteBuffer(bytes: Self.statementReply))
        _ = try received(channel)

        let unsent = channel.eventLoop.makePromise(of: Void.self)
        #expect(handler.commitAfterNextStatement(unsent))
        let unsentAnswer = Answer(unsent.futureResult)
        handler.disarm()
        #expect(throws: PipelinedBeginHandler.CommitOutcome.notSent) { try #require(unsentAnswer.result).get() }
        try channel.writeAndFlush(ByteBuffer(bytes: statement)).wait()
        #expect(try written(channel) == statement)
        _ = try channel.finish()
    }

    // MARK: Against PostgreSQL

    func withPool<Result: Sendable>(
        _ db: TestDatabase, perLoop: Int = 2, loops: [any EventLoop] = [MultiThreadedEventLoopGroup.singleton.next()],
        idleTimeout: TimeAmount = RequestConnectionPool.defaultIdleTimeout, _ body: @Sendable (RequestConnectionPool) async throws -> Result
    ) async throws -> Result {
        let pool = try #require(
            try RequestConnectionPool(url: db.app, connectionsPerLoop: perLoop, eventLoops: loops, idleTimeout: idleTimeout, logger: TestDatabase.logger))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await pool.run() }
            defer { group.cancelAll() }
            return try await body(pool)
        }
    }

    func setting(_ connection: PostgresConnection) async throws -> String {
        var value = ""
        for try await text in try await connection.query("SELECT coalesce(current_setting('atrium.probe', true), '')", logger: TestDatabase.logger)
            .decode(String.self)
        {
            value = text
        }
        return value
    }

    /// Runs `body` on a connection of a new pool, on the connection's event loop (where a
    /// request holds it).
    func onPooledConnection(
        _ body: @escaping @Sendable (RequestConnectionPool, RequestConnection, PostgresConnection) async throws -> Void
    ) async throws {
        let db = try await TestDatabase.create()
        try await withPool(db) { pool in
            try await pool.withConnection { pooled in
                try await EventLoopTaskExecutor.run(on: pooled.connection.eventLoop) { try await body(pool, pooled, pooled.connection) }
            }
        }
    }

    /// The pipelining relies on how PostgresNIO (pinned to 1.33.x in Package.swift) frames
    /// a statement: all its messages in one write, ending with its `Sync` (`Parse`,
    /// `Describe`, `Bind`, `Execute`, `Sync` for an unnamed one; `Bind`, `Execute`, `Sync`
    /// for a prepared one, after a `Parse`, `Describe`, `Sync` of its own). A driver that splits
    /// them, or sends a `Flush`, would leave every request on the slower path (BEGIN and
    /// COMMIT of their own) without failing anything else: this fails first, naming what
    /// the driver wrote.
    @Test func theDriverWritesAStatementAsOneWriteEndingWithItsSync() async throws {
        final class WriteSpy: ChannelOutboundHandler, RemovableChannelHandler, @unchecked Sendable {
            typealias OutboundIn = ByteBuffer
            var writes: [String] = []
            func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
                writes.append(PipelinedBeginTests.types(Array(unwrapOutboundIn(data).readableBytesView)))
                context.write(data, promise: promise)
            }
        }
        try await onPooledConnection { _, pooled, connection in
            let spy = WriteSpy()
            // On the plaintext side of TLS, where the connection has it.
            let operations = pooled.channel.pipeline.syncOperations
            if let tls = try? operations.handler(type: NIOSSLClientHandler.self) {
                try operations.addHandler(spy, position: .after(tls))
            } else {
                try operations.addHandler(spy, position: .first)
            }
            let logger = TestDatabase.logger
            for _ in 0..<2 { _ = try await PreparedStatements.shared.rows(SQL("SELECT \(1)::int"), on: connection, logger: logger) }
            _ = try await connection.query("SELECT 1", logger: logger)
            try await pooled.channel.pipeline.removeHandler(spy).get()
            // A prepared statement: prepared once (Parse, Describe, Sync), then bound and
            // executed with its Sync in one write; an unnamed one all in one write.
            #expect(spy.writes == ["PDS", "BES", "BES", "PDBES"], "PostgresNIO frames statements differently now: \(spy.writes)")
        }
    }

    @Test func theStatementAfterBeginRunsInItsTransactionWithoutARoundTripForBegin() async throws {
        try await onPooledConnection { pool, pooled, connection in
            let before = pool.counters.roundTrips
            pooled.beginWithNextStatement()
            try await connection.query("SELECT set_config('atrium.probe', 'scoped', true)", logger: TestDatabase.logger)
            // Transaction-local, so still set: the two statements share a transaction.
            #expect(try await setting(connection) == "scoped")
            #expect(pool.counters.roundTrips - before == 2)
            try await connection.query("COMMIT", logger: TestDatabase.logger)
            #expect(try await setting(connection) == "")

            // Without BEGIN each statement is a transaction of its own: the setting is gone.
            try await connection.query("SELECT set_config('atrium.probe', 'scoped', true)", logger: TestDatabase.logger)
            #expect(try await setting(connection) == "")
        }
    }

    /// Settings made with the pipelined BEGIN hold for the statement they travel with and
    /// the rest of its transaction: one round trip for all three. Their values are bound,
    /// so any text arrives as it was.
    @Test func settingsWithBeginCostNoRoundTripOfTheirOwn() async throws {
        try await onPooledConnection { pool, pooled, connection in
            for value in ["scoped", "it's; SELECT 1 --"] {
                let before = pool.counters.roundTrips
                pooled.beginWithNextStatement()
                #expect(pooled.setLocallyWithBegin([("atrium.probe", value)]))
                #expect(try await setting(connection) == value)
                #expect(pool.counters.roundTrips - before == 1)
                try await connection.query("COMMIT", logger: TestDatabase.logger)
                #expect(try await setting(connection) == "")
            }
            // Taken back with its BEGIN: nothing is set, nothing is open.
            pooled.beginWithNextStatement()
            #expect(pooled.setLocallyWithBegin([("atrium.probe", "withdrawn")]))
            #expect(pooled.withdrawUnsentBegin())
            #expect(try await setting(connection) == "")
            // After BEGIN has gone, settings are the caller's to make.
            pooled.beginWithNextStatement()
            #expect(try await setting(connection) == "")
            #expect(!pooled.setLocallyWithBegin([("atrium.probe", "late")]))
            try await connection.query("COMMIT", logger: TestDatabase.logger)
        }
    }

    /// `BEGIN`, a write and `COMMIT` in one round trip, committed; a failing statement
    /// fails as itself, the `COMMIT` behind it is answered `ROLLBACK`, nothing is written,
    /// and the connection serves the next statement.
    @Test func aCommitWithTheLastStatementCostsNoRoundTripOfItsOwn() async throws {
        try await onPooledConnection { pool, pooled, connection in
            let logger = TestDatabase.logger
            try await connection.query("CREATE TEMP TABLE probe (n int)", logger: logger)
            func count() async throws -> Int {
                var count = -1
                for try await n in try await connection.query("SELECT count(*)::int FROM probe", logger: logger).decode(Int.self) { count = n }
                return count
            }
            let before = pool.counters.roundTrips
            pooled.beginWithNextStatement()
            #expect(pooled.setLocallyWithBegin([("atrium.probe", "scoped")]))
            let commit = try #require(pooled.commitAfterNextStatement())
            try await connection.query("INSERT INTO probe SELECT 1 WHERE current_setting('atrium.probe') = 'scoped'", logger: logger)
            try await commit.get()
            #expect(pool.counters.roundTrips - before == 1)
            #expect(!pooled.withdrawUnsentBegin())  // the block's end: statements may follow
            #expect(try await count() == 1)
            #expect(try await setting(connection) == "", "the transaction has ended")

            pooled.beginWithNextStatement()
            let refused = try #require(pooled.commitAfterNextStatement())
            await #expect(throws: PSQLError.self) { try await connection.query("INSERT INTO probe VALUES (2), (1 / 0)", logger: logger) }
            await #expect(throws: PipelinedBeginHandler.CommitOutcome.rolledBack) { try await refused.get() }
            _ = pooled.withdrawUnsentBegin()
            #expect(try await count() == 1)
            #expect(try await setting(connection) == "")

            // Refused at the commit itself (a deferred constraint, checked when the Sync
            // commits): the statement succeeded, the promise says what PostgreSQL said, and
            // nothing is written.
            try await connection.query("CREATE TEMP TABLE deferred (n int UNIQUE DEFERRABLE INITIALLY DEFERRED)", logger: logger)
            try await connection.query("INSERT INTO deferred VALUES (1)", logger: logger)
            pooled.beginWithNextStatement()
            let atCommit = try #require(pooled.commitAfterNextStatement())
            try await connection.query("INSERT INTO deferred VALUES (1)", logger: logger)
            do {
                try await atCommit.get()
                Issue.record("the duplicate committed")
            } catch PipelinedBeginHandler.CommitOutcome.refused(let state, _, let constraint, let table, _) {
                #expect(state == "23505")
                #expect(constraint == "deferred_n_key")
                #expect(table == "deferred")
            }
            _ = pooled.withdrawUnsentBegin()
            var rows = -1
            for try await n in try await connection.query("SELECT count(*)::int FROM deferred", logger: logger).decode(Int.self) { rows = n }
            #expect(rows == 1)
        }
    }

    /// `lastStatement` allows one statement and none after it, whether its `COMMIT` is
    /// pipelined (the request's own transaction) or not (any other), so a block that
    /// breaks the rule fails the same way everywhere, before its statement is sent.
    @Test(arguments: [true, false]) func lastStatementAllowsOneStatementAndNoneAfter(pipelined: Bool) async throws {
        try await onPooledConnection { _, pooled, connection in
            let logger = TestDatabase.logger
            let metering = Metering(registry: try ModuleRegistry([]), logger: logger)
            func transaction() -> TenantTransaction {
                let request = RequestTransaction(connection: connection, logger: logger, lease: RequestLease(connection: connection, pipelined: pooled))
                var transaction = TenantTransaction(
                    connection: connection, tenantID: UUID(), principalID: nil, logger: logger, jobs: JobQueue(logger: logger), metering: metering,
                    channels: ["probe.events"])
                transaction.gate = StatementGate(request: pipelined ? request : nil)
                return transaction
            }
            /// The block's end: its transaction committed where `COMMIT` was not pipelined,
            /// and the connection serves the next statement either way.
            func end() async throws {
                if pipelined { _ = pooled.withdrawUnsentBegin() } else { try await connection.query("COMMIT", logger: logger) }
                #expect(try await setting(connection) == "")
            }
            pooled.beginWithNextStatement()
            let one = transaction()
            let rows = try await one.lastStatement { try await one.query("SELECT 1") }
            #expect(rows.count == 1)
            // Every call that sends a statement is refused after it, before sending it.
            let mail = try MailTemplate(name: "probe", subject: "Probe", text: "Hello")
            let calls: [(String, @Sendable () async throws -> Void)] = [
                ("query", { try await one.query("SELECT 2") }),
                ("lastStatement", { _ = try await one.lastStatement { 1 } }),
                ("recordUsage", { try await one.recordUsage("probe.calls", idempotencyKey: "k") }),
                ("enqueue", { try await one.enqueue("probe.job", payload: ["a": 1]) }),
                ("typed enqueue", { try await one.enqueue(JobKind<[String: Int]>("probe.job"), ["a": 1]) }),
                ("notify", { try await one.notify(channel: "probe.events", id: "1") }),
                ("sendMail", { try await one.sendMail(mail, to: "someone@example.com", data: ["a": 1]) }),
                ("requireVisible", { try await one.requireVisible(Reference("contact_id", table: "probe", id: UUID())) }),
            ]
            for (name, call) in calls {
                await #expect(throws: StatementGate.Closed.self, "\(name) after lastStatement") { try await call() }
            }
            try await end()

            pooled.beginWithNextStatement()
            let two = transaction()
            await #expect(throws: StatementGate.Closed.self) {
                try await two.lastStatement {
                    try await two.query("SELECT 1")
                    try await two.query("SELECT 2")
                }
            }
            try await end()
        }
    }

    @Test func aFailingFirstStatementFailsAsItselfAndTheConnectionServesTheNextRequest() async throws {
        let db = try await TestDatabase.create()
        try await withPool(db, perLoop: 1) { pool in
            try await pool.withConnection { pooled in
                let connection = pooled.connection
                try await EventLoopTaskExecutor.run(on: connection.eventLoop) {
                    pooled.beginWithNextStatement()
                    await expectDatabaseError("22012") { try await connection.query("SELECT 1 / 0", logger: TestDatabase.logger) }
                    // Still in the failed transaction that BEGIN opened.
                    await expectDatabaseError("25P02") { try await connection.query("SELECT 1", logger: TestDatabase.logger) }
                    try await connection.query("ROLLBACK", logger: TestDatabase.logger)
                }
            }
            try await pool.withConnection { pooled in
                let connection = pooled.connection
                try await EventLoopTaskExecutor.run(on: connection.eventLoop) {
                    pooled.beginWithNextStatement()
                    try await connection.query("SELECT set_config('atrium.probe', 'again', true)", logger: TestDatabase.logger)
                    #expect(try await setting(connection) == "again")
                    try await connection.query("COMMIT", logger: TestDatabase.logger)
                }
            }
        }
    }

    @Test(.timeLimit(.minutes(5))) func aWaiterGetsTheReleasedConnectionAndACancelledOneLeaves() async throws {
        let db = try await TestDatabase.create()
        try await withPool(db, perLoop: 1) { pool in
            let (held, release) = AsyncStream.makeStream(of: Void.self)
            let (leased, leasedSignal) = AsyncStream.makeStream(of: ObjectIdentifier.self)
            try await withThrowingTaskGroup(of: ObjectIdentifier?.self) { group in
                group.addTask {
                    try await pool.withConnection { pooled in
                        leasedSignal.yield(ObjectIdentifier(pooled.connection))
                        for await _ in held {}
                        return ObjectIdentifier(pooled.connection)
                    }
                }
                var signals = leased.makeAsyncIterator()
                let first = try #require(await signals.next())
                // The only connection is out: a second lease waits, and can be cancelled.
                let cancelled = Task { try await pool.withConnection { _ in () } }
                try #require(await eventually { pool.waiting == 1 }, "the second lease never queued")
                cancelled.cancel()
                await #expect(throws: CancellationError.self) { try await cancelled.value }
                // It left the queue: the released connection cannot go to a waiter that is gone.
                #expect(pool.waiting == 0)
                group.addTask { try await pool.withConnection { pooled in ObjectIdentifier(pooled.connection) } }
                try #require(await eventually { pool.waiting == 1 }, "the third lease never queued")
                release.finish()
                var seen: [ObjectIdentifier?] = []
                for try await id in group { seen.append(id) }
                // The waiter got the same connection once it came back.
                #expect(seen == [first, first])
            }
        }
    }

    func backendPID(_ connection: PostgresConnection) async throws -> Int32 {
        let rows = try await connection.query("SELECT pg_backend_pid()", logger: TestDatabase.logger).collect()
        return try #require(rows.first).decode(Int32.self)
    }

    /// Ends `connection`'s backend as an operator would, and waits until the connection
    /// has seen it close.
    func terminateBackend(of connection: PostgresConnection, in db: TestDatabase) async throws {
        let pid = try await backendPID(connection)
        try await withPostgresConnection(db.superuser, logger: TestDatabase.logger) { superuser in
            try await superuser.query("SELECT pg_terminate_backend(\(pid))", logger: TestDatabase.logger)
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while !connection.isClosed, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(connection.isClosed)
    }

    /// A connection whose backend went away while it was idle (a restart, an operator's
    /// pg_terminate_backend) is dropped at the next lease, and a new one takes its place.
    @Test(.timeLimit(.minutes(5))) func aConnectionThatDiedIdleIsReplaced() async throws {
        let db = try await TestDatabase.create()
        try await withPool(db, perLoop: 1) { pool in
            let (first, connection) = try await pool.withConnection { pooled in (try await backendPID(pooled.connection), pooled.connection) }
            try await terminateBackend(of: connection, in: db)
            let second = try await pool.withConnection { pooled in try await backendPID(pooled.connection) }
            #expect(second != first)
        }
    }

    /// A request whose backend died mid-transaction ends: its ROLLBACK is not written to
    /// the closed connection (where PostgresNIO would never answer it), and its COMMIT
    /// fails. Run in a task of its own and waited for with a bound, so that a regression
    /// fails here rather than hanging the run.
    @Test func aRequestWhoseBackendDiedEnds() async throws {
        let db = try await TestDatabase.create()
        try await withPool(db, perLoop: 1) { pool in
            try await pool.withConnection { pooled in
                let connection = pooled.connection
                try await terminateBackend(of: connection, in: db)
                let ended = Atomic<Int>(0)
                // How the commit ended: 1 ConnectionLost, 2 another error, 3 no error. An
                // expectation inside the detached task would not reach this test (it runs
                // outside the test's task), so the task reports and the test checks.
                let commitOutcome = Atomic<Int>(0)
                let rolledBack = RequestTransaction(connection: connection, logger: TestDatabase.logger)
                let committed = RequestTransaction(connection: connection, logger: TestDatabase.logger)
                Task.detached {
                    try? await rolledBack.finish(success: false)
                    ended.add(1, ordering: .relaxed)
                    do {
                        try await committed.finish(success: true)
                        commitOutcome.store(3, ordering: .relaxed)
                    } catch is RequestTransaction.ConnectionLost {
                        commitOutcome.store(1, ordering: .relaxed)
                    } catch {
                        commitOutcome.store(2, ordering: .relaxed)
                    }
                    ended.add(1, ordering: .relaxed)
                }
                let waited = ContinuousClock.now + .seconds(10)
                while ended.load(ordering: .relaxed) < 2, ContinuousClock.now < waited { try await Task.sleep(for: .milliseconds(10)) }
                #expect(ended.load(ordering: .relaxed) == 2, "the transaction of a request whose connection closed never ended")
                #expect(commitOutcome.load(ordering: .relaxed) == 1, "the commit on a dead connection must fail with ConnectionLost")
            }
        }
    }

    @Test func aClosedPoolRefusesLeasesAndClosesItsConnections() async throws {
        let db = try await TestDatabase.create()
        let pool = try #require(try RequestConnectionPool(
            url: db.app, connectionsPerLoop: 2, eventLoops: [MultiThreadedEventLoopGroup.singleton.next()], logger: TestDatabase.logger))
        let running = Task { try await pool.run() }
        let connection = try await pool.withConnection { pooled in pooled.connection }
        #expect(!connection.isClosed)
        running.cancel()
        try await running.value
        #expect(connection.isClosed)
        await #expect(throws: (any Error).self) { try await pool.withConnection { _ in () } }
    }

    // MARK: The request path

    /// The application over `database`, with a sales rep who owns three contacts.
    /// With `listening`, the tenant directory's listener runs as under `atrium serve`, so
    /// sessions checked once are served from memory.
    /// A create whose `INSERT` commits with it is one round trip; with an Idempotency-Key
    /// the kernel stores the answer after the handler, in the same transaction, so there
    /// the commit waits for the block's end — and a retry gets the first answer.
    @Test func aCreateCommitsWithItsInsertUnlessAnIdempotencyKeyFollowsIt() async throws {
        try await onSalesLoop(try await salesDatabase()) { client, token, requests in
            let contacts = "/v1/tenants/acme/sales/contacts"
            #expect(try await client.send(.post, contacts, token: token, json: #"{"email":"warm@example.com"}"#).status == .created)
            let before = requests.counters.roundTrips
            #expect(try await client.send(.post, contacts, token: token, json: #"{"email":"one@example.com"}"#).status == .created)
            #expect(requests.counters.roundTrips - before == 1)

            let key: HTTPFields = [.idempotencyKey: "pipelined-1"]
            let first = try await client.send(.post, contacts, token: token, json: #"{"email":"keyed@example.com"}"#, headers: key)
            let again = try await client.send(.post, contacts, token: token, json: #"{"email":"keyed@example.com"}"#, headers: key)
            #expect(first.status == .created)
            #expect(again.status == .created)
            #expect(json(first)["id"]?.string != nil)
            #expect(json(again)["id"]?.string == json(first)["id"]?.string)
            let page = try await client.send(.get, contacts + "?limit=50", token: token)
            #expect(json(page)["data"]?.array?.count == 6)
        }
    }

    /// A value the commit refuses (a unique constraint made deferrable, so PostgreSQL
    /// checks it when the create's Sync commits) is answered as the statement's refusal
    /// would be — 409 `duplicate` naming the field — and writes nothing.
    @Test func aValueRefusedAtTheCommitIsTheClientsProblem() async throws {
        let db = try await salesDatabase()
        try await db.withOwner { connection in
            try await connection.query("DROP INDEX sales_contacts_email", logger: TestDatabase.logger)
            try await connection.query(
                "ALTER TABLE sales_contacts ADD CONSTRAINT sales_contacts_email_key UNIQUE (tenant_id, email) DEFERRABLE INITIALLY DEFERRED",
                logger: TestDatabase.logger)
        }
        try await onSalesLoop(db) { client, token, requests in
            let contacts = "/v1/tenants/acme/sales/contacts"
            #expect(try await client.send(.post, contacts, token: token, json: #"{"email":"twice@example.com"}"#).status == .created)
            let before = requests.counters.syncCommits
            let again = try await client.send(.post, contacts, token: token, json: #"{"email":"twice@example.com"}"#)
            #expect(again.status == .conflict)
            #expect(json(again)["code"]?.string == "duplicate")
            #expect(json(again)["detail"]?.string == "another record already has this email")
            #expect(requests.counters.syncCommits == before, "the Sync did not commit")
            let page = try await client.send(.get, contacts + "?limit=50", token: token)
            #expect(json(page)["data"]?.array?.compactMap { $0["email"]?.string }.filter { $0 == "twice@example.com" }.count == 1)
        }
    }

    /// Runs `body` against a Sales app on `db` whose sessions come from memory, on one
    /// event loop as a served connection's requests are, with the request pool it counts.
    func onSalesLoop(
        _ db: TestDatabase, _ body: @escaping @Sendable (any TestClientProtocol, _ token: String, RequestConnectionPool) async throws -> Void
    ) async throws {
        try await db.withApp(maximumConnections: 8) { database in
            let requests = try #require(database.requests)
            try await withSalesApp(db, database, listening: true) { client, token in
                try await EventLoopTaskExecutor.run(on: MultiThreadedEventLoopGroup.singleton.next()) { try await body(client, token, requests) }
            }
        }
    }

    func withSalesApp(
        _ db: TestDatabase, _ database: Database, listening: Bool = false,
        _ body: @escaping @Sendable (any TestClientProtocol, _ token: String) async throws -> Void
    ) async throws {
        let runtime = try await AtriumRuntime.prepareForTest(db, modules: [SalesModule()], database: database)
        let app = Application(router: runtime.router, logger: TestDatabase.logger)
        let serve = {
            try await app.test(.router) { client in
                let token = try await client.login("acme", "rep@acme.test", "correct horse battery").access
                for index in 0..<3 {
                    let made = try await client.send(.post, "/v1/tenants/acme/sales/contacts", token: token, json: #"{"email":"c\#(index)@example.com"}"#)
                    #expect(made.status == .created)
                }
                try await body(client, token)
            }
        }
        if listening {
            try await runtime.dependencies.directory.whileListening(on: database, serve)
        } else {
            try await serve()
        }
    }

    func salesDatabase() async throws -> TestDatabase {
        let db = try await TestDatabase.create(modules: [SalesModule()])
        let tenant = try await db.createTenant("acme", modules: ["sales"])
        _ = try await db.createUser("rep@acme.test", password: "correct horse battery", roles: ["sales_rep"], in: tenant)
        return db
    }

    /// Without the request pool (over TLS), a request's BEGIN is a statement of its own,
    /// and the transaction is scoped all the same: the rep sees their own contacts.
    @Test func withoutTheRequestPoolBeginIsAStatementOfItsOwn() async throws {
        let db = try await salesDatabase()
        try await withPostgresClient(db.app, maximumConnections: 4, logger: TestDatabase.logger) { client in
            let database = Database(client: client, maximumConnections: 4)
            #expect(database.requests == nil)
            try await withSalesApp(db, database) { client, token in
                let page = try await client.send(.get, "/v1/tenants/acme/sales/contacts?limit=2", token: token)
                #expect(page.status == .ok)
                #expect(json(page)["data"]?.array?.count == 2)
            }
        }
    }

    /// An owner-scoped list as a sales rep whose session is served from memory: BEGIN, the
    /// scope, the page's SELECT and COMMIT (the list's `lastStatement`) in one write.
    /// Without the listener every session is checked, in the statement that travels with
    /// BEGIN: two round trips.
    @Test(arguments: [true, false]) func anAuthenticatedReadIsOneRoundTrip(sessionsFromMemory: Bool) async throws {
        let db = try await salesDatabase()
        try await db.withApp(maximumConnections: 8) { database in
            let requests = try #require(database.requests)
            try await withSalesApp(db, database, listening: sessionsFromMemory) { client, token in
                let list = "/v1/tenants/acme/sales/contacts?limit=2"
                // On one event loop, as a served connection's requests are: one loop's pool,
                // whose last-used connection has its statements prepared by the first read.
                let before = try await EventLoopTaskExecutor.run(on: MultiThreadedEventLoopGroup.singleton.next()) {
                    #expect(try await client.send(.get, list, token: token).status == .ok)
                    let before = (requests.counters.roundTrips, requests.leases, requests.counters.syncCommits)
                    for _ in 0..<5 {
                        let page = try await client.send(.get, list, token: token)
                        #expect(page.status == .ok)
                        #expect(json(page)["data"]?.array?.count == 2)
                    }
                    return before
                }
                #expect(requests.leases - before.1 == 5)
                #expect(requests.counters.roundTrips - before.0 == 5 * (sessionsFromMemory ? 1 : 2))
                // From memory, each read is one statement after its scope: its Sync commits it.
                #expect(requests.counters.syncCommits - before.2 == (sessionsFromMemory ? 5 : 0))
                try await client.execute(uri: "/metrics", method: .get) { response in
                    let text = String(buffer: response.body)
                    #expect(text.contains("atrium_db_request_round_trips_total \(requests.counters.roundTrips)"))
                    #expect(text.contains("atrium_db_request_connections_total \(requests.leases)"))
                    #expect(text.contains("atrium_db_request_sync_commits_total \(requests.counters.syncCommits)"))
                }
            }
        }
    }
}

/// How a promise was completed, read back after the embedded loop ran.
final class Answer: Sendable {
    private let stored = Mutex<Result<Void, any Error>?>(nil)

    init(_ future: EventLoopFuture<Void>) {
        future.whenComplete { result in self.stored.withLock { $0 = result } }
    }

    var result: Result<Void, any Error>? { stored.withLock { $0 } }
}
