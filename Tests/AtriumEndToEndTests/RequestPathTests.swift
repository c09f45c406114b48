import AtriumCore
import AtriumTesting
import Foundation
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Two `atrium serve` processes on one database: tenant changes made through either one
/// (or the CLI) reach both within a second, the monthly API-call quota holds exactly
/// across both, and API calls counted in memory are all recorded, once, by a graceful stop.
@Suite("The request path across servers", .serialized)
struct RequestPathTests {
    @Test(.timeLimit(.minutes(5))) func tenantChangesReachEveryServerAndEveryCallIsRecordedOnce() async throws {
        let scratch = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let tenants = scratch.appending(path: "tenants")
        try FileManager.default.createDirectory(at: tenants, withIntermediateDirectories: true)
        try """
            slug: acme
            name: Acme
            plan: pro
            modules: [sales]
            users:
              - email: owner@acme.test
                password: acme-demo-owner
                roles: [owner]
            """.write(to: tenants.appending(path: "acme.yaml"), atomically: true, encoding: .utf8)
        try """
            plans:
              pro:
                price: 1999
                modules: [sales]
              capped:
                price: 0
                modules: [sales]
                quotas: { api_calls_per_month: 60 }
            """.write(to: tenants.appending(path: "plans.yaml"), atomically: true, encoding: .utf8)
        let atrium = AtriumBinary(dataDirectory: scratch.appending(path: ".atrium"))
        let ports = [try LocalPort.free(), try LocalPort.free()]
        let first = try atrium.start(["serve", "--port", String(ports[0]), "--tenants-dir", tenants.path()])
        try await first.waitUntilReady(port: ports[0])
        let second = try atrium.start(["serve", "--port", String(ports[1]), "--tenants-dir", tenants.path(), "--no-worker"])
        var servers = [first, second]
        defer {
            for server in servers.reversed() { server.stop() }
            _ = try? atrium.runBlocking("db", "stop")
        }
        try await second.waitUntilReady(port: ports[1])
        let login = try await HTTP.post(
            "http://127.0.0.1:\(ports[0])/v1/tenants/acme/auth/login", json: #"{"email":"owner@acme.test","password":"acme-demo-owner"}"#)
        let token = try #require((try JSONSerialization.jsonObject(with: login.body) as? [String: Any])?["access_token"] as? String)

        // Every 2xx of an authenticated route is one counted API call.
        var counted = 0
        func call(_ method: String, _ port: Int, _ path: String) async throws -> (status: Int, code: String?) {
            guard let url = URL(string: "http://127.0.0.1:\(port)/v1/tenants/acme\(path)") else { throw URLError(.badURL) }
            var request = URLRequest(url: url)
            request.httpMethod = method
            request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
            let response = try await HTTP.send(request)
            if (200..<300).contains(response.status) { counted += 1 }
            let code = (try? JSONSerialization.jsonObject(with: response.body) as? [String: Any])?["code"] as? String
            return (response.status, code)
        }
        /// Polls both servers until `path` answers `status`. The bound is far below the
        /// cache's 60 s second bound, so only a notification can make it in time; the
        /// propagation time itself is a benchmark's business, not a test's.
        func untilBoth(_ path: String, answer status: Int, code: String? = nil) async throws {
            let started = ContinuousClock.now
            for port in ports {
                var seen = try await call("GET", port, path)
                while seen.status != status || (code != nil && seen.code != code) {
                    try #require(ContinuousClock.now - started < .seconds(15), "port \(port) still answers \(seen) to \(path)")
                    try await Task.sleep(for: .milliseconds(20))
                    seen = try await call("GET", port, path)
                }
            }
        }

        // Warm both caches, then change the tenant through the first server's REST API.
        for port in ports { #expect(try await call("GET", port, "/sales/contacts").status == 200) }
        #expect(try await call("DELETE", ports[0], "/modules/sales").status == 200)
        try await untilBoth("/sales/contacts", answer: 403, code: "module_disabled")
        #expect(try await call("PUT", ports[1], "/modules/sales").status == 200)
        try await untilBoth("/sales/contacts", answer: 200)

        // The operator CLI (a third process) suspends and resumes the tenant.
        #expect(try await atrium.run("tenants", "suspend", "acme").status == 0)
        try await untilBoth("/auth/me", answer: 403, code: "tenant_suspended")
        #expect(try await atrium.run("tenants", "resume", "acme").status == 0)
        try await untilBoth("/auth/me", answer: 200)

        // Spread calls over both servers; then a plan with a quota of 60 calls a month.
        // Once the calls made so far are flushed (once a second) the counter is the floor
        // of the first lease, and the two servers, leasing slices of what is left, admit
        // exactly the rest between them: calls alternate until both refuse.
        for index in 0..<10 { #expect(try await call("GET", ports[index % 2], "/auth/me").status == 200) }
        #expect(counted < 60)
        #expect(try await atrium.run("tenants", "set-plan", "acme", "capped", "--plans", tenants.appending(path: "plans.yaml").path()).status == 0)
        // Both servers flush what they counted (once a second); the plan change reaches
        // them the same way (within milliseconds), while this waits.
        let scopeToAcme = "SELECT set_config('app.tenant_id', (SELECT id::text FROM tenants WHERE slug = 'acme'), false);"
        var flushed = false
        for _ in 0..<100 where !flushed {
            let recorded = try await atrium.run(
                "db", "shell", "--role", "owner", "--command",
                scopeToAcme + " SELECT 'recorded=' || coalesce(sum(quantity), 0) FROM usage_records WHERE meter = 'kernel.api_calls'")
            flushed = recorded.stdout.contains("recorded=\(counted)\n")
            if !flushed { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(flushed, "the servers never flushed the \(counted) calls they counted")
        var open = [true, true]
        for index in 0..<200 where open.contains(true) {
            guard open[index % 2] else { continue }
            let answer = try await call("GET", ports[index % 2], "/auth/me")
            if answer.status == 429 {
                #expect(answer.code == "quota_exceeded")
                open[index % 2] = false
            }
        }
        #expect(open == [false, false])
        #expect(counted == 60)

        // A graceful stop records what each server counted: every call once.
        for server in servers.reversed() {
            server.signal(SIGTERM)
            #expect(try await server.wait(timeout: .seconds(60)).status == 0)
        }
        servers = []
        let scope = "SELECT set_config('app.tenant_id', (SELECT id::text FROM tenants WHERE slug = 'acme'), false);"
        let recorded = try await atrium.run(
            "db", "shell", "--role", "owner", "--command",
            scope + " SELECT 'recorded=' || coalesce(sum(quantity), 0) FROM usage_records WHERE meter = 'kernel.api_calls'")
        #expect(recorded.stdout.contains("recorded=\(counted)\n"), "\(counted) calls counted; \(recorded.stdout) \(recorded.stderr)")
        let reconcile = try await atrium.run("billing", "reconcile", "--plans", tenants.appending(path: "plans.yaml").path())
        #expect(reconcile.status == 0, "\(reconcile.stdout)\(reconcile.stderr)")
    }
}
