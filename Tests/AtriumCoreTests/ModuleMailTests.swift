import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// A module that sends mail from a route: the mail is in the outbox only if the
/// transaction that sent it committed.
struct PostboxModule: AtriumModule {
    var id: String { "postbox" }
    var version: String { "1.0.0" }
    var requiredKernelVersion: String { "0.1" }
    var permissions: [PermissionDefinition] { [.init("postbox.send", description: "Send mail")] }

    struct Welcome: Codable, Sendable {
        var email: String
        var name: String
        var failAfterSending: Bool?
    }

    struct Sent: Codable, Sendable {
        var queued: Bool
    }

    static let welcome: MailTemplate? = try? MailTemplate(
        name: "welcome", subject: "Welcome, {{name}}", text: "Hello {{name}}, your link: {{{link}}}",
        html: "<p>Hello {{name}}</p>")

    func routes(_ routes: ModuleRoutes) {
        routes.on(.post, "welcome", summary: "Send a welcome mail", permission: "postbox.send", body: Welcome.self, response: Sent.self) {
            request, input in
            guard let template = Self.welcome else { throw AtriumError.internalError() }
            return try await request.transaction { transaction in
                try await transaction.sendMail(template, to: input.email, data: ["name": input.name, "link": "https://x.test/a?b=1&c=2"])
                if input.failAfterSending == true { throw AtriumError.conflict("changed my mind") }
                return Sent(queued: true)
            }
        }
    }
}

@Suite struct ModuleMailTests {
    @Test func mailIsSentWithTheTransactionThatQueuedItAndRenderedPerPart() async throws {
        #expect(PostboxModule.welcome != nil)
        let db = try await TestDatabase.create(modules: [PostboxModule()])
        let tenant = try await db.createTenant("acme", modules: ["postbox"])
        let folder = FileManager.default.temporaryDirectory.appending(path: "atrium-mail-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try await withTestApp(db, modules: [PostboxModule()]) { client, _ in
            let auth = TestAuthenticator.header(tenant, "postbox.send")
            func send(_ body: String) async throws -> TestResponse {
                try await client.execute(
                    uri: "/v1/tenants/acme/postbox/welcome", method: .post,
                    headers: [.authorization: auth, .contentType: "application/json"], body: ByteBuffer(string: body))
            }
            #expect(try await send(#"{"email":"ann@acme.test","name":"Ann & <Bob>"}"#).status == .ok)
            #expect(try await send(#"{"email":"rolled@acme.test","name":"X","fail_after_sending":true}"#).status == .conflict)
            let bad = try await send(#"{"email":"not-an-address","name":"X"}"#)
            #expect(bad.status == .unprocessableContent)
        }
        let logger = TestDatabase.logger
        let delivered = try await db.withApp { database in
            let worker = JobWorker(
                database: database, registry: try ModuleRegistry([PostboxModule()]),
                mailer: Mailer(transport: .directory(folder), from: "Atrium <no-reply@atrium.test>", logger: logger),
                configuration: .init(workerID: "mail"), kit: .ephemeral(logger: logger), logger: logger)
            return try await worker.runAvailableJobs()
        }
        #expect(delivered == 1)
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path())
        #expect(files.count == 1)
        let eml = try String(contentsOf: folder.appending(path: try #require(files.first)), encoding: .utf8)
        #expect(eml.contains("To: <ann@acme.test>"))
        #expect(eml.contains("Subject: Welcome, Ann & <Bob>"))
        let parts = eml.components(separatedBy: "\r\n\r\n").dropFirst().compactMap { part in
            Data(base64Encoded: part.components(separatedBy: "\r\n--").first?.replacingOccurrences(of: "\r\n", with: "") ?? "")
                .map { String(decoding: $0, as: UTF8.self) }
        }
        #expect(parts.contains("Hello Ann & <Bob>, your link: https://x.test/a?b=1&c=2"))
        #expect(parts.contains("<p>Hello Ann &amp; &lt;Bob&gt;</p>"))
    }

    @Test func aBrokenTemplateFailsWhereItIsDeclared() {
        let error = #expect(throws: ConfigurationError.self) {
            try MailTemplate(name: "broken", subject: "Hi {{name", text: "x")
        }
        #expect(error?.description.contains("mail template 'broken'") == true)
    }
}
