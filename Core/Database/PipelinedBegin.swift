import NIOCore
import Synchronization

/// Sends a request's `BEGIN` in the same write as the statement after it, so that opening
/// the transaction costs no round trip of its own.
///
/// PostgresNIO sends each statement as its own message sequence and waits for its
/// `ReadyForQuery` before it writes the next, so `BEGIN` and the statement that scopes the
/// transaction to the tenant took two round trips. This handler sits between the socket
/// and the driver's handler: once armed, it puts a `Query("BEGIN")` message in front of
/// the driver's next write, and on the way back it takes that `BEGIN`'s reply
/// (`CommandComplete`, `ReadyForQuery`) out of the byte stream before the driver sees it.
/// The driver sees the replies it expects for the statements it sent; PostgreSQL runs the
/// two in order, the statement inside the transaction `BEGIN` opened.
///
/// A `BEGIN` that PostgreSQL refuses (it cannot on an idle connection, but a statement
/// after a failed `BEGIN` would run outside any transaction, and its transaction-local
/// scope would be gone by the next one) closes the connection.
///
/// Transaction-local settings can travel in the same write (`setWithNextStatement`): the
/// request's scope (tenant, principal, owner scope) follows the `BEGIN` as one statement
/// of the handler's own, `SELECT set_config($1, $2, true), …`, prepared once per
/// connection and bound with the values, whose reply (`ParseComplete`, `BindComplete`,
/// its row, `CommandComplete`, `ReadyForQuery`) is taken out the same way. A read is then
/// two round trips: the handler's statement with everything before it, and `COMMIT`. A
/// refused setting closes the connection as a refused `BEGIN` does: the driver's
/// statement behind it then fails with the connection, never runs unscoped.
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

    /// `Query` ("BEGIN"): the type byte, the length (itself, the text and its NUL), the text.
    static let beginMessage: ByteBuffer = {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(ascii: "Q"))
        buffer.writeInteger(Int32(4 + 5 + 1))
        buffer.writeString("BEGIN")
        buffer.writeInteger(UInt8(0))
        return buffer
    }()

    /// Counts the message sequences written (each one waits for its answer): the
    /// connection's round trips.
    let roundTrips: RoundTripCounter
    private var armed = false
    /// Settings to make, transaction-locally, right after the armed `BEGIN`.
    private var settings: [(name: String, value: String)] = []
    /// The numbers of settings whose statement this connection has prepared.
    private var preparedSettingCounts: Set<Int> = []
    /// The handler's own statements sent, in order, whose `ReadyForQuery` has not come back.
    private var unanswered: [OwnStatement] = []

    enum OwnStatement {
        case begin
        case settings
    }
    /// Bytes held back while such a reply is read: a message can arrive in pieces.
    private var held = ByteBuffer()

    init(roundTrips: RoundTripCounter) {
        self.roundTrips = roundTrips
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

    /// Forgets an `arm()` no statement followed (a connection going back to its pool, a
    /// request that ran no statement): true when there was one, so that the transaction
    /// it would have opened needs no `COMMIT` either.
    @discardableResult
    func disarm() -> Bool {
        defer {
            armed = false
            settings = []
        }
        return armed
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if armed {
            armed = false
            unanswered.append(.begin)
            if settings.isEmpty {
                context.write(wrapOutboundOut(Self.beginMessage), promise: nil)
            } else {
                var prefix = context.channel.allocator.buffer(capacity: 256)
                prefix.writeImmutableBuffer(Self.beginMessage)
                writeSettings(settings, to: &prefix)
                settings = []
                unanswered.append(.settings)
                context.write(wrapOutboundOut(prefix), promise: nil)
            }
        }
        context.write(data, promise: promise)
    }

    /// `SELECT set_config($1, $2, true), …` for `settings`, in the extended protocol:
    /// `Parse` the first time this connection sends that many settings, then `Bind` (the
    /// names and values as text parameters), `Execute` and `Sync`. The SQL text is the
    /// same for every request with as many settings; the values travel bound.
    private func writeSettings(_ settings: [(name: String, value: String)], to buffer: inout ByteBuffer) {
        let statement = "atrium_pipelined_settings_\(settings.count)"
        if preparedSettingCounts.insert(settings.count).inserted {
            let calls = (0..<settings.count).map { "set_config($\(2 * $0 + 1), $\(2 * $0 + 2), true)" }
            Self.message("P", to: &buffer) { body in
                body.writeNullTerminatedString(statement)
                body.writeNullTerminatedString("SELECT " + calls.joined(separator: ", "))
                body.writeInteger(Int16(2 * settings.count))
                for _ in 0..<(2 * settings.count) { body.writeInteger(Int32(25)) }  // text
            }
        }
        Self.message("B", to: &buffer) { body in
            body.writeNullTerminatedString("")  // the unnamed portal
            body.writeNullTerminatedString(statement)
            body.writeInteger(Int16(0))  // every parameter in text format
            body.writeInteger(Int16(2 * settings.count))
            for setting in settings {
                for text in [setting.name, setting.value] {
                    body.writeInteger(Int32(text.utf8.count))
                    body.writeString(text)
                }
            }
            body.writeInteger(Int16(0))  // the result in text format
        }
        Self.message("E", to: &buffer) { body in
            body.writeNullTerminatedString("")
            body.writeInteger(Int32(0))  // every row
        }
        Self.message("S", to: &buffer) { _ in }
    }

    /// A frontend message: its type, its length (itself included), its body.
    private static func message(_ type: Character, to buffer: inout ByteBuffer, _ body: (inout ByteBuffer) -> Void) {
        buffer.writeInteger(type.asciiValue ?? 0)
        let lengthAt = buffer.writerIndex
        buffer.writeInteger(Int32(0))
        body(&buffer)
        buffer.setInteger(Int32(buffer.writerIndex - lengthAt), at: lengthAt)
    }

    func flush(context: ChannelHandlerContext) {
        roundTrips.add()
        context.flush()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !unanswered.isEmpty else {
            context.fireChannelRead(data)
            return
        }
        var incoming = unwrapInboundIn(data)
        if held.readableBytes == 0 { held = incoming } else { held.writeBuffer(&incoming) }
        while let answering = unanswered.first {
            guard let type = held.getInteger(at: held.readerIndex, as: UInt8.self),
                let length = held.getInteger(at: held.readerIndex + 1, as: Int32.self)
            else { return }  // the rest of the header is still on its way
            guard length >= 4 else {
                fail(context, MalformedReply())
                return
            }
            guard let message = held.readSlice(length: 1 + Int(length)) else { return }  // the rest of the message
            switch type {
            // CommandComplete; ParseComplete, BindComplete and the row of the settings
            case UInt8(ascii: "C"), UInt8(ascii: "1"), UInt8(ascii: "2"), UInt8(ascii: "D"):
                continue
            case UInt8(ascii: "Z"):  // ReadyForQuery: the next reply is the next statement's
                unanswered.removeFirst()
            case UInt8(ascii: "E"):
                fail(context, answering == .begin ? BeginRefused() : SettingRefused())
                return
            case UInt8(ascii: "N"), UInt8(ascii: "S"), UInt8(ascii: "A"):
                // a notice, a parameter status or a notification: the driver's to handle
                context.fireChannelRead(wrapInboundOut(message))
            default:
                fail(context, MalformedReply())
                return
            }
        }
        if held.readableBytes > 0 {
            let rest = held
            context.fireChannelRead(wrapInboundOut(rest))
        }
        held = ByteBuffer()
    }

    private func fail(_ context: ChannelHandlerContext, _ error: any Error) {
        unanswered = []
        held = ByteBuffer()
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }
}

/// Round trips of a pool's connections, for `/metrics` and the request-path bench.
final class RoundTripCounter: Sendable {
    private let count = Atomic<Int>(0)

    func add() { count.wrappingAdd(1, ordering: .relaxed) }

    var value: Int { count.load(ordering: .relaxed) }
}
