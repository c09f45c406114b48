import AtriumCore
import AtriumTesting
import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

@Suite("atrium crypto, run as a built binary")
struct CryptoCLITests {
    /// A connection made over the API (against the exchange simulator) is listed by the
    /// operator's `atrium crypto connections list`: label, state, the key's last four,
    /// never the key or its secret.
    @Test func connectionsAreListedWithoutTheirSecrets() async throws {
        try await ExchangeSimulator.with { exchange in
            let (key, secret) = (String(repeating: "L", count: 60) + "4lst", String(repeating: "q", count: 64))
            try await exchange.account(key: key, secret: secret)
            let scratch = try makeScratchDirectory()
            defer { try? FileManager.default.removeItem(at: scratch) }
            let tenants = scratch.appending(path: "tenants")
            try FileManager.default.createDirectory(at: tenants, withIntermediateDirectories: true)
            try "plans:\n  coins:\n    modules: [crypto]\n".write(to: tenants.appending(path: "plans.yaml"), atomically: true, encoding: .utf8)
            try """
                slug: coin
                name: Coin
                plan: coins
                modules: [crypto]
                users:
                  - email: ann@coin.test
                    password: correct horse battery
                    roles: [member]
                """.write(to: tenants.appending(path: "coin.yaml"), atomically: true, encoding: .utf8)
            let port = try LocalPort.free()
            let atrium = AtriumBinary(
                dataDirectory: scratch.appending(path: ".atrium"),
                extra: ["ATRIUM_CRYPTO_BINANCE_URL": exchange.url, "ATRIUM_CRYPTO_OUTBOUND_ALLOW": "loopback"])
            let server = try atrium.start(["serve", "--port", String(port), "--tenants-dir", tenants.path()])
            defer { server.stop() }
            try await server.waitUntilReady(port: port)
            let login = try await HTTP.post(
                "http://127.0.0.1:\(port)/v1/tenants/coin/auth/login", json: #"{"email":"ann@coin.test","password":"correct horse battery"}"#)
            let token = try #require((try JSONSerialization.jsonObject(with: login.body) as? [String: Any])?["access_token"] as? String)
            var connect = URLRequest(url: try #require(URL(string: "http://127.0.0.1:\(port)/v1/tenants/coin/crypto/connections")))
            connect.httpMethod = "POST"
            connect.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
            connect.setValue("application/json", forHTTPHeaderField: "Content-Type")
            connect.httpBody = Data(#"{"exchange":"binance","label":"Cold wallet","api_key":"\#(key)","api_secret":"\#(secret)"}"#.utf8)
            let connected = try await HTTP.send(connect)
            #expect(connected.status == 201, "\(String(decoding: connected.body, as: UTF8.self))")

            let list = try await atrium.run("crypto", "connections", "list", "--tenant", "coin")
            #expect(list.status == 0, "\(list.stderr)")
            #expect(list.stdout.contains("Cold wallet") && list.stdout.contains("…4lst") && list.stdout.contains("active"), "\(list.stdout)")
            let listed = try await atrium.run("crypto", "connections", "list", "--tenant", "coin", "--json")
            #expect(listed.stdout.contains(#""key_last4":"4lst""#), "\(listed.stdout)")
            for output in [list.stdout, list.stderr, listed.stdout, listed.stderr] {
                #expect(!output.contains(key) && !output.contains(secret))
            }
            let unknown = try await atrium.run("crypto", "connections", "list", "--tenant", "nope")
            #expect(unknown.status != 0 && unknown.stderr.contains("no tenant named 'nope'"), "\(unknown.stderr)")
        }
    }
}
