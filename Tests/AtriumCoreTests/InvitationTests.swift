import AtriumCore
import Crypto
import AtriumTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Testing

@Suite("Invitations and the mail outbox")
struct InvitationTests {
    let logger = TestDatabase.logger

    /// The messages waiting in the outbox (mail jobs), oldest first.
    func outbox(_ database: Database) async throws -> [MailMessage] {
        try await database.withPlatformTransaction(logger: logger) { connection in
            let rows = try await connection.query(
                "SELECT payload::text FROM jobs WHERE kind = 'kernel.mail.send' ORDER BY created_at", logger: logger
            ).collect()
            return try rows.map { try JSONDecoder().decode(MailMessage.self, from: Data(try $0.decode(String.self).utf8)) }
        }
    }

    @Test func anInvitationIsMailedAndCreatesTheAccountWithItsRole() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme", modules: ["notes"])
        _ = try await db.createUser("owner@acme.test", password: "owner-password", roles: ["owner"], in: acme)
        let mailFolder = FileManager.default.temporaryDirectory.appending(path: "atrium-mail-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: mailFolder) }
        try await withIdentityApp(db) { client, identity in
            let owner = try await client.login("acme", "owner@acme.test", "owner-password").access
            let invited = try await client.post("/v1/tenants/acme/admin/users/invite", json: #"{"email":"newbie@acme.test","role":"admin"}"#, token: owner)
            #expect(invited.status == .accepted)
            let taken = try await client.post("/v1/tenants/acme/admin/users/invite", json: #"{"email":"OWNER@acme.test"}"#, token: owner)
            #expect(taken.status == .conflict)

            let messages = try await db.withApp { try await outbox($0) }
            let invitation = try #require(messages.first)
            #expect(messages.count == 1)
            #expect(invitation.to == "newbie@acme.test")
            #expect(invitation.subject == "You are invited to Acme")
            #expect(invitation.html?.contains("as admin") == true)
            let token = try #require(invitation.text.components(separatedBy: "send this code to auth/accept-invitation: ").last?
                .split(whereSeparator: \.isWhitespace).first.map(String.init))

            let weak = try await client.post("/v1/tenants/acme/auth/accept-invitation", json: #"{"token":"\#(token)","password":"short"}"#)
            #expect(weak.status == .unprocessableContent)
            // The failed attempt rolled back, so the token still works.
            let accepted = try await client.post(
                "/v1/tenants/acme/auth/accept-invitation", json: #"{"token":"\#(token)","password":"newbie-password","display_name":"Newbie"}"#)
            #expect(accepted.status == .created)
            let access = try #require(json(accepted)["access_token"]?.string)
            let me = json(try await client.get("/v1/tenants/acme/auth/me", token: access))
            #expect(me["user"]?["roles"] == ["admin"])
            #expect(me["user"]?["email_verified_at"]?.string != nil)
            let again = try await client.post("/v1/tenants/acme/auth/accept-invitation", json: #"{"token":"\#(token)","password":"newbie-password"}"#)
            #expect(json(again)["code"]?.string == "invalid_token")

            // Without SMTP the worker writes the outbox to files.
            let delivered = try await db.withApp { database in
                let worker = JobWorker(
                    database: database, registry: try ModuleRegistry([NotesModule()]),
                    mailer: Mailer(transport: .directory(mailFolder), from: "Atrium <no-reply@atrium.test>", logger: logger),
                    configuration: .init(workerID: "mail"), kit: .ephemeral(logger: logger), logger: logger)
                return try await worker.runAvailableJobs()
            }
            #expect(delivered == 1)
            let files = try FileManager.default.contentsOfDirectory(atPath: mailFolder.path())
            #expect(files.count == 1)
            let eml = try String(contentsOf: mailFolder.appending(path: files[0]), encoding: .utf8)
            #expect(eml.contains("To: <newbie@acme.test>"))
            #expect(eml.contains("Subject: You are invited to Acme"))
            _ = identity
        }
    }

    /// Each mailed link opens a page on this server (the default `ATRIUM_APP_URL`), and the
    /// page's script is the one its policy lets run, posting to the API the mail names.
    @Test func theMailedLinksOpenAPageThatPostsToTheirAPI() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme", modules: ["notes"])
        _ = try await db.createUser("owner@acme.test", password: "owner-password", roles: ["owner"], in: acme)
        try await withIdentityApp(db) { client, _ in
            let owner = try await client.login("acme", "owner@acme.test", "owner-password").access
            #expect(try await client.post("/v1/tenants/acme/admin/users/invite", json: #"{"email":"newbie@acme.test"}"#, token: owner).status == .accepted)
            #expect(try await client.post("/v1/tenants/acme/auth/forgot-password", json: #"{"email":"owner@acme.test"}"#).status == .accepted)
            let messages = try await db.withApp { try await outbox($0) }
            #expect(messages.count == 2)
            for message in messages {
                let html = try #require(message.html)
                let href = try #require(html.components(separatedBy: "href=\"").dropFirst().first?.components(separatedBy: "\"").first)
                let link = try #require(URLComponents(string: href.replacingOccurrences(of: "&amp;", with: "&")))
                let page = try await client.get("\(link.path)?\(link.percentEncodedQuery ?? "")", token: nil)
                #expect(page.status == .ok, "\(link.path)")
                #expect(page.headers[.contentType] == "text/html; charset=utf-8")
                let body = String(buffer: page.body)
                let script = try #require(body.components(separatedBy: "<script>").dropFirst().first?.components(separatedBy: "</script>").first)
                let hash = Data(SHA256.hash(data: Data(script.utf8))).base64EncodedString()
                let policy = try #require(page.headers[.contentSecurityPolicy])
                #expect(policy.contains("script-src 'sha256-\(hash)'"))
                #expect(policy.hasPrefix("default-src 'none'"))
                #expect(page.headers[HTTPField.Name("Referrer-Policy")!] == "no-referrer")
                // The page posts to the operation the mail's text names, and that operation exists.
                let endpoint = try #require(body.components(separatedBy: "data-endpoint=\"").dropFirst().first?.components(separatedBy: "\"").first)
                #expect(message.text.contains("auth/\(endpoint)") || endpoint == "reset-password")
                #expect(script.contains("\"/v1/tenants/\" + encodeURIComponent(q.get(\"tenant\")) + \"/auth/\" + f.dataset.endpoint"))
                let document = json(try await client.get("/v1/openapi.json", token: nil))
                #expect(document["paths"]?["/v1/tenants/{tenant}/auth/\(endpoint)"]?["post"] != nil, "\(endpoint)")
                // The token stays out of the HTML.
                let token = try #require(link.queryItems?.first { $0.name == "token" }?.value)
                #expect(!body.contains(token))
            }
            #expect(try await client.get("/verify-email", token: nil).status == .ok)
        }
    }
}
