import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Synchronization
import Testing

/// The guide's module, used as a tenant would: every part of the kit it shows works.
@Suite struct GuestbookModuleTests {
    final class Received: Sendable {
        let requests = Mutex<[(authorization: String?, body: String)]>([])
    }

    /// A webhook receiver on a loopback port.
    func withReceiver(_ body: @escaping @Sendable (URL, Received) async throws -> Void) async throws {
        let received = Received()
        let router = Router()
        router.post("hook") { request, _ -> HTTPResponse.Status in
            let text = String(buffer: try await request.body.collect(upTo: 1 << 16))
            received.requests.withLock { $0.append((request.headers[.authorization], text)) }
            return .noContent
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: TestDatabase.logger)
        try await app.test(.live) { client in
            let port = try #require(client.port)
            try await body(try #require(URL(string: "http://127.0.0.1:\(port)/hook")), received)
        }
    }

    @Test func sealsCallsOutMailsSignsAndStreams() async throws {
        let logger = TestDatabase.logger
        let db = try await TestDatabase.create(modules: [GuestbookModule()])
        let tenant = try await db.createTenant("acme", modules: ["guestbook"])
        let admin = TestAuthenticator.header(tenant, principal: UUID(), "guestbook.write", "guestbook.manage")
        let clock = MovableClock()
        let masterKey = MasterKey.generate()
        // The webhook receiver below is on loopback, which outbound calls refuse unless allowed.
        let kit = ModuleKit(
            masterKey: masterKey, publicURL: try #require(URL(string: "https://guestbook.example")), clock: clock,
            environment: ["ATRIUM_GUESTBOOK_OUTBOUND_ALLOW": "loopback"], logger: logger)
        let mailFolder = FileManager.default.temporaryDirectory.appending(path: "guestbook-mail-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: mailFolder) }
        try await withReceiver { hookURL, received in
            try await db.withApp(maximumConnections: 8) { database in
                let registry = try ModuleRegistry([GuestbookModule()])
                let dependencies = ApplicationDependencies(
                    database: database, registry: registry, authenticator: TestAuthenticator(), kit: kit, logger: logger,
                    expectedMigrations: try registry.allMigrations())
                let app = buildApplication(dependencies, server: ServerConfiguration(host: "127.0.0.1", port: 0), services: dependencies.requestPathServices)
                try await app.test(.live) { client in
                    func send(_ method: HTTPRequest.Method, _ path: String, auth: String?, _ body: String? = nil) async throws -> TestResponse {
                        var headers: HTTPFields = [.contentType: "application/json"]
                        if let auth { headers[.authorization] = auth }
                        return try await client.execute(uri: path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) })
                    }
                    // Sealing: the token is stored, but not as itself.
                    let set = try await send(.put, "/v1/tenants/acme/guestbook/webhook", auth: admin, #"{"url":"\#(hookURL.absoluteString)","token":"s3cret-token"}"#)
                    #expect(set.status == .noContent)
                    let stored = try await db.withOwner { connection in
                        try await connection.withTenantTransaction(tenant.id, logger: logger) { connection in
                            try await connection.query("SELECT token_sealed FROM guestbook_webhooks", logger: logger).first().decode(Data.self)
                        }
                    }
                    #expect(stored.range(of: Data("s3cret-token".utf8)) == nil)
                    #expect(try kit.context(for: "guestbook").sealer.open(stored, associatedData: tenant.id.uuidString) == "s3cret-token")

                    // Realtime: a subscriber sees entries as they are written.
                    let stream = try await EventStreamReader(
                        port: try #require(client.port), path: "/v1/tenants/acme/guestbook/events", authorization: admin)
                    defer { Task { await stream.close() } }
                    #expect(try await stream.waitFor("retry: 2000"))
                    var warmedUp = false
                    for attempt in 0..<50 where !warmedUp {
                        _ = try await send(.post, "/v1/tenants/acme/guestbook/entries", auth: admin, #"{"email":"warm@example.com","message":"warm-up \#(attempt)"}"#)
                        warmedUp = try await stream.waitFor("warm-up", timeout: .milliseconds(200))
                    }
                    #expect(warmedUp)
                    let created = try await send(
                        .post, "/v1/tenants/acme/guestbook/entries", auth: admin, #"{"email":"guest@example.com","message":"Hello from the guide"}"#)
                    #expect(created.status == .created)
                    let entryID = try #require(json(created)["id"]?.string)
                    #expect(try await stream.waitFor("Hello from the guide"))

                    // Outbound HTTP: the webhook got the entry with the unsealed token.
                    let calls = received.requests.withLock { $0 }
                    let call = try #require(calls.first { $0.body.contains("Hello from the guide") })
                    #expect(call.authorization == "Bearer s3cret-token")

                    // Mail: the outbox delivers the confirmation with its signed link.
                    let worker = JobWorker(
                        database: database, registry: registry,
                        mailer: Mailer(transport: .directory(mailFolder), from: "Guestbook <no-reply@atrium.test>", logger: logger),
                        configuration: .init(workerID: "mail"), kit: kit, logger: logger)
                    while try await worker.runAvailableJobs() > 0 {}
                    let mails = try FileManager.default.contentsOfDirectory(atPath: mailFolder.path()).map { name in
                        try String(contentsOf: mailFolder.appending(path: name), encoding: .utf8)
                    }
                    let texts = mails.compactMap { mail in
                        mail.components(separatedBy: "\r\n\r\n").dropFirst().first.flatMap { Data(base64Encoded: $0.replacingOccurrences(of: "\r\n", with: "")) }
                            .map { String(decoding: $0, as: UTF8.self) }
                    }
                    let text = try #require(texts.first { $0.contains("Hello from the guide") })
                    let link = try #require(text.split(separator: "\n").first { $0.hasPrefix("Confirm it here: ") }?.dropFirst("Confirm it here: ".count))
                    let url = try #require(URLComponents(string: String(link)))
                    #expect(url.host == "guestbook.example")
                    #expect(url.path == "/v1/public/acme/guestbook/confirm")
                    let pathAndQuery = url.path + "?" + (url.percentEncodedQuery ?? "")

                    // Signed links: the link confirms the entry; an altered one does not; an expired one is gone.
                    let tampered = try await send(.get, pathAndQuery.replacingOccurrences(of: "token=1", with: "token=2"), auth: nil)
                    #expect(tampered.status == .forbidden)
                    let confirmed = try await send(.get, pathAndQuery, auth: nil)
                    #expect(confirmed.status == .ok)
                    #expect(json(confirmed)["confirmed"] == .bool(true))
                    let id = try #require(UUID(uuidString: entryID))
                    let entry = try await db.withOwner { connection in
                        try await connection.withTenantTransaction(tenant.id, logger: logger) { connection in
                            try await connection.query("SELECT confirmed FROM guestbook_entries WHERE id = \(id)", logger: logger).first().decode(Bool.self)
                        }
                    }
                    #expect(entry)
                    clock.advance(by: 2 * 86_400)
                    let expired = try await send(.get, pathAndQuery, auth: nil)
                    #expect(expired.status == .gone)
                    #expect(json(expired)["code"]?.string == "link_expired")
                }
            }
        }
    }
}

/// docs/modules.md shows the guide's module as it is compiled and tested.
@Suite struct ModuleGuideTests {
    @Test func theGuideShowsTheCompiledModuleVerbatim() throws {
        let guide = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        let repository = guide.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let document = try String(contentsOf: repository.appending(path: "docs/modules.md"), encoding: .utf8)
        let fixture = try String(contentsOf: guide.appending(path: "GuestbookModule.swift"), encoding: .utf8)
        let block = try #require(document.components(separatedBy: "<!-- fixture:begin -->\n```swift\n").dropFirst().first?
            .components(separatedBy: "```\n<!-- fixture:end -->").first)
        #expect(block == fixture)
    }
}
