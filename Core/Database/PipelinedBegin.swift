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
    /// `BEGIN`s sent whose `ReadyForQuery` has not come back yet.
    private var unansweredBegins = 0
    /// Bytes held back while a `BEGIN`'s reply is read: a message can arrive in pieces.
    private var held = ByteBuffer()

    init(roundTrips: RoundTripCounter) {
        self.roundTrips = roundTrips
    }

    /// The next statement written on this connection runs in a new transaction.
    func arm() { armed = true }

    /// Forgets an `arm()` no statement followed (a connection going back to its pool).
    func disarm() { armed = false }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if armed {
            armed = false
            unansweredBegins += 1
            context.write(wrapOutboundOut(Self.beginMessage), promise: nil)
        }
        context.write(data, promise: promise)
    }

    func flush(context: ChannelHandlerContext) {
        roundTrips.add()
        context.flush()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard unansweredBegins > 0 else {
            context.fireChannelRead(data)
            return
        }
        var incoming = unwrapInboundIn(data)
        if held.readableBytes == 0 { held = incoming } else { held.writeBuffer(&incoming) }
        while unansweredBegins > 0 {
            guard let type = held.getInteger(at: held.readerIndex, as: UInt8.self),
                let length = held.getInteger(at: held.readerIndex + 1, as: Int32.self)
            else { return }  // the rest of the header is still on its way
            guard length >= 4 else {
                fail(context, MalformedReply())
                return
            }
            guard let message = held.readSlice(length: 1 + Int(length)) else { return }  // the rest of the message
            switch type {
            case UInt8(ascii: "C"):  // BEGIN's CommandComplete
                continue
            case UInt8(ascii: "Z"):  // its ReadyForQuery: what follows answers the driver's statement
                unansweredBegins -= 1
            case UInt8(ascii: "E"):
                fail(context, BeginRefused())
                return
            default:  // a notice, a parameter status or a notification: the driver's to handle
                context.fireChannelRead(wrapInboundOut(message))
            }
        }
        if held.readableBytes > 0 {
            let rest = held
            context.fireChannelRead(wrapInboundOut(rest))
        }
        held = ByteBuffer()
    }

    private func fail(_ context: ChannelHandlerContext, _ error: any Error) {
        unansweredBegins = 0
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
