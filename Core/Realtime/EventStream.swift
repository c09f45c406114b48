import Foundation
public import Hummingbird
import Logging
import NIOCore
import PostgresNIO
import ServiceLifecycle

/// One Server-Sent Event (the `text/event-stream` format of the HTML standard).
public struct ServerSentEvent<Payload: Encodable & Sendable>: Sendable {
    /// Sent as `id:`; a reconnecting client sends the last one back as `Last-Event-ID`.
    public var id: String?
    /// Sent as `event:`, the name clients listen for.
    public var event: String?
    public var data: Payload

    public init(id: String? = nil, event: String? = nil, data: Payload) {
        self.id = id
        self.event = event
        self.data = data
    }

    /// The event on the wire; `data` is JSON with the API's conventions, on one line.
    func encoded() throws -> String {
        var text = ""
        if let id { text += "id: \(Self.oneLine(id))\n" }
        if let event { text += "event: \(Self.oneLine(event))\n" }
        text += "data: \(String(decoding: try AtriumJSON.encoder.encode(data), as: UTF8.self))\n\n"
        return text
    }

    private static func oneLine(_ text: String) -> String {
        // Scalars, not Characters: "\r\n" is one Character, equal to neither "\r" nor "\n".
        String(String.UnicodeScalarView(text.unicodeScalars.filter { $0 != "\n" && $0 != "\r" && $0 != "\0" }))
    }
}

extension TenantTransaction {
    /// Announces that `id` changed on `channel` (`<module>.<name>`, such as
    /// `beauty.bookings`). Subscribers of this tenant hear it only if and when this
    /// transaction commits; they load the row themselves, under their own access.
    public func notify(channel: String, id: String) async throws {
        guard Self.isChannel(channel) else {
            throw ConfigurationError("event channel '\(channel)' must be <module>.<name>: lowercase letters, digits, '_' and '.'")
        }
        guard channels.contains(channel) else {
            throw ConfigurationError("event channel '\(channel)' is declared by no installed module (AtriumModule.channels)")
        }
        guard !id.isEmpty, id.utf8.count <= 200, !id.contains(where: { $0.isNewline || $0 == "\0" }) else {
            throw ConfigurationError("an event id must be 1 to 200 bytes on one line")
        }
        let payload = EventHub.payload(tenantID: tenantID, channel: channel, id: id)
        try gate.admitStatement()
        try await connection.query("SELECT pg_notify(\(EventHub.channel), \(payload))", logger: logger)
    }

    static func isChannel(_ channel: String) -> Bool {
        channel.contains(".") && channel.count <= 100 && channel.first?.isLetter == true
            && channel.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_" || $0 == ".") }
    }
}

extension TenantRequest {
    /// Answers with a stream of `channel`'s events in this tenant, until the client goes
    /// away or the server stops.
    ///
    /// For each notified id, `load` runs in a tenant transaction of its own with this
    /// caller's identity (row-level security and owner scope apply) and returns the event
    /// to send, or nil to send nothing (a row this caller may not see, or one deleted
    /// since). A reconnecting client's `Last-Event-ID` is handed to `replay`, which
    /// returns what it missed. A comment line every `heartbeat` keeps proxies from
    /// closing an idle stream and finds clients that left. The stream holds no database
    /// connection while it waits.
    public func eventStream<Payload: Encodable & Sendable>(
        channel: String, heartbeat: Duration = .seconds(15),
        replay: (@Sendable (TenantTransaction, _ lastEventID: String) async throws -> [ServerSentEvent<Payload>])? = nil,
        load: @escaping @Sendable (TenantTransaction, _ id: String) async throws -> ServerSentEvent<Payload>?
    ) throws -> Response {
        guard TenantTransaction.isChannel(channel) else { throw ConfigurationError("event channel '\(channel)' must be <module>.<name>") }
        guard services.channels.contains(channel) else {
            throw ConfigurationError("event channel '\(channel)' is declared by no installed module (AtriumModule.channels)")
        }
        let hub = services.events
        let lastEventID = request.headers[.lastEventID].flatMap { $0.isEmpty || $0.utf8.count > 200 ? nil : $0 }
        let tenantID = tenant.id
        let principalID = principal?.databaseID
        let database = services.database
        let logger = logger
        let jobs = services.jobs
        let metering = services.metering
        let channels = services.channels
        let seesAllOwned = ownership?.seesAll == true
        let ownerFilter = ownership?.ownerFilter
        @Sendable func inTransaction<T: Sendable>(_ body: @escaping @Sendable (TenantTransaction) async throws -> T) async throws -> T {
            try await database.withTenantTransaction(tenantID, principal: principalID, logger: logger) { connection in
                try await TenantRequest.scopeOwnership(seesAllOwned, connection, logger)
                return try await body(TenantTransaction(connection: connection, tenantID: tenantID, principalID: principalID, logger: logger, jobs: jobs, metering: metering,
                                             channels: channels, ownerFilter: ownerFilter))
            }
        }
        let body = ResponseBody { writer in
            // Subscribed before the replay, so nothing falls between the two; and only once
            // the body is written, so a response never sent leaves no subscriber behind.
            let (stream, subscription) = hub.subscribe(tenantID: tenantID, channel: channel)
            defer { subscription.cancel() }
            let allocator = ByteBufferAllocator()
            // Tells EventSource clients how long to wait before reconnecting.
            try await writer.write(allocator.buffer(string: "retry: 2000\n\n"))
            if let lastEventID, let replay {
                for event in try await inTransaction({ try await replay($0, lastEventID) }) {
                    try await writer.write(allocator.buffer(string: try event.encoded()))
                }
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    while !Task.isCancelled {
                        try await Task.sleep(for: heartbeat)
                        subscription.heartbeat()
                    }
                }
                // A graceful stop ends the stream so the server's drain is not held up by it.
                try await withGracefulShutdownHandler {
                    for await signal in stream {
                        switch signal {
                        case .heartbeat:
                            try await writer.write(allocator.buffer(string: ": heartbeat\n\n"))
                        case .event(let id):
                            if let event = try await inTransaction({ try await load($0, id) }) {
                                try await writer.write(allocator.buffer(string: try event.encoded()))
                            }
                        }
                    }
                } onGracefulShutdown: {
                    subscription.cancel()
                }
                group.cancelAll()
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-store", .accelBuffering: "no"],
            body: body)
    }
}
