import AtriumCore
import AtriumTesting
import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

@Suite("atrium crypto, run as a built binary")
struct CryptoCLITests {
    /// Tenant `coin` (plan `coins`, the module on) with member Ann, in `tenants` under a
    /// fresh scratch folder; the binary pointed at `exchange`.
    static func scratchTenant(_ exchange: ExchangeSimulator) throws -> (scratch: URL, tenants: URL, atrium: AtriumBinary) {
        let scratch = try makeScratchDirectory()
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
        let atrium = AtriumBinary(
            dataDirectory: scratch.appending(path: ".atrium"),
            extra: ["ATRIUM_CRYPTO_BINANCE_URL": exchange.url, "ATRIUM_CRYPTO_OUTBOUND_ALLOW": "loopback"])
        return (scratch, tenants, atrium)
    }

    /// Ann's bearer token, and a connection of hers made over the API.
    static func connect(port: Int, key: String, secret: String) async throws -> (token: String, id: String) {
        let login = try await HTTP.post(
            "http://127.0.0.1:\(port)/v1/tenants/coin/auth/login", json: #"{"email":"ann@coin.test","password":"correct horse battery"}"#)
        let token = try #require((try JSONSerialization.jsonObject(with: login.body) as? [String: Any])?["access_token"] as? String)
        var connect = URLRequest(url: try #require(URL(string: "http://127.0.0.1:\(port)/v1/tenants/coin/crypto/connections")))
        connect.httpMethod = "POST"
        connect.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        connect.setValue("application/json", forHTTPHeaderField: "Content-Type")
        connect.httpBody = Data(#"{"exchange":"binance","label":"Cold wallet","api_key":"\#(key)","api_secret":"\#(secret)"}"#.utf8)
        let connected = try await HTTP.send(connect)
        try #require(connected.status == 201, "\(String(decoding: connected.body, as: UTF8.self))")
        let id = try #require((try JSONSerialization.jsonObject(with: connected.body) as? [String: Any])?["id"] as? String)
        return (token, id)
    }

    /// kill -9 of the server while its worker syncs 2,500 trades: `atrium crypto connections
    /// sync --wait` finishes the work, and every trade is there exactly once.
    @Test func aSyncKilledMidwayIsFinishedByTheCommandWithEveryTradeOnce() async throws {
        try await ExchangeSimulator.with { exchange in
            let (key, secret) = (String(repeating: "K", count: 64), String(repeating: "k", count: 64))
            try await exchange.account(key: key, secret: secret, balances: ["BTC": "50", "ETH": "500", "USDT": "1000000"])
            let seeded = try JSONSerialization.data(withJSONObject: ["symbols": ["BTCUSDT", "ETHUSDT", "ETHBTC"], "count": 2500, "seed": 5])
            #expect(try await exchange.call("POST", "/_sim/accounts/\(key)/trades", body: seeded).status == 201)
            // Slow pages, so that the kill lands mid-sync.
            let slow = try JSONSerialization.data(withJSONObject: ["path": "/api/v3/myTrades", "delay_ms": 600, "count": 4])
            #expect(try await exchange.call("POST", "/_sim/faults", body: slow).status == 201)
            let (scratch, tenants, atrium) = try Self.scratchTenant(exchange)
            defer { try? FileManager.default.removeItem(at: scratch) }
            let port = try LocalPort.free()
            // Logging everything (debug): no line may carry the key or the secret.
            let server = try atrium.start(["serve", "--port", String(port), "--tenants-dir", tenants.path(), "--log-level", "debug"])
            try await server.waitUntilReady(port: port)
            let (_, id) = try await Self.connect(port: port, key: key, secret: secret)
            let midway = try await eventually(timeout: .seconds(60)) {
                try await exchange.requests().filter { ($0["path"] as? String) == "/api/v3/myTrades" }.count >= 2
            }
            #expect(midway, "the server's worker started the first sync")
            var logs = server.output()
            server.killAndReap()

            let finished = try await atrium.run("crypto", "connections", "sync", "--tenant", "coin", "--connection", id, "--full", "--wait")
            #expect(finished.status == 0, "\(finished.stdout) \(finished.stderr)")
            #expect(finished.stdout.hasPrefix("succeeded: "), "\(finished.stdout)")
            // The worker's first page had landed (its second was asked for): the command
            // brings only the rest.
            let brought = finished.stdout.split(separator: " ").firstIndex(of: "new").flatMap { Int(finished.stdout.split(separator: " ")[$0 - 1]) }
            #expect(brought.map { (1..<2500).contains($0) } == true, "\(finished.stdout)")
            let again = try await atrium.run("crypto", "connections", "sync", "--tenant", "coin", "--connection", id, "--full", "--wait")
            #expect(again.stdout.hasPrefix("succeeded: 0 pages, 0 new trades"), "nothing left to read: \(again.stdout) \(again.stderr)")
            // The killed worker's job still holds the connection's one sync until its lease
            // runs out: nothing is queued beside it.
            let queued = try await atrium.run("crypto", "connections", "sync", "--tenant", "coin", "--connection", id)
            #expect(queued.status == 0 && queued.stdout.contains("already queued or running"), "\(queued.stdout) \(queued.stderr)")

            let restarted = try atrium.start(["serve", "--port", String(port), "--tenants-dir", tenants.path(), "--log-level", "debug"])
            defer { restarted.stop() }
            try await restarted.waitUntilReady(port: port)
            let login = try await HTTP.post(
                "http://127.0.0.1:\(port)/v1/tenants/coin/auth/login", json: #"{"email":"ann@coin.test","password":"correct horse battery"}"#)
            let token = try #require((try JSONSerialization.jsonObject(with: login.body) as? [String: Any])?["access_token"] as? String)
            // The key given again (checked with the exchange, sealed anew) on the restarted server.
            var replace = URLRequest(url: try #require(URL(string: "http://127.0.0.1:\(port)/v1/tenants/coin/crypto/connections/\(id)/credentials")))
            replace.httpMethod = "PUT"
            replace.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
            replace.setValue("application/json", forHTTPHeaderField: "Content-Type")
            replace.httpBody = Data(#"{"api_key":"\#(key)","api_secret":"\#(secret)"}"#.utf8)
            let replaced = try await HTTP.send(replace)
            #expect(replaced.status == 200, "\(String(decoding: replaced.body, as: UTF8.self))")
            let later = restarted.output()
            logs = (logs.0 + later.0, logs.1 + later.1)
            #expect(logs.0.count + logs.1.count > 1_000, "the servers logged")
            for output in [logs.0, logs.1, finished.stdout, finished.stderr] {
                #expect(!output.contains(key) && !output.contains(secret), "a key or secret in the output")
            }

            // Every trade once, as the API pages them.
            var seen = Set<String>()
            var total = 0
            var cursor: String?
            repeat {
                var page = URLRequest(url: try #require(URL(string: "http://127.0.0.1:\(port)/v1/tenants/coin/crypto/trades?limit=200" + (cursor.map { "&cursor=\($0)" } ?? ""))))
                page.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
                let answer = try JSONSerialization.jsonObject(with: try await HTTP.send(page).body) as? [String: Any]
                let trades = answer?["data"] as? [[String: Any]] ?? []
                total += trades.count
                for trade in trades { seen.insert("\(trade["symbol"] ?? "")/\(trade["trade_id"] ?? "")") }
                cursor = answer?["next_cursor"] as? String
            } while cursor != nil
            #expect(total == 2500 && seen.count == 2500, "\(total) \(seen.count)")

            // The operator takes the due snapshots now: Ann's, valued at the exchange's prices.
            let snapshot = try await atrium.run("crypto", "connections", "snapshot", "--tenant", "coin")
            #expect(snapshot.status == 0 && snapshot.stdout.contains("took 1 snapshot"), "\(snapshot.stdout) \(snapshot.stderr)")
            let secondSnapshot = try await atrium.run("crypto", "connections", "snapshot", "--tenant", "coin")
            #expect(secondSnapshot.stdout.contains("took 0 snapshots"), "one per plan interval: \(secondSnapshot.stdout)")

            let unknown = try await atrium.run("crypto", "connections", "sync", "--tenant", "coin", "--connection", UUID().uuidString, "--wait")
            #expect(unknown.status != 0 && unknown.stderr.contains("has no connection"), "\(unknown.stderr)")
        }
    }

    /// A connection made over the API (against the exchange simulator) is listed by the
    /// operator's `atrium crypto connections list`: label, state, the key's last four,
    /// never the key or its secret.
    @Test func connectionsAreListedWithoutTheirSecrets() async throws {
        try await ExchangeSimulator.with { exchange in
            let (key, secret) = (String(repeating: "L", count: 60) + "4lst", String(repeating: "q", count: 64))
            try await exchange.account(key: key, secret: secret)
            let (scratch, tenants, atrium) = try Self.scratchTenant(exchange)
            defer { try? FileManager.default.removeItem(at: scratch) }
            let port = try LocalPort.free()
            let server = try atrium.start(["serve", "--port", String(port), "--tenants-dir", tenants.path()])
            defer { server.stop() }
            try await server.waitUntilReady(port: port)
            _ = try await Self.connect(port: port, key: key, secret: secret)

            let list = try await atrium.run("crypto", "connections", "list", "--tenant", "coin")
            #expect(list.status == 0, "\(list.stderr)")
            #expect(list.stdout.contains("Cold wallet") && list.stdout.contains("…4lst") && list.stdout.contains("active"), "\(list.stdout)")
            let listed = try await atrium.run("crypto", "connections", "list", "--tenant", "coin", "--json")
            #expect(listed.stdout.contains(#""key_last4":"4lst""#), "\(listed.stdout)")
            for output in [list.stdout, list.stderr, listed.stdout, listed.stderr] {
                #expect(!output.contains(key) && !output.contains(secret))
            }
            // The operator rotates every tenant's data key: a dry run first, then for real.
            let dry = try await atrium.run("crypto", "rotate-keys", "--dry-run", "--json")
            #expect(dry.status == 0 && dry.stdout.contains(#""resealed" : 1"#) && dry.stdout.contains(#""dry_run" : true"#), "\(dry.stdout) \(dry.stderr)")
            let rotated = try await atrium.run("crypto", "rotate-keys", "--tenant", "coin")
            #expect(rotated.status == 0 && rotated.stdout.contains("2 (new)"), "\(rotated.stdout) \(rotated.stderr)")
            let rewrapped = try await atrium.run("crypto", "rotate-keys", "--rewrap-only")
            #expect(rewrapped.status == 0, "\(rewrapped.stdout) \(rewrapped.stderr)")
            for output in [dry.stdout, dry.stderr, rotated.stdout, rotated.stderr] { #expect(!output.contains(secret)) }

            let unknown = try await atrium.run("crypto", "connections", "list", "--tenant", "nope")
            #expect(unknown.status != 0 && unknown.stderr.contains("no tenant named 'nope'"), "\(unknown.stderr)")
        }
    }
}
