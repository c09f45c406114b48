import AtriumCore
import Foundation
import Testing

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

        /// Serves with `environment`, then checks a login and the API key.
        func serveAndCheck(_ environment: [String: String]) async throws {
            let port = try LocalPort.free()
            let atrium = AtriumBinary(dataDirectory: data, extra: environment)
            let server = try atrium.start(["serve", "--port", String(port), "--tenants-dir", scratch.appending(path: "none").path()])
            try await server.waitUntilReady(port: port)
            let login = try await HTTP.post(
                "http://127.0.0.1:\(port)/v1/tenants/acme/auth/login", json: #"{"email":"owner@acme.test","password":"correct horse battery"}"#)
            #expect(login.status == 200, "\(String(decoding: login.body, as: UTF8.self))")
            let token = try #require((try JSONSerialization.jsonObject(with: login.body) as? [String: Any])?["access_token"] as? String)
            #expect(try await HTTP.get("http://127.0.0.1:\(port)/v1/tenants/acme/auth/me", bearer: token).status == 200)
            let keys = try await HTTP.get("http://127.0.0.1:\(port)/v1/tenants/acme/admin/api-keys", bearer: apiKey)
            #expect(keys.status == 200, "\(String(decoding: keys.body, as: UTF8.self))")
            server.signal(SIGTERM)
            _ = try await server.wait(timeout: .seconds(30))
        }
        // The first start creates the signing key, sealed under the old key.
        try await serveAndCheck(["ATRIUM_MASTER_KEY": old])
        // Servers restarted with the new key and the old as previous work before the rotation runs.
        let rotating = ["ATRIUM_MASTER_KEY": new, "ATRIUM_MASTER_KEY_PREVIOUS": old]
        try await serveAndCheck(rotating)

        let first = try await AtriumBinary(dataDirectory: data, extra: rotating).run("keys", "rotate-master", "--json")
        #expect(first.status == 0, "\(first.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [String: Any])
        #expect(report["hashing_root"] as? String == "stored")
        #expect((report["signing_keys"] as? Int ?? 0) >= 1)
        #expect(report["webhook_secrets"] as? Int == 1)
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
