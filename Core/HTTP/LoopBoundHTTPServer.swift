import HummingbirdCore
import Logging
import NIOCore

/// HTTP/1.1 whose connections each run on their channel's own event loop.
///
/// Hummingbird handles a connection in a child task on Swift's global executor, so every
/// request crossed threads twice: from the event loop that read it to a pool thread, and
/// back to the loop to write the answer. On a small machine those wake-ups were a
/// visible share of each request. Here the connection's task prefers its channel's
/// event loop (`EventLoopTaskExecutor`): reading, routing, the handler and the answer
/// run on the thread that owns the socket. Work that must not hold a loop (password
/// hashing, outbound HTTP, mail) already runs on thread pools of its own.
struct LoopBoundChildChannel<Inner: ServerChildChannel>: ServerChildChannel {
    typealias Value = Inner.Value
    let inner: Inner

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        inner.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await withTaskExecutorPreference(EventLoopTaskExecutor(eventLoop: value.channel.eventLoop)) {
            await inner.handle(value: value, logger: logger)
        }
    }
}

extension HTTPServerBuilder {
    /// `.http1()`, each connection on its own event loop (`LoopBoundChildChannel`).
    static func loopBoundHTTP1(configuration: HTTP1Channel.Configuration = .init()) -> HTTPServerBuilder {
        .init { responder in LoopBoundChildChannel(inner: HTTP1Channel(responder: responder, configuration: configuration)) }
    }
}
