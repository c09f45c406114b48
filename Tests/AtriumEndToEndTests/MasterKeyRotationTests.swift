import AtriumCore
import AtriumTesting
import Foundation
import Synchronization
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `atrium keys rotate-master` end to end: secrets and token hashes survive a rotation.
@Suite("Master-key rotation", .serialized)
struct MasterKeyRotationTests {
    static func newKey() -> String {
        Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
    }

    @Test(.timeLimit(.minutes(5))) func rotatingKeepsEveryKeyAndTokenWorkingAndASecondRunChangesNothing() async throws {
        let scratch = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let data = scratch.appending(path: ".atrium")
        let (old, new) = (Self.newKey(), Self.newKey())
        let before = AtriumBinary(dataDirectory: data, extra: ["ATRIUM_MASTER_KEY": old])
        #expect(try await before.run("migrate").status == 0)
        #expect(try await before.run("tenants", "create", "acme", "--name", "Acme").status == 0)
        let user = try await before.run("users", "create", "--tenant", "acme", "--email", "owner@acme.test", "--password-stdin", "--role", "owner",
                                  stdin: "correct horse battery\n")
        #expect(user.status == 0, "\(user.stderr)")
        let created = try await before.run(
            "api-keys", "create", "--tenant", "acme", "--name", "sync", "--permission", "kernel.api_keys.manage", "--acts-for", "owner@acme.test", "--json")
        #expect(created.status == 0, "\(created.stderr)")
        let apiKey = try #require((try JSONSerialization.jsonObject(with: Data(created.stdout.utf8)) as? [String: Any])?["key"] as? String)
        #expect(try await before.run("billing", "webhook", "--tenant", "acme", "--url", "http://127.0.0.1:9/hook").status == 0)
        let provider = try await before.run(
            "oidc", "add", "--tenant", "acme", "--name", "corp", "--issuer", "https://id.example.com", "--client-id", "atrium",
            "--client-secret-stdin", stdin: "client-secret\n")
        #expect(provider.status == 0, "\(provider.stderr)")
        /// The owner's TOTP secret, once enrolled (sealed under the master key in force then).
        let totp = TOTPSecret()

        /// POSTs JSON, with a bearer token when given.
        func post(_ url: String, _ body: String, bearer: String? = nil) async throws -> (status: Int, json: [String: Any]) {
            var request = URLRequest(url: try #require(URL(string: url)))
            request.httpMethod = "POST"
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            if let bearer { request.setValue("Bearer \(bearer)", forHTTPHeaderField: "Authorization") }
            request.httpBody = Data(body.utf8)
            let response = try await HTTP.send(request)
            return (response.status, (try? JSONSerialization.jsonObject(with: response.body) as? [String: Any]) ?? [:])
        }

        /// Serves with `environment`, then checks a login and the API key.
        /// With TOTP on, the second factor is a recovery code when `recoveryCode` is given,
        /// else a code of the next 30-second step (the current one was used to confirm).
        func serveAndCheck(_ environment: [String: String], recoveryCode: String? = nil) async throws {
            let port = try LocalPort.free()
            let atrium = AtriumBinary(dataDirectory: data, extra: environment)
            let server = try atrium.start(["serve", "--port", String(port), "--tenants-dir", scratch.appending(path: "none").path()])
            try await server.waitUntilReady(port: port)
            let base = "http://127.0.0.1:\(port)/v1/tenants/acme"
            var login = try await post(base + "/auth/login", #"{"email":"owner@acme.test","password":"correct horse battery"}"#)
            if let secret = totp.value, let challenge = login.json["challenge_token"] as? String {
                // With TOTP on, the login needs a code: the secret must open under the key in force.
                let answer = recoveryCode.map { #""recovery_code":"\#($0)""# }
                    ?? #""code":"\#(RemoteConsoleTests.code(secret, at: Date().addingTimeInterval(30)))""#
                login = try await post(base + "/auth/mfa/verify", #"{"challenge_token":"\#(challenge)",\#(answer)}"#)
            }
            #expect(login.status == 200, "\(login.json)")
            let token = try #require(login.json["access_token"] as? String)
            #expect(try await HTTP.get(base + "/auth/me", bearer: token).status == 200)
            if totp.value == nil {
                let enrolled = try await post(base + "/auth/mfa/totp/enroll", "{}", bearer: token)
                let secret = try #require(enrolled.json["secret"] as? String, "\(enrolled.json)")
                let confirmed = try await post(
                    base + "/auth/mfa/totp/confirm", #"{"code":"\#(RemoteConsoleTests.code(secret, at: Date()))"}"#, bearer: token)
                #expect(confirmed.status == 200, "\(confirmed.json)")
                totp.value = secret
                totp.recoveryCodes = confirmed.json["recovery_codes"] as? [String] ?? []
            }
            let keys = try await HTTP.get("http://127.0.0.1:\(port)/v1/tenants/acme/admin/api-keys", bearer: apiKey)
            #expect(keys.status == 200, "\(String(decoding: keys.body, as: UTF8.self))")
            server.signal(SIGTERM)
            _ = try await server.wait(timeout: .seconds(30))
        }
        // The first start creates the signing key, sealed under the old key.
        try await serveAndCheck(["ATRIUM_MASTER_KEY": old])
        // Servers restarted with the new key and the old as previous work before the rotation runs.
        let rotating = ["ATRIUM_MASTER_KEY": new, "ATRIUM_MASTER_KEY_PREVIOUS": old]
        guard let recoveryCode = totp.recoveryCodes.first else {
            Issue.record("confirming TOTP returned no recovery codes")
            return
        }
        try await serveAndCheck(rotating, recoveryCode: recoveryCode)

        let first = try await AtriumBinary(dataDirectory: data, extra: rotating).run("keys", "rotate-master", "--json")
        #expect(first.status == 0, "\(first.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [String: Any])
        #expect(report["hashing_root"] as? String == "stored")
        #expect((report["signing_keys"] as? Int ?? 0) >= 1)
        #expect(report["webhook_secrets"] as? Int == 1)
        #expect(report["totp_secrets"] as? Int == 1, "\(report)")
        #expect(report["oidc_secrets"] as? Int == 1, "\(report)")
        let second = try await AtriumBinary(dataDirectory: data, extra: rotating).run("keys", "rotate-master")
        #expect(second.stdout.contains("nothing to do"), "\(second.stdout)\(second.stderr)")

        // After the rotation the old key is not needed; with the old key alone nothing opens.
        try await serveAndCheck(["ATRIUM_MASTER_KEY": new])
        let stale = try await AtriumBinary(dataDirectory: data, extra: ["ATRIUM_MASTER_KEY": old]).run("api-keys", "list", "--tenant", "acme")
        #expect(stale.status != 0)
        #expect(stale.stderr.contains("ATRIUM_MASTER_KEY does not open the kernel's keys"), "\(stale.stderr)")
        _ = try? await before.run("db", "stop")
    }
}

/// The TOTP secret the test's server checks set once and read later.
final class TOTPSecret: Sendable {
    private let stored = Mutex<(secret: String?, recoveryCodes: [String])>((nil, []))
    var value: String? {
        get { stored.withLock { $0.secret } }
        set { stored.withLock { $0.secret = newValue } }
    }
    var recoveryCodes: [String] {
        get { stored.withLock { $0.recoveryCodes } }
        set { stored.withLock { $0.recoveryCodes = newValue } }
    }
}
