import AtriumCore
import AtriumTesting
import Foundation
import Testing

@Suite("OpenID Connect login against a real provider", .serialized)
struct OIDCLoginTests {
    @Test func codeFlowWithPKCELinksByVerifiedEmailAndRefusesTheRest() async throws {
        let python = try #require(ProcessInfo.processInfo.environment["ATRIUM_TEST_PYTHON"], "make test provides oidc-provider-mock")
        let scratch = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let mockBinary = URL(fileURLWithPath: python).deletingLastPathComponent().appending(path: "oidc-provider-mock").path()
        // Python starts slowly on a loaded 2-core machine (the suite runs in parallel), and
        // the free port it was given can be taken by another test before it binds: a
        // provider that failed to bind is started again on another port (three tries), and
        // each waits up to a minute to answer.
        var started: (process: RunningProcess, issuer: String)?
        for _ in 0..<3 where started == nil {
            let providerPort = try LocalPort.free()
            let process = try RunningProcess(
                executable: mockBinary, arguments: ["--port", String(providerPort), "--require-nonce", "true"],
                environment: ProcessInfo.processInfo.environment)
            let issuer = "http://127.0.0.1:\(providerPort)"
            let up = await eventually(timeout: .seconds(60), every: .milliseconds(100)) {
                if !process.isRunning() || process.output().1.contains("address already in use") { return true }
                return (try? await HTTP.get("\(issuer)/.well-known/openid-configuration").status) == 200
            }
            if up, process.isRunning(), !process.output().1.contains("address already in use") {
                started = (process, issuer)
            } else {
                process.signal(SIGTERM)
                _ = try? await process.wait(timeout: .seconds(10))
            }
        }
        let (provider, issuer) = try #require(started, "oidc-provider-mock did not come up in three tries")
        defer { provider.stop(timeout: .seconds(10)) }

        let tenants = scratch.appending(path: "tenants")
        try FileManager.default.createDirectory(at: tenants, withIntermediateDirectories: true)
        try "slug: acme\nname: Acme\nusers:\n  - email: alice@acme.test\n    password: alice-password\n    roles: [member]\n"
            .write(to: tenants.appending(path: "acme.yaml"), atomically: true, encoding: .utf8)
        let port = try LocalPort.free()
        let atrium = AtriumBinary(dataDirectory: scratch.appending(path: ".atrium"), extra: ["ATRIUM_PUBLIC_URL": "http://127.0.0.1:\(port)", "ATRIUM_OUTBOUND_ALLOW": "loopback"])
        #expect(try await atrium.run("migrate").status == 0)
        #expect(try await atrium.run("tenants", "apply", tenants.path()).status == 0)
        let added = try await atrium.run(
            "oidc", "add", "--tenant", "acme", "--name", "mock", "--issuer", issuer, "--client-id", "atrium-test", "--client-secret-stdin",
            stdin: "s3cret-client\n")
        #expect(added.status == 0, "\(added.stderr)")
        #expect(try await atrium.run("oidc", "list", "--tenant", "acme").stdout.contains(issuer))

        let server = try atrium.start(["serve", "--port", String(port), "--tenants-dir", tenants.path()])
        defer { server.stop() }
        try await server.waitUntilReady(port: port)
        let base = "http://127.0.0.1:\(port)/v1/tenants/acme/auth/oauth/mock"

        /// Runs the browser's part: start, pick `subject` at the provider, come back.
        func login(as subject: String) async throws -> HTTP.Response {
            let start = try await HTTP.get("\(base)/start")
            #expect(start.status == 302)
            let authorize = try #require(start.location)
            #expect(authorize.contains("code_challenge_method=S256"))
            #expect(authorize.contains("nonce="))
            #expect(authorize.contains("state="))
            let chosen = try await HTTP.postForm(authorize, fields: ["sub": subject])
            let callback = try #require(chosen.location, "the provider redirects back with a code")
            #expect(callback.hasPrefix("\(base)/callback?"))
            return try await HTTP.get(callback)
        }

        // The provider vouches for alice's email: her existing account is linked.
        #expect(try await HTTP.put("\(issuer)/users/alice-sub", json: #"{"email":"alice@acme.test","email_verified":true}"#).status < 300)
        let alice = try await login(as: "alice-sub")
        #expect(alice.status == 200, "\(String(decoding: alice.body, as: UTF8.self))")
        let tokens = try JSONSerialization.jsonObject(with: alice.body) as? [String: Any]
        let access = try #require(tokens?["access_token"] as? String)
        let me = try await HTTP.get("http://127.0.0.1:\(port)/v1/tenants/acme/auth/me", bearer: access)
        #expect(String(decoding: me.body, as: UTF8.self).contains("alice@acme.test"))
        // Linked now: the same subject logs in again even without an email claim (the
        // provider's claims for her are replaced by ones that carry none).
        #expect(try await HTTP.put("\(issuer)/users/alice-sub", json: #"{"name":"Alice"}"#).status < 300)
        let again = try await login(as: "alice-sub")
        #expect(again.status == 200, "\(String(decoding: again.body, as: UTF8.self))")
        let againTokens = try JSONSerialization.jsonObject(with: again.body) as? [String: Any]
        let againMe = try await HTTP.get("http://127.0.0.1:\(port)/v1/tenants/acme/auth/me", bearer: try #require(againTokens?["access_token"] as? String))
        #expect(String(decoding: againMe.body, as: UTF8.self).contains("alice@acme.test"), "the subject's link, not an email, found her account")

        // An unverified email does not take over an existing account.
        #expect(try await HTTP.put("\(issuer)/users/mallory", json: #"{"email":"alice@acme.test","email_verified":false}"#).status < 300)
        let mallory = try await login(as: "mallory")
        #expect(mallory.status == 409)
        #expect(String(decoding: mallory.body, as: UTF8.self).contains("account_link_requires_verified_email"))

        // A stranger cannot sign up on a tenant without self-signup.
        #expect(try await HTTP.put("\(issuer)/users/stranger", json: #"{"email":"stranger@else.test","email_verified":true}"#).status < 300)
        let stranger = try await login(as: "stranger")
        #expect(stranger.status == 403)

        // A forged or replayed state is refused.
        let forged = try await HTTP.get("\(base)/callback?code=abc&state=forged")
        #expect(forged.status == 400)
        #expect(String(decoding: forged.body, as: UTF8.self).contains("oidc_invalid_state"))
    }
}
