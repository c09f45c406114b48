import NIOCore
import NIOPosix
import Synchronization

/// Reads a Server-Sent Events response from a real socket as it arrives: a module's
/// event-stream routes tested as a browser's `EventSource` would use them
/// (`app.test(.live)` gives the port).
public final class EventStreamReader: Sendable {
    let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    final class Received: Sendable {
        let value = Mutex("")
        /// Whether the server ended the response (closed the connection).
        let ended = Mutex(false)
    }

    let text = Received()
    let reading: Task<Void, Never>

    public init(port: Int, path: String, authorization: String, lastEventID: String? = nil) async throws {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
        }
        var head = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nAuthorization: \(authorization)\r\n"
        if let lastEventID { head += "Last-Event-ID: \(lastEventID)\r\n" }
        let text = text
        self.channel = channel
        self.reading = Task {
            try? await channel.executeThenClose { inbound, outbound in
                try await outbound.write(ByteBuffer(string: head + "\r\n"))
                for try await chunk in inbound { text.value.withLock { $0 += String(buffer: chunk) } }
            }
            text.ended.withLock { $0 = true }
        }
    }

    public var received: String { text.value.withLock { $0 } }

    /// Waits until `expected` has arrived (true) or `timeout` passes (false).
    public func waitFor(_ expected: String, timeout: Duration = .seconds(10)) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !received.contains(expected) {
            guard ContinuousClock.now < deadline else { return false }
            try await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    /// Waits until the server has ended the stream (true) or `timeout` passes (false):
    /// closed the connection, or sent the chunked body's last chunk (a server that stops
    /// may end the response before it gets to closing the idle connection).
    public func ended(within timeout: Duration) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !text.ended.withLock({ $0 }) && !received.hasSuffix("\r\n0\r\n\r\n") {
            guard ContinuousClock.now < deadline else { return false }
            try await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    public func close() async {
        try? await channel.channel.close()
        await reading.value
    }
}
