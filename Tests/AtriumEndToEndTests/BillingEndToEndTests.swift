import AtriumCore
import AtriumTesting
import Foundation
import Testing

@Suite("Billing and shared rate limits, with built binaries", .serialized)
struct BillingEndToEndTests {
    /// A scratch folder with one tenant (a demo login) and a plan catalog.
    func scratchWithTenant(plans: String) throws -> (scratch: URL, tenants: URL) {
        let scratch = try makeScratchDirectory()
        let tenants = scratch.appending(path: "tenants")
        try FileManager.default.createDirectory(at: tenants, withIntermediateDirectories: true)
        try """
            slug: acme
            name: Acme
            plan: pro
            users:
              - email: owner@acme.test
                password: acme-demo-owner
                roles: [owner]
            """.write(to: tenants.appending(path: "acme.yaml"), atomically: true, encoding: .utf8)
        try plans.write(to: tenants.appending(path: "plans.yaml"), atomically: true, encoding: .utf8)
        return (scratch, tenants)
    }


    @Test func twoServersShareOneLimitThroughPostgreSQL() async throws {
        let (scratch, tenants) = try scratchWithTenant(plans: """
            plans:
              pro:
                price: 1999
                rate_limits:
                  hourly: { limit: 6, window: 3600 }
            """)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let atrium = AtriumBinary(dataDirectory: scratch.appending(path: ".atrium"), extra: ["ATRIUM_RATE_LIMIT_STORE": "postgres"])
        let ports = [try LocalPort.free(), try LocalPort.free()]
        let first = try atrium.start(["serve", "--port", String(ports[0]), "--tenants-dir", tenants.path()])
        try await first.waitUntilReady(port: ports[0])
        let second = try atrium.start(["serve", "--port", String(ports[1]), "--tenants-dir", tenants.path(), "--no-worker"])
        defer {
            for server in [second, first] { server.stop() }
        }
        try await second.waitUntilReady(port: ports[1])
        let login = try await HTTP.post(
            "http://127.0.0.1:\(ports[0])/v1/tenants/acme/auth/login", json: #"{"email":"owner@acme.test","password":"acme-demo-owner"}"#)
        let token = try #require((try JSONSerialization.jsonObject(with: login.body) as? [String: Any])?["access_token"] as? String)
        var statuses: [Int] = []
        var lastRefusal: HTTP.Response?
        for index in 0..<10 {
            let response = try await HTTP.get("http://127.0.0.1:\(ports[index % 2])/v1/tenants/acme/auth/me", bearer: token)
            statuses.append(response.status)
            if response.status == 429 { lastRefusal = response }
        }
        // Six requests an hour for the tenant, whichever server answers.
        #expect(statuses.filter { $0 == 200 }.count == 6, "\(statuses)")
        #expect(statuses.filter { $0 == 429 }.count == 4, "\(statuses)")
        #expect(lastRefusal?.headers["ratelimit-policy"] == #""hourly";q=6;w=3600"#)
        #expect(lastRefusal?.headers["ratelimit"]?.hasPrefix(#""hourly";r=0;t="#) == true)
        #expect(lastRefusal?.headers["retry-after"].flatMap(Int.init).map { $0 > 0 && $0 <= 600 } == true)
    }

    /// The README's promise for `kill -9`: a server loses at most its last second of
    /// API-call counts. Calls made more than a flush interval before the kill are all
    /// recorded; the ones of the last moment may not be.
    @Test(.timeLimit(.minutes(3))) func killNineLosesAtMostTheLastSecondOfAPICalls() async throws {
        let (scratch, tenants) = try scratchWithTenant(plans: "plans:\n  pro:\n    price: 1999\n")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let atrium = AtriumBinary(dataDirectory: scratch.appending(path: ".atrium"))
        let port = try LocalPort.free()
        let server = try atrium.start(["serve", "--port", String(port), "--tenants-dir", tenants.path()])
        defer {
            server.killAndReap()
            _ = try? atrium.runBlocking("db", "stop")
        }
        try await server.waitUntilReady(port: port)
        // Usage is read across tenants in the platform scope (RLS holds for the owner too).
        let platform = AtriumBinary(dataDirectory: scratch.appending(path: ".atrium"), extra: ["PGOPTIONS": "-c app.scope=platform"])
        func recorded() async throws -> Int {
            let sum = try await platform.run(
                "db", "shell", "--role", "owner", "-c",
                "SELECT 'sum=' || coalesce(sum(quantity), 0) FROM usage_records WHERE meter = 'kernel.api_calls'")
            let line = try #require(sum.stdout.split(separator: "\n").first { $0.contains("sum=") }, "\(sum)")
            return try #require(Int(line.trimmingCharacters(in: .whitespaces).dropFirst(4)))
        }
        let login = try await HTTP.post(
            "http://127.0.0.1:\(port)/v1/tenants/acme/auth/login", json: #"{"email":"owner@acme.test","password":"acme-demo-owner"}"#)
        let token = try #require((try JSONSerialization.jsonObject(with: login.body) as? [String: Any])?["access_token"] as? String)
        // Whatever the login counted has been flushed once a second has passed.
        try await Task.sleep(for: .milliseconds(1_500))
        let before = try await recorded()
        for _ in 0..<12 {
            #expect(try await HTTP.get("http://127.0.0.1:\(port)/v1/tenants/acme/auth/me", bearer: token).status == 200)
        }
        // The promise's own interval, with half a second to spare: no polling, since the
        // point is what a kill after that interval finds.
        try await Task.sleep(for: .milliseconds(1_500))
        server.signal(SIGKILL)
        _ = try await server.wait(timeout: .seconds(30))
        let after = try await recorded()
        #expect(after - before == 12, "before \(before), after \(after)")
    }

    @Test func invoicesBillingAndUsageCommands() async throws {
        let (scratch, tenants) = try scratchWithTenant(plans: """
            meters:
              partner.calls: { aggregation: count, unit: call }
            plans:
              free:
                price: 0
                quotas: { seats: 3 }
              pro:
                price: 1999
                meters:
                  partner.calls: { per_unit: 2 }
            """)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let atrium = AtriumBinary(dataDirectory: scratch.appending(path: ".atrium"))
        let plans = tenants.appending(path: "plans.yaml").path()
        #expect(try await atrium.run("migrate").status == 0)
        #expect(try await atrium.run("tenants", "apply", tenants.path()).status == 0)

        let report = try await atrium.run("usage", "report", "--tenant", "acme", "--plans", plans)
        #expect(report.status == 0, "\(report.stderr)")
        #expect(report.stdout.contains("partner.calls"))
        #expect(report.stdout.contains("kernel.api_calls"))

        // Acme was created today: October has nothing to bill until its subscription is backdated.
        #expect(try await atrium.run("invoices", "close", "--period", "2026-10", "--plans", plans).stdout.contains("skipped: not subscribed that month"))
        let backdate = try await atrium.run(
            "db", "shell", "--role", "owner", "--command",
            "SELECT set_config('app.scope', 'platform', false); UPDATE plan_periods SET started_at = '2026-01-01T00:00:00Z'")
        #expect(backdate.status == 0, "\(backdate.stderr)")
        let close = try await atrium.run("invoices", "close", "--period", "2026-10", "--plans", plans)
        #expect(close.status == 0, "\(close.stderr)")
        #expect(close.stdout.contains("ACME-202610"))
        #expect(close.stdout.contains("created"))
        #expect(try await atrium.run("invoices", "close", "--period", "2026-10", "--tenant", "acme", "--plans", plans).stdout.contains("existed"))
        let notEnded = try await atrium.run("invoices", "close", "--period", "2999-01", "--plans", plans)
        #expect(notEnded.status != 0)
        #expect(notEnded.stderr.contains("has not ended yet"))

        let list = try await atrium.run("invoices", "list", "--tenant", "acme", "--plans", plans)
        #expect(list.stdout.contains("ACME-202610"))
        #expect(list.stdout.contains("draft"))
        let finalize = try await atrium.run("invoices", "finalize", "--tenant", "acme", "ACME-202610", "--plans", plans)
        #expect(finalize.status == 0, "\(finalize.stderr)")
        #expect(finalize.stdout.contains("finalized"))
        #expect(finalize.stdout.contains("pro plan, 2026-10"))
        #expect(finalize.stdout.contains("total 19.99 USD"))
        #expect(try await atrium.run("invoices", "pay", "--tenant", "acme", "acme-202610", "--plans", plans).stdout.contains("paid"))
        let void = try await atrium.run("invoices", "void", "--tenant", "acme", "ACME-202610", "--plans", plans)
        #expect(void.status != 0)
        #expect(void.stderr.contains("is paid"))
        let show = try await atrium.run("invoices", "show", "--tenant", "acme", "ACME-202610", "--json", "--plans", plans)
        #expect(show.stdout.contains(#""status" : "paid""#))

        let reconcile = try await atrium.run("billing", "reconcile", "--plans", plans)
        #expect(reconcile.status == 0, "\(reconcile.stdout)\(reconcile.stderr)")
        #expect(reconcile.stdout.contains("agree"))
        // A counter written by hand, with no events behind it: reconcile names it and exits 1.
        let scope = "SELECT set_config('app.tenant_id', (SELECT id::text FROM tenants WHERE slug = 'acme'), false);"
        let tamper = try await atrium.run(
            "db", "shell", "--role", "owner", "--command",
            scope + " INSERT INTO usage_counters (tenant_id, meter, period, quantity, events, max_quantity) "
                + "SELECT id, 'partner.calls', date_trunc('month', now())::date, 5, 1, 5 FROM tenants WHERE slug = 'acme'")
        #expect(tamper.status == 0, "\(tamper.stderr)")
        let disagree = try await atrium.run("billing", "reconcile", "--plans", plans)
        #expect(disagree.status == 1, "\(disagree.stdout)\(disagree.stderr)")
        #expect(disagree.stdout.contains("DIFFERENCES") && disagree.stdout.contains("partner.calls: counter_mismatch"), "\(disagree.stdout)")
        #expect(try await atrium.run("db", "shell", "--role", "owner", "--command", scope + " DELETE FROM usage_counters WHERE meter = 'partner.calls'").status == 0)
        #expect(try await atrium.run("billing", "reconcile", "--plans", plans).status == 0)

        let webhook = try await atrium.run("billing", "webhook", "--tenant", "acme", "--url", "https://hooks.example.test/atrium")
        #expect(webhook.status == 0, "\(webhook.stderr)")
        #expect(webhook.stdout.contains("signing secret (shown once): whsec_"))
        #expect(try await atrium.run("billing", "webhook", "--tenant", "acme").stdout.contains("https://hooks.example.test/atrium"))
        #expect(try await atrium.run("billing", "webhook", "--tenant", "acme", "--url", "ftp://x").status != 0)

        #expect(try await atrium.run("tenants", "set-plan", "acme", "free", "--trial-days", "14", "--plans", plans).stdout == "acme: pro -> free\n")
        #expect(try await atrium.run("tenants", "cancel", "acme").stdout == "acme: subscription canceled\n")
        let audit = try await atrium.run("audit", "--tenant", "acme")
        #expect(audit.stdout.contains("subscription.canceled"))
        #expect(audit.stdout.contains("invoice.paid"))
        // Deleting the tenant takes its frozen invoices with it.
        let delete = try await atrium.run("tenants", "delete", "acme", "--yes")
        #expect(delete.status == 0, "\(delete.stderr)")
    }
}
