import AtriumCore
import AtriumTesting
import Foundation
import PostgresNIO
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Walks every operation of `/v1/openapi.json` on a running `atrium serve` and sends
/// each parameter and body field hostile values, one at a time: NUL, lone surrogates,
/// 10 kB and grapheme-heavy strings, ±1e300, Int64 bounds, impossible dates, junk
/// cursors (among them the cursor time that once crashed the server), deep nesting,
/// values inside nested arrays and objects, hostile headers (`Idempotency-Key`,
/// `Authorization`, `X-Request-Id`, `Accept`) and wrong content types, on the tenant's,
/// the public and the operator's API. Each operation first gets a plausible request that
/// must succeed (so the variants reach a working handler), and at least
/// `minimumVariants`. Every answer must be below 500 and, when an error, a problem
/// document; the process must be alive after each operation; and every refused request
/// must have changed no row of any of the tenant's tables.
@Suite("Hostile input battery", .serialized)
struct HostileInputBatteryTests {
    @Test(.timeLimit(.minutes(15))) func everyOperationAnswersHostileInputWithoutAFault() async throws {
        let server = try await BatteryServer.start()
        defer { server.stop() }
        // The real server (not the router alone) names no framework.
        let health = try await HTTP.get(server.url("/healthz"))
        #expect(health.headers["server"] == nil, "Server: \(health.headers["server"] ?? "")")
        #expect(health.headers["x-content-type-options"] == "nosniff")
        // Requests the HTTP parser refuses are answered before any route runs: still a
        // problem document, then the connection closes.
        let malformed = [
            "bad header bytes": "GET /healthz HTTP/1.1\r\nHost: x\r\nBad\u{1}Name: 1\r\n\r\n",
            "two lengths": "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            "1,001 headers": "GET /healthz HTTP/1.1\r\nHost: x\r\n" + String(repeating: "X-H: 1\r\n", count: 1_001) + "\r\n",
        ]
        for (name, raw) in malformed.sorted(by: { $0.key < $1.key }) {
            let connection = try RawHTTP(port: server.port)
            try connection.send(Data(raw.utf8))
            let answer = try await connection.response()
            #expect(answer.hasPrefix("HTTP/1.1 400"), "\(name): \(answer.prefix(300))")
            #expect(answer.lowercased().contains("content-type: application/problem+json"), "\(name): \(answer.prefix(300))")
            #expect(answer.contains(#""code":"malformed_http""#), "\(name): \(answer.prefix(300))")
        }
        let document = try #require(try JSONSerialization.jsonObject(with: try await HTTP.get(server.url("/v1/openapi.json")).body) as? [String: Any])
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        let components = ((document["components"] as? [String: Any])?["schemas"] as? [String: Any]) ?? [:]
        var faults: [String] = []
        var requests = 0
        var operationCount = 0
        try await server.withTenantTables { tables in
            var current = try await tables.snapshot()
            var deletions: [(String, [String: Any])] = []
            // Sends one request and checks its answer, and that a refusal changed no row.
            func check(_ variant: BatteryRequest) async throws -> (Int, String) {
                // No answer at all (the server gone) is a fault like a 500.
                let response = (try? await server.send(variant)) ?? HTTP.Response(status: 0, contentType: nil, body: Data())
                requests += 1
                if response.status >= 500 || response.status == 0 {
                    faults.append("\(variant.label) → \(response.status) \(String(decoding: response.body.prefix(200), as: UTF8.self))")
                } else if response.status >= 400, response.contentType?.hasPrefix("application/problem+json") != true {
                    faults.append("\(variant.label) → \(response.status) without a problem document (\(response.contentType ?? "no type"))")
                }
                if let expected = variant.expectedStatus, response.status != expected {
                    faults.append("\(variant.label) → \(response.status), expected \(expected)")
                }
                // What a request that succeeded set off (mail, an import) lands before the
                // next request is judged.
                if response.status < 400 { try await tables.settle() }
                let after = try await tables.snapshot()
                if response.status >= 400 {
                    let allowed = Battery.writesWhenRefused[variant.operation] ?? [:]
                    let changed = after.keys.filter { after[$0] != current[$0] && allowed[$0] == nil }.sorted()
                    if !changed.isEmpty { faults.append("\(variant.label) → \(response.status), yet it changed \(changed.joined(separator: ", "))") }
                }
                current = after
                return (response.status, String(decoding: response.body.prefix(400), as: UTF8.self))
            }
            // A plausible request that must succeed, unless the operation needs what a battery
            // cannot have (listed, with why, in `Battery.noControl`).
            func checkControl(_ control: BatteryRequest) async throws {
                let (status, body) = try await check(control)
                let exempt = Battery.noControl[control.operation]
                if status >= 300 && exempt == nil {
                    faults.append("control \(control.label) (\(control.target)) → \(status) \(body.prefix(160)): the variants may never reach the handler")
                }
                if status < 300 && exempt != nil { faults.append("control \(control.label) → \(status), listed as unable to succeed") }
            }
            for (path, operations) in paths.sorted(by: { $0.key < $1.key }) {
                for (method, operation) in operations.sorted(by: { $0.key < $1.key }) {
                    guard let operation = operation as? [String: Any] else { continue }
                    operationCount += 1
                    let name = "\(method.uppercased()) \(path)"
                    let variants = Battery.variants(
                        method: method.uppercased(), path: path, operation: operation, components: components, fixtures: server.fixtures)
                    if variants.count < Battery.minimumVariants { faults.append("\(name): only \(variants.count) variants") }
                    try await server.refreshTokens()
                    current = try await tables.snapshot()
                    // Deletions' controls come last of all, so every other operation's
                    // variants still find the records.
                    if method == "delete" {
                        deletions.append((path, operation))
                    } else {
                        try await checkControl(
                            Battery.control(method: method.uppercased(), path: path, operation: operation, components: components, fixtures: server.fixtures))
                    }
                    for variant in variants { _ = try await check(variant) }
                    try #require(server.isAlive, "the server died during \(name); faults so far: \(faults)")
                    #expect(try await HTTP.get(server.url("/healthz")).status == 200)
                    // A line now and then: the battery runs for minutes, alone at the end of
                    // a full run, and the watchdog takes five silent minutes for a hang.
                    if operationCount.isMultiple(of: 25) { print("hostile input battery: \(operationCount) operations, \(requests) requests so far") }
                }
            }
            try await server.refreshTokens()
            try await server.spareSession()
            current = try await tables.snapshot()
            // Nested records before their parents, and disabling the module last: every
            // other deletion needs it.
            let ordered = deletions.sorted { first, second in
                let (a, b) = (first.0.contains("/modules/"), second.0.contains("/modules/"))
                return a != b ? b : first.0.split(separator: "/").count > second.0.split(separator: "/").count
            }
            for (path, operation) in ordered {
                try await checkControl(Battery.control(method: "DELETE", path: path, operation: operation, components: components, fixtures: server.fixtures))
            }
            #expect(requests > 1_000, "the battery sent \(requests) requests")
            #expect(operationCount > 60, "the battery reached \(operationCount) operations")
            print("hostile input battery: \(requests) requests over \(operationCount) operations, \(current.count) tables watched, \(faults.count) fault(s)")
        }
        #expect(faults.isEmpty, "\(faults.count) fault(s):\n\(faults.prefix(40).joined(separator: "\n"))")

        // Then schemathesis generates requests from the same document (coverage of each
        // schema's edges, then property-based fuzzing) and applies all of its checks:
        // no 5xx, responses and status codes as documented, 405s with `Allow`.
        guard let python = ProcessInfo.processInfo.environment["ATRIUM_TEST_PYTHON"] else {
            Issue.record("ATRIUM_TEST_PYTHON is not set: run the suite with `make test`, which installs schemathesis")
            return
        }
        let schemathesis = URL(fileURLWithPath: python).deletingLastPathComponent().appending(path: "schemathesis").path()
        let run = try RunningProcess(
            executable: schemathesis,
            arguments: [
                "run", server.url("/v1/openapi.json"), "--header", "Authorization: Bearer \(try await server.token(.owner))",
                "--phases", "coverage,fuzzing", "--max-examples", "5", "--max-time", "90", "--seed", "1", "--workers", "1",
                "--suppress-health-check", "filter_too_much", "--warnings", "off", "--no-color",
            ],
            environment: ProcessInfo.processInfo.environment)
        let result = try await run.wait(timeout: .seconds(300))
        #expect(result.status == 0, "schemathesis found problems:\n\(result.stdout.suffix(6_000))\n\(result.stderr.suffix(2_000))")
        #expect(server.isAlive, "the server died under schemathesis")
    }
}

/// One request of the battery.
struct BatteryRequest {
    var method: String
    /// Path and query, already percent-encoded.
    var target: String
    var body: Data?
    var contentType: String?
    var token: BatteryServer.Caller
    /// Sent after the caller's `Authorization`, so a variant may replace it.
    var headers: [String: String] = [:]
    var label: String
    /// When the answer is known exactly (a wrong content type is 415).
    var expectedStatus: Int?
    /// "METHOD /path" as the document names it.
    var operation: String
}

/// The hostile values and how they are placed.
enum Battery {
    /// Raw JSON texts put in place of one body field.
    static let jsonValues: [String] = {
        let family = String(repeating: "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}\u{200D}\u{1F466}", count: 60)
        return [
            #""\u0000""#, #""a\u0000b""#, #""\ud800""#, #""\udfff x""#, "\"" + String(repeating: "x", count: 10_240) + "\"",
            "\"" + family + "\"", #""1e300""#, #""inf""#, #""NaN""#, #""2024-02-30""#, #""0000-01-01""#, #""0000-01-01T00:00:00Z""#,
            #""9999-12-31T23:59:60Z""#, #""2024-02-30T10:00:00Z""#, #""' OR 1=1 --""#, #""../../etc/passwd""#, #""""#, #""\n""#,
            "1e300", "-1e300", "9223372036854775807", "-9223372036854775808", "9223372036854775808", "-1", "0.5", "null", "true",
            "[]", "{}", "[\"\\u0000\"]",
        ]
    }()

    /// Percent-encoded texts put in place of one query or path parameter.
    static let textValues: [String] = {
        let family = String(repeating: "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}\u{200D}\u{1F466}", count: 60)
        return [
            "%00", "a%00b", String(repeating: "x", count: 10_240), percent(family), "1e300", "-1", "9223372036854775808", "-9223372036854775809",
            "2024-02-30", "0000-01-01T00:00:00Z", "9999-12-31T23:59:60Z", "NaN", "%FF%FE", "%27%20OR%201%3D1", "..%2F..%2Fetc",
        ]
    }()

    /// Cursors a client could forge: base64url JSON with times the driver cannot take,
    /// the wrong arity, and no JSON at all.
    static let cursors: [String] = {
        let nilID = "00000000-0000-0000-0000-000000000000"
        let forged = ["1e300", "inf", "-inf", "nan", "1e13", "-1e13", "-62135596801", "253402300800", "9223372036854775807"].map { "[\"\($0)\",\"\(nilID)\"]" }
        let texts = forged + ["[\"1\"]", "[1,2]", "{}", "[\"1\",\"not-a-uuid\"]", "[\"\\u0000\",\"\(nilID)\"]"]
        return texts.map { base64url(Data($0.utf8)) } + ["!!!", "%00", String(repeating: "A", count: 5_000)]
    }()

    /// Fewer variants than this means the generator did not understand an operation.
    static let minimumVariants = 12

    /// Header values a client could send; printable ASCII, as HTTP allows.
    static let headerValues = ["", " ", String(repeating: "k", count: 8_192), "' OR 1=1 --", "../../etc/passwd", "%00", "\\u0000", "{}", "-1"]

    /// Controls that cannot succeed from a battery, and why.
    static let noControl: [String: String] = [
        "PUT /v1/tenants/{tenant}/admin/oidc-providers/{name}": "a provider other than Google needs an issuer this machine cannot reach",
        "DELETE /v1/tenants/{tenant}/admin/oidc-providers/{name}": "no provider exists (see PUT)",
        "POST /v1/tenants/{tenant}/auth/accept-invitation": "needs the token only the invitation mail carries",
        "POST /v1/tenants/{tenant}/auth/reset-password": "needs the token only the reset mail carries",
        "POST /v1/tenants/{tenant}/auth/verify-email": "needs the token only the verification mail carries",
        "POST /v1/tenants/{tenant}/auth/mfa/totp/confirm": "needs a code from the authenticator app",
        "POST /v1/tenants/{tenant}/auth/mfa/totp/disable": "needs TOTP turned on and a code",
        "POST /v1/tenants/{tenant}/auth/mfa/verify": "needs a login's MFA challenge",
        "GET /v1/tenants/{tenant}/auth/oauth/{provider}/start": "no OpenID provider is configured (see PUT oidc-providers)",
        "GET /v1/tenants/{tenant}/auth/oauth/{provider}/callback": "needs a provider's state and code",
        "POST /v1/tenants/{tenant}/auth/register": "the tenant's sign-up is closed, the default",
        "POST /v1/tenants/{tenant}/auth/resend-verification": "the owner's email is verified already",
        "GET /v1/tenants/{tenant}/billing/invoices/{id}": "no invoice exists before a billing period closes",
        "GET /v1/tenants/{tenant}/billing/webhook": "no webhook is set when it runs (PUT comes after GET)",
        "POST /v1/tenants/{tenant}/crypto/connections/{id}/sync":
            "the fixture connection synced when it was made, and a manual sync inside the plan's interval (300 s at least) is 429 sync_too_soon",
    ]

    /// A request that succeeds, where the plausible values do not: `{contact}`, `{deal}`,
    /// `{product}`, `{company}` and `{refresh}` name fixtures. Its JSON body is also the
    /// base the variants change one field of.
    struct Control {
        var query = ""
        var body: String?
        var contentType = "application/json"
    }

    static let controls: [String: Control] = [
        "PUT /v1/operator/tenants/{tenant}/plan": Control(body: #"{"plan":"unlimited"}"#),
        "POST /v1/tenants/{tenant}/admin/api-keys": Control(body: #"{"name":"battery key","permissions":["sales.records.own"]}"#),
        "POST /v1/tenants/{tenant}/admin/roles": Control(body: #"{"name":"battery_role","permissions":["sales.records.own"]}"#),
        "POST /v1/tenants/{tenant}/admin/users/{id}/roles": Control(body: #"{"role":"battery_role"}"#),
        "POST /v1/tenants/{tenant}/admin/users/invite": Control(body: #"{"email":"invitee@battery.test","role":"member"}"#),
        // Its own caller: a variant with a valid new password changes it.
        "POST /v1/tenants/{tenant}/auth/change-password": Control(body: #"{"current_password":"battery-changer-pass","new_password":"battery-changer-pass"}"#),
        "POST /v1/tenants/{tenant}/auth/forgot-password": Control(body: #"{"email":"owner@battery.test"}"#),
        // An account of its own: the variants' wrong passwords lock it.
        "POST /v1/tenants/{tenant}/auth/login": Control(body: #"{"email":"login@battery.test","password":"battery-login-pass"}"#),
        "POST /v1/tenants/{tenant}/auth/refresh": Control(body: #"{"refresh_token":"{refresh}"}"#),
        "POST /v1/tenants/{tenant}/billing/usage/events": Control(body: #"{"events":[{"meter":"sales.rows_imported","quantity":1,"idempotency_key":"battery-1"}]}"#),
        "PUT /v1/tenants/{tenant}/billing/webhook": Control(body: #"{"url":"https://hooks.example.com/battery"}"#),
        "GET /v1/tenants/{tenant}/sales/activities": Control(query: "?contact={contact}"),
        "POST /v1/tenants/{tenant}/sales/activities": Control(body: #"{"kind":"call","subject":"Called","contact_id":"{contact}"}"#),
        "POST /v1/tenants/{tenant}/sales/companies": Control(body: #"{"name":"Other Co"}"#),
        "PATCH /v1/tenants/{tenant}/sales/companies/{id}": Control(body: #"{"name":"Battery Company"}"#),
        "POST /v1/tenants/{tenant}/sales/contacts": Control(body: #"{"first_name":"Other","email":"other@battery.test","tags":["x"],"company_id":"{company}"}"#),
        "PATCH /v1/tenants/{tenant}/sales/contacts/{id}": Control(body: #"{"last_name":"Terry","tags":["y"]}"#),
        "POST /v1/tenants/{tenant}/sales/deals": Control(body: #"{"title":"Other deal","amount":10,"currency":"USD","contact_id":"{contact}"}"#),
        "PATCH /v1/tenants/{tenant}/sales/deals/{id}": Control(body: #"{"title":"Bigger deal","amount":20}"#),
        "POST /v1/tenants/{tenant}/sales/deals/{id}/items": Control(body: #"{"product_id":"{product}","quantity":1}"#),
        "PATCH /v1/tenants/{tenant}/sales/deals/{id}/items/{item}": Control(body: #"{"quantity":2}"#),
        "POST /v1/tenants/{tenant}/sales/imports": Control(
            query: "?entity=contacts", body: "email,first_name\r\nimported@battery.test,Imp\r\n", contentType: "text/csv"),
        "POST /v1/tenants/{tenant}/sales/products": Control(body: #"{"sku":"B-2","name":"Other","unit_price":5,"currency":"USD"}"#),
        "PATCH /v1/tenants/{tenant}/sales/products/{id}": Control(body: #"{"name":"Battery pack"}"#),
        "POST /v1/tenants/{tenant}/portfolio/portfolios": Control(body: #"{"name":"Other portfolio","base_currency":"USD","cost_method":"average"}"#),
        "PATCH /v1/tenants/{tenant}/portfolio/portfolios/{id}": Control(body: #"{"name":"Battery savings","cost_method":"fifo"}"#),
        "POST /v1/tenants/{tenant}/portfolio/portfolios/{id}/transactions": Control(
            body: #"{"type":"buy","symbol":"BAT","quantity":"1.5","price":"10.25","currency":"USD","trade_date":"2024-01-03","fee":"0.10"}"#),
        "GET /v1/tenants/{tenant}/portfolio/portfolios/{id}/holdings": Control(query: "?as_of=2024-03-04"),
        "GET /v1/tenants/{tenant}/portfolio/portfolios/{id}/realized": Control(query: "?as_of=2024-03-04"),
        "POST /v1/tenants/{tenant}/portfolio/analyses": Control(body: #"{"portfolio_id":"{portfolio}","as_of":"2024-03-04","risk_band":"moderate"}"#),
        "PUT /v1/tenants/{tenant}/portfolio/market/instruments/{symbol}": Control(
            body: #"{"name":"Battery Inc.","sector":"Energy","asset_type":"stock","currency":"USD","market_cap":"1000000"}"#),
        "POST /v1/tenants/{tenant}/portfolio/market/instruments/{symbol}/prices": Control(body: #"{"closes":[{"date":"2024-02-29","close":"9.75"}]}"#),
        "GET /v1/tenants/{tenant}/portfolio/market/instruments/{symbol}/prices": Control(query: "?from=2024-01-01&to=2024-12-31"),
        "POST /v1/tenants/{tenant}/portfolio/market/fx": Control(body: #"{"base":"EUR","quote":"USD","date":"2024-01-02","rate":"1.10"}"#),
        "PUT /v1/tenants/{tenant}/portfolio/portfolios/{id}/prices/{symbol}": Control(body: #"{"date":"2024-03-02","price":"11.25"}"#),
        "DELETE /v1/tenants/{tenant}/portfolio/portfolios/{id}/prices/{symbol}": Control(query: "?date=2024-03-02"),
        "GET /v1/tenants/{tenant}/portfolio/portfolios/{id}/performance": Control(query: "?from=2024-01-02&to=2024-03-04"),
        "PUT /v1/tenants/{tenant}/portfolio/profile/survey": Control(
            body: #"{"answers":{"age_band":"30_44","horizon":"7_15y","loss_reaction":"hold","income_stability":"stable","experience":"some","goal":"growth"},"goals":["house"]}"#),
        "POST /v1/tenants/{tenant}/portfolio/market/imports": Control(
            query: "?entity=prices", body: "symbol,date,close\r\nBAT,2024-03-05,12.75\r\n", contentType: "text/csv"),
        "POST /v1/tenants/{tenant}/portfolio/portfolios/{id}/transactions/imports": Control(
            query: "?entity=transactions", body: "external_id,date,type,amount,currency\r\nB-2,2024-01-03,deposit,50,USD\r\n", contentType: "text/csv"),
        "POST /v1/tenants/{tenant}/portfolio/portfolios/{id}/withdrawals": Control(body: #"{"amount":"5.00","currency":"USD","trade_date":"2024-01-05"}"#),
        "POST /v1/tenants/{tenant}/portfolio/market/ticks": Control(
            body: "{\"symbol\":\"BAT\",\"price\":\"12.80\",\"date\":\"2024-03-06\"}\n", contentType: "application/x-ndjson"),
        // A key the exchange simulator knows (the fixture connection holds another).
        "POST /v1/tenants/{tenant}/crypto/connections": Control(
            body: #"{"exchange":"binance","label":"Battery wallet","api_key":"\#(BatteryServer.Fixtures.controlKey)","api_secret":"\#(BatteryServer.Fixtures.secret)"}"#),
        // The fixture connection's own key again: the exchange accepts it, the row takes it.
        "PUT /v1/tenants/{tenant}/crypto/connections/{id}/credentials": Control(
            body: #"{"api_key":"\#(BatteryServer.Fixtures.fixtureKey)","api_secret":"\#(BatteryServer.Fixtures.secret)"}"#),
        "PUT /v1/tenants/{tenant}/crypto/settings": Control(body: #"{"valuation_asset":"BTC"}"#),
        "POST /v1/tenants/{tenant}/portfolio/conversations": Control(body: #"{"title":"Other chat","portfolio_id":"{portfolio}"}"#),
        "PATCH /v1/tenants/{tenant}/portfolio/conversations/{id}": Control(body: #"{"title":"Renamed chat"}"#),
        "POST /v1/tenants/{tenant}/portfolio/conversations/{id}/messages": Control(body: #"{"content":"Is BAT too large a part?"}"#),
        "POST /v1/tenants/{tenant}/portfolio/market/corporate-actions": Control(
            body: #"{"symbol":"BAT","type":"split","effective_date":"2030-01-02","ratio":"2"}"#),
    ]

    /// Writes that a refused request makes on purpose, per operation, and why.
    static let writesWhenRefused: [String: [String: String]] = [
        "POST /v1/tenants/{tenant}/auth/login": ["audit_events": "a failed login is audited"],
    ]

    /// One operation of the document: its path filled with fixtures, its caller and a
    /// plausible body.
    struct Shape {
        var method: String
        var path: String
        var caller: BatteryServer.Caller
        var pathNames: [String]
        var queryNames: [String]
        /// The JSON body's properties, resolved through `$ref`; nil without a JSON body.
        var properties: [String: [String: Any]]?
        var required: Set<String> = []
        var components: [String: Any]
        var fixtures: BatteryServer.Fixtures

        init(method: String, path: String, operation: [String: Any], components: [String: Any], fixtures: BatteryServer.Fixtures) {
            self.method = method
            self.path = path
            self.components = components
            self.fixtures = fixtures
            // Portfolio's operations run as the owner, who holds every portfolio permission
            // (the market's writes and advisor assignments among them).
            caller = path.hasPrefix("/v1/operator/") ? .operator : path.contains("/sales/") ? .rep : path.hasSuffix("/change-password") ? .changer : .owner
            let parameters = (operation["parameters"] as? [[String: Any]]) ?? []
            queryNames = parameters.filter { $0["in"] as? String == "query" }.compactMap { $0["name"] as? String }
            pathNames = path.split(separator: "/").filter { $0.hasPrefix("{") }.map { String($0.dropFirst().dropLast()) }
            if let content = (operation["requestBody"] as? [String: Any])?["content"] as? [String: Any],
                let json = content["application/json"] as? [String: Any]
            {
                let schema = Self.resolve(json["schema"] as? [String: Any] ?? [:], components)
                properties = (schema["properties"] as? [String: [String: Any]]) ?? [:]
                required = Set((schema["required"] as? [String]) ?? [])
            }
        }

        /// A named schema is a reference to the document's components.
        static func resolve(_ schema: [String: Any], _ components: [String: Any]) -> [String: Any] {
            guard let reference = schema["$ref"] as? String, reference.hasPrefix("#/components/schemas/") else { return schema }
            return (components[String(reference.dropFirst("#/components/schemas/".count))] as? [String: Any]) ?? [:]
        }

        func resolved(_ replacing: String? = nil, with value: String = "") -> String {
            var segments: [String] = []
            var previous = ""
            for segment in path.split(separator: "/").map(String.init) {
                if segment.hasPrefix("{") {
                    let name = String(segment.dropFirst().dropLast())
                    // The operator's API acts on a tenant of its own, so a cancelled
                    // subscription does not end the battery's.
                    let fixture = name == "tenant" && caller == .operator ? "spare" : fixtures.value(for: name, after: previous, in: path)
                    segments.append(name == replacing ? value : fixture)
                } else {
                    segments.append(segment)
                }
                previous = segment
            }
            return "/" + segments.joined(separator: "/")
        }

        var name: String { "\(method) \(path)" }
        var control: Control? { Battery.controls[name] }

        /// The body the variants start from: the control's, or each required field plausible.
        var plausibleMembers: [String: String] {
            if let text = control?.body.map(fixtures.fill), control?.contentType == "application/json",
                let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
            {
                return object.compactMapValues { value in
                    (try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed])).map { String(decoding: $0, as: UTF8.self) }
                }
            }
            return (properties ?? [:]).filter { required.contains($0.key) }.mapValues { Battery.plausible($0, fixtures: fixtures) }
        }

        func body(_ members: [String: String]) -> Data {
            Data(("{" + members.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "}").utf8)
        }

        func request(target: String? = nil, body: Data? = nil, contentType: String? = nil, headers: [String: String] = [:], label: String,
                     expectedStatus: Int? = nil) -> BatteryRequest {
            BatteryRequest(method: method, target: target ?? resolved(), body: body, contentType: contentType, token: caller, headers: headers,
                           label: "\(method) \(path)\(label)", expectedStatus: expectedStatus, operation: name)
        }
    }

    /// The operation with every value plausible: what must succeed.
    static func control(
        method: String, path: String, operation: [String: Any], components: [String: Any], fixtures: BatteryServer.Fixtures
    ) -> BatteryRequest {
        let shape = Shape(method: method, path: path, operation: operation, components: components, fixtures: fixtures)
        if let control = shape.control, control.contentType != "application/json" {
            return shape.request(target: shape.resolved() + fixtures.fill(control.query), body: control.body.map { Data(fixtures.fill($0).utf8) },
                                 contentType: control.contentType, label: "")
        }
        let target = shape.resolved() + fixtures.fill(shape.control?.query ?? "")
        guard shape.properties != nil else { return shape.request(target: target, label: "") }
        return shape.request(target: target, body: shape.body(shape.plausibleMembers), contentType: "application/json", label: "")
    }

    static func variants(
        method: String, path: String, operation: [String: Any], components: [String: Any], fixtures: BatteryServer.Fixtures
    ) -> [BatteryRequest] {
        let shape = Shape(method: method, path: path, operation: operation, components: components, fixtures: fixtures)
        var requests: [BatteryRequest] = []
        let plausibleBody = shape.properties.map { _ in shape.body(shape.plausibleMembers) }
        let bodyType = plausibleBody == nil ? nil : "application/json"
        // Path parameters (the tenant's and ids).
        for name in shape.pathNames {
            for value in textValues {
                requests.append(shape.request(target: shape.resolved(name, with: value), label: " {\(name)}=\(value.prefix(40))"))
            }
        }
        // Query parameters, one at a time.
        for name in shape.queryNames {
            for value in textValues + (name == "cursor" ? cursors : []) {
                requests.append(shape.request(target: shape.resolved() + "?\(name)=\(value)", label: "?\(name)=\(value.prefix(40))"))
            }
        }
        // Headers, one at a time, on an otherwise plausible request; a deletion's on a
        // record that does not exist, so a variant that passes does not delete the fixture.
        let headerTarget = method == "DELETE" ? shape.pathNames.last.map { shape.resolved($0, with: UUID().uuidString.lowercased()) } : nil
        for header in ["Idempotency-Key", "X-Request-Id", "Accept", "Authorization", "X-Api-Key"] {
            // The headers the kernel reads in full; the others with a few values each.
            let values = switch header {
            case "Authorization": headerValues.map { "Bearer \($0)" } + ["Basic Zm9vOmJhcg==", "Bearer a.b.c"]
            case "Idempotency-Key": headerValues
            default: ["", String(repeating: "k", count: 8_192), "' OR 1=1 --", "-1"]
            }
            for value in values {
                requests.append(shape.request(
                    target: headerTarget, body: plausibleBody, contentType: bodyType, headers: [header: value], label: " \(header): \(value.prefix(40))"))
            }
        }
        // Body fields, one at a time, in an otherwise plausible body; inside arrays and
        // objects as well as in place of them.
        if let properties = shape.properties {
            let base = shape.plausibleMembers
            for (field, schema) in properties.sorted(by: { $0.key < $1.key }) {
                let resolved = Shape.resolve(schema, components)
                var placed = jsonValues.map { ($0, ".\(field)=\($0.prefix(40))") }
                let types = (resolved["type"] as? [String]) ?? [(resolved["type"] as? String) ?? ""]
                if types.contains("array") {
                    placed += jsonValues.map { ("[\($0)]", ".\(field)[0]=\($0.prefix(40))") }
                    // An array of objects: each member's field, in the control's first element.
                    let item = Shape.resolve((resolved["items"] as? [String: Any]) ?? [:], components)
                    if let inner = item["properties"] as? [String: Any] {
                        let first = (try? JSONSerialization.jsonObject(with: Data((base[field] ?? "[]").utf8)) as? [[String: Any]])?.first ?? [:]
                        for key in inner.keys.sorted() {
                            for value in jsonValues {
                                var element = first.compactMapValues { value in
                                    (try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed])).map { String(decoding: $0, as: UTF8.self) }
                                }
                                element[key] = value
                                let text = "[{" + element.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "}]"
                                placed.append((text, ".\(field)[0].\(key)=\(value.prefix(40))"))
                            }
                        }
                    }
                }
                if types.contains("object") {
                    let inner = (resolved["properties"] as? [String: [String: Any]])?.keys.sorted() ?? ["key"]
                    for key in inner {
                        placed += jsonValues.map { ("{\"\(key)\":\($0)}", ".\(field).\(key)=\($0.prefix(40))") }
                    }
                }
                for (value, label) in placed {
                    var members = base
                    members[field] = value
                    requests.append(shape.request(body: shape.body(members), contentType: "application/json", label: " \(label)"))
                }
            }
            for junk in ["{", "[]", "\"text\"", String(repeating: "[", count: 5_000), "{\"a\":" + String(repeating: "[", count: 2_000), "\u{FEFF}{}"] {
                requests.append(shape.request(body: Data(junk.utf8), contentType: "application/json", label: " body=\(junk.prefix(20))"))
            }
            for type in ["text/plain", "application/x-www-form-urlencoded", "application/xml"] {
                requests.append(shape.request(body: Data("{}".utf8), contentType: type, label: " as \(type)", expectedStatus: 415))
            }
        }
        return requests
    }

    /// A value of the schema's type that passes decoding, so a hostile neighbour reaches
    /// the handler.
    static func plausible(_ schema: [String: Any], fixtures: BatteryServer.Fixtures) -> String {
        let type = (schema["type"] as? String) ?? ((schema["type"] as? [String])?.first { $0 != "null" }) ?? "string"
        switch type {
        case "integer", "number": return "1"
        case "boolean": return "false"
        case "array": return "[]"
        case "object": return "{}"
        default:
            if let values = schema["enum"] as? [String], let first = values.first { return "\"\(first)\"" }
            switch schema["format"] as? String {
            case "uuid": return "\"\(fixtures.contact)\""
            case "date-time": return "\"2024-05-01T12:00:00Z\""
            default: return "\"battery\""
            }
        }
    }

    static func percent(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
    }

    static func base64url(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}

/// A server with one tenant on a plan without limits, its owner and a sales rep, and
/// one record of each sales kind so that ids in paths name something real.
final class BatteryServer: @unchecked Sendable {
    enum Caller { case owner, rep, changer, `operator` }
    static let operatorToken = "battery-operator-token-" + UUID().uuidString

    struct Fixtures {
        var contact = ""
        var company = ""
        var deal = ""
        var product = ""
        var activity = ""
        var spareUser = ""
        var item = ""
        var importID = ""
        var apiKey = ""
        var refreshToken = ""
        var session = UUID().uuidString.lowercased()
        var repUser = ""
        var portfolio = ""
        var portfolioEntry = ""
        var analysis = ""
        var corporateAction = ""
        var marketImport = ""
        var transactionImport = ""
        var conversation = ""
        var connection = ""
        var snapshot = ""
        static let symbol = "BAT"
        /// API keys the exchange simulator accepts: the fixture connection's, and the control's.
        static let fixtureKey = String(repeating: "F", count: 64)
        static let controlKey = String(repeating: "C", count: 64)
        static let secret = String(repeating: "s", count: 64)

        /// A control's text with the fixtures in place.
        func fill(_ text: String) -> String {
            [("{contact}", contact), ("{company}", company), ("{deal}", deal), ("{product}", product), ("{refresh}", refreshToken), ("{portfolio}", portfolio)]
                .reduce(text) { $0.replacingOccurrences(of: $1.0, with: $1.1) }
        }

        /// The value of a path parameter, chosen by the collection it follows (and the module).
        func value(for name: String, after collection: String, in path: String) -> String {
            switch name {
            case "tenant": return "battery"
            case "role": return "battery_role"
            case "item": return item
            case "module": return "sales"
            case "symbol": return Self.symbol
            case "tx": return portfolioEntry
            case "import": return transactionImport
            // An advisor (the spare user) assigned to a client (the rep).
            case "advisor": return spareUser
            case "client": return repUser
            default: break
            }
            switch collection {
            case "roles": return "battery_role"
            case "imports": return path.contains("/portfolio/") ? marketImport : importID
            case "api-keys": return apiKey
            case "sessions": return session
            case "contacts": return contact
            case "companies": return company
            case "deals": return deal
            case "products": return product
            case "activities": return activity
            case "portfolios": return portfolio
            case "analyses": return analysis
            case "corporate-actions": return corporateAction
            case "conversations": return conversation
            case "connections": return connection
            case "snapshots": return snapshot
            // The user-admin operations (disable, roles, sessions) act on a user the
            // battery does not log in as.
            case "users": return spareUser
            default: return UUID().uuidString.lowercased()
            }
        }
    }

    let process: RunningProcess
    let port: Int
    let scratch: URL
    let exchange: ExchangeSimulator
    var fixtures = Fixtures()
    private var sent = 0
    private var tokens: [String: String] = [:]

    private init(process: RunningProcess, port: Int, scratch: URL, exchange: ExchangeSimulator) {
        self.exchange = exchange
        self.process = process
        self.port = port
        self.scratch = scratch
    }

    static func start() async throws -> BatteryServer {
        let scratch = try makeScratchDirectory()
        let tenants = scratch.appending(path: "tenants")
        try FileManager.default.createDirectory(at: tenants, withIntermediateDirectories: true)
        try """
            plans:
              unlimited:
                price: 0
                modules: [sales, portfolio, crypto]
            """.write(to: tenants.appending(path: "plans.yaml"), atomically: true, encoding: .utf8)
        try """
            slug: battery
            name: Battery
            plan: unlimited
            modules: [sales, portfolio, crypto]
            users:
              - email: owner@battery.test
                password: battery-owner-pass
                roles: [owner]
              - email: rep@battery.test
                password: battery-rep-pass
                roles: [member, sales_rep]
              - email: spare@battery.test
                password: battery-spare-pass
                roles: [member]
              - email: login@battery.test
                password: battery-login-pass
                roles: [member]
              - email: changer@battery.test
                password: battery-changer-pass
                roles: [member]
            """.write(to: tenants.appending(path: "battery.yaml"), atomically: true, encoding: .utf8)
        try "slug: spare\nname: Spare\nplan: unlimited\n".write(to: tenants.appending(path: "spare.yaml"), atomically: true, encoding: .utf8)
        let port = try LocalPort.free()
        let exchange = try await ExchangeSimulator.start()
        for key in [Fixtures.fixtureKey, Fixtures.controlKey] { try await exchange.account(key: key, secret: Fixtures.secret) }
        let atrium = AtriumBinary(
            dataDirectory: scratch.appending(path: ".atrium"), extra: [
                "ATRIUM_LOG_LEVEL": "critical", "ATRIUM_OPERATOR_TOKEN": operatorToken,
                // Each request comes from an address of its own (below), so the login
                // variants' failures do not lock the address every other request shares.
                "ATRIUM_TRUSTED_PROXIES": "127.0.0.1",
                // Crypto asks its exchange before it connects a key: the simulator.
                "ATRIUM_CRYPTO_BINANCE_URL": exchange.url, "ATRIUM_CRYPTO_OUTBOUND_ALLOW": "loopback",
            ])
        let process = try atrium.start(["serve", "--port", String(port), "--tenants-dir", tenants.path()])
        let server = BatteryServer(process: process, port: port, scratch: scratch, exchange: exchange)
        try await server.waitUntilReady()
        try await server.createFixtures()
        // A holdings snapshot for the snapshot routes, taken by the operator's command as
        // the schedule would take it.
        let taken = try await atrium.run("crypto", "connections", "snapshot", "--tenant", "battery")
        try #require(taken.status == 0, "\(taken.stdout) \(taken.stderr)")
        let snapshots = try await HTTP.get(server.url("/v1/tenants/battery/crypto/snapshots"), bearer: try await server.token(.owner))
        server.fixtures.snapshot = try #require(
            ((try JSONSerialization.jsonObject(with: snapshots.body) as? [String: Any])?["data"] as? [[String: Any]])?.first?["id"] as? String,
            "\(String(decoding: snapshots.body, as: UTF8.self))")
        // Every schedule's next slot a day away: the battery runs longer than the crypto
        // tick's five minutes, and a tick between the two snapshots around a refused
        // request would add a job the request is then blamed for. (The worker records its
        // schedules when it starts: wait for them.)
        var paused = false
        for _ in 0..<300 where !paused {
            let update = try await atrium.run(
                "db", "shell", "--role", "owner", "-c",
                "SELECT set_config('app.scope', 'platform', false); UPDATE job_schedules SET next_run_at = now() + interval '1 day'")
            paused = update.stdout.split(separator: "\n").contains { $0.hasPrefix("UPDATE ") && $0 != "UPDATE 0" }
            if !paused { try await Task.sleep(for: .milliseconds(100)) }
        }
        try #require(paused, "the worker recorded no schedules to pause")
        return server
    }

    func stop() {
        process.stop()
        exchange.stop()
        try? FileManager.default.removeItem(at: scratch)
    }

    var isAlive: Bool { kill(process.pid, 0) == 0 && waitpid(process.pid, nil, WNOHANG) == 0 }

    func url(_ target: String) -> String { "http://127.0.0.1:\(port)\(target)" }

    private func waitUntilReady() async throws {
        for _ in 0..<600 {
            if (try? await HTTP.get(url("/readyz")).status) == 200 { return }
            try #require(isAlive, "atrium serve exited: \(process.output())")
            try await Task.sleep(for: .milliseconds(100))
        }
        throw BatteryFailure("the server did not become ready within 60 s: \(process.output())")
    }

    /// Logs in again whoever's token stopped working (an operation may end sessions), now
    /// rather than inside a variant, whose rows must not change.
    func refreshTokens() async throws {
        for (email, token) in tokens where try await HTTP.get(url("/v1/tenants/battery/auth/me"), bearer: token).status != 200 {
            tokens[email] = nil
        }
        _ = try await token(.owner)
        _ = try await token(.rep)
    }

    /// An access token for `caller`, logging in when there is none.
    func token(_ caller: Caller) async throws -> String {
        if caller == .operator { return Self.operatorToken }
        let (email, password) = switch caller {
        case .owner, .operator: ("owner@battery.test", "battery-owner-pass")
        case .rep: ("rep@battery.test", "battery-rep-pass")
        case .changer: ("changer@battery.test", "battery-changer-pass")
        }
        if let token = tokens[email] { return token }
        let login = try await HTTP.post(url("/v1/tenants/battery/auth/login"), json: #"{"email":"\#(email)","password":"\#(password)"}"#)
        guard login.status == 200, let token = (try JSONSerialization.jsonObject(with: login.body) as? [String: Any])?["access_token"] as? String else {
            throw BatteryFailure("login of \(email) failed: \(login.status) \(String(decoding: login.body, as: UTF8.self))")
        }
        tokens[email] = token
        return token
    }

    func send(_ request: BatteryRequest) async throws -> HTTP.Response {
        guard let target = URL(string: url(request.target)) else { return HTTP.Response(status: 400, contentType: "application/problem+json", body: Data()) }
        var urlRequest = URLRequest(url: target)
        urlRequest.httpMethod = request.method
        urlRequest.setValue("Bearer \(try await token(request.token))", forHTTPHeaderField: "Authorization")
        if let contentType = request.contentType { urlRequest.setValue(contentType, forHTTPHeaderField: "Content-Type") }
        sent += 1
        urlRequest.setValue("198.18.\(sent / 250 % 250).\(sent % 250 + 1)", forHTTPHeaderField: "X-Forwarded-For")
        for (name, value) in request.headers { urlRequest.setValue(value, forHTTPHeaderField: name) }
        urlRequest.httpBody = request.body
        urlRequest.timeoutInterval = 30
        return try await HTTP.send(urlRequest)
    }

    /// Runs `body` with a connection to the server's database that checksums the
    /// battery tenant's rows.
    func withTenantTables<Result: Sendable>(_ body: (TenantTables) async throws -> Result) async throws -> Result {
        let logger = Logger(label: "battery.tables")
        let urls = try EmbeddedPostgres(dataDirectory: scratch.appending(path: ".atrium"), logger: logger).urls()
        return try await withPostgresConnection(urls.owner, connectTimeout: .seconds(10), logger: logger) { connection in
            try await body(try await TenantTables(connection, tenant: "battery"))
        }
    }

    /// A portfolio with one buy of an instrument with a close, an analysis of it and a split.
    private func createPortfolioFixtures() async throws {
        let owner = try await token(.owner)
        func send(_ method: String, _ path: String, _ json: String) async throws -> [String: Any] {
            var request = URLRequest(url: try #require(URL(string: url("/v1/tenants/battery/portfolio/\(path)"))))
            request.httpMethod = method
            request.setValue("Bearer \(owner)", forHTTPHeaderField: "Authorization")
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = Data(json.utf8)
            let response = try await HTTP.send(request)
            guard (200..<300).contains(response.status), let object = try JSONSerialization.jsonObject(with: response.body) as? [String: Any] else {
                throw BatteryFailure("\(method) \(path) failed: \(response.status) \(String(decoding: response.body, as: UTF8.self))")
            }
            return object
        }
        _ = try await send("PUT", "market/instruments/\(Fixtures.symbol)", #"{"name":"Battery Inc.","sector":"Energy","currency":"USD"}"#)
        _ = try await send("POST", "market/instruments/\(Fixtures.symbol)/prices", #"{"closes":[{"date":"2024-03-01","close":"12.50"}]}"#)
        fixtures.portfolio = try #require(try await send("POST", "portfolios", #"{"name":"Battery savings","base_currency":"USD"}"#)["id"] as? String)
        fixtures.portfolioEntry = try #require(try await send(
            "POST", "portfolios/\(fixtures.portfolio)/transactions",
            #"{"type":"buy","symbol":"BAT","quantity":"10","price":"10","currency":"USD","trade_date":"2024-01-02"}"#)["id"] as? String)
        fixtures.analysis = try #require(try await send("POST", "analyses", #"{"portfolio_id":"\#(fixtures.portfolio)","as_of":"2024-03-04"}"#)["id"] as? String)
        _ = try await send(
            "PUT", "profile/survey",
            #"{"answers":{"age_band":"45_59","horizon":"3_7y","loss_reaction":"sell_some","income_stability":"stable","experience":"some","goal":"income"}}"#)
        fixtures.conversation = try #require(try await send("POST", "conversations", #"{"title":"Battery chat"}"#)["id"] as? String)
        var connect = URLRequest(url: try #require(URL(string: url("/v1/tenants/battery/crypto/connections"))))
        connect.httpMethod = "POST"
        connect.setValue("Bearer \(owner)", forHTTPHeaderField: "Authorization")
        connect.setValue("application/json", forHTTPHeaderField: "Content-Type")
        connect.httpBody = Data(#"{"exchange":"binance","label":"Battery","api_key":"\#(Fixtures.fixtureKey)","api_secret":"\#(Fixtures.secret)"}"#.utf8)
        let connected = try await HTTP.send(connect)
        fixtures.connection = try #require(
            (try JSONSerialization.jsonObject(with: connected.body) as? [String: Any])?["id"] as? String, "\(connected.status)")
        _ = try await send("POST", "conversations/\(fixtures.conversation)/messages", #"{"content":"How am I doing?"}"#)
        var upload = URLRequest(url: try #require(URL(string: url("/v1/tenants/battery/portfolio/market/imports?entity=prices"))))
        upload.httpMethod = "POST"
        upload.setValue("Bearer \(owner)", forHTTPHeaderField: "Authorization")
        upload.setValue("text/csv", forHTTPHeaderField: "Content-Type")
        upload.httpBody = Data("symbol,date,close\r\nBAT,2024-02-28,12.25\r\n".utf8)
        let imported = try await HTTP.send(upload)
        fixtures.marketImport = try #require((try JSONSerialization.jsonObject(with: imported.body) as? [String: Any])?["id"] as? String, "\(imported.status)")
        var entries = URLRequest(
            url: try #require(URL(string: url("/v1/tenants/battery/portfolio/portfolios/\(fixtures.portfolio)/transactions/imports?entity=transactions"))))
        entries.httpMethod = "POST"
        entries.setValue("Bearer \(owner)", forHTTPHeaderField: "Authorization")
        entries.setValue("text/csv", forHTTPHeaderField: "Content-Type")
        entries.httpBody = Data("external_id,date,type,amount,currency\r\nB-1,2024-01-02,deposit,100,USD\r\n".utf8)
        let ledgerImport = try await HTTP.send(entries)
        fixtures.transactionImport = try #require(
            (try JSONSerialization.jsonObject(with: ledgerImport.body) as? [String: Any])?["id"] as? String, "\(ledgerImport.status)")
        fixtures.corporateAction = try #require(try await send(
            "POST", "market/corporate-actions", #"{"symbol":"BAT","type":"split","effective_date":"2031-01-02","ratio":"3"}"#)["id"] as? String)
    }

    private func createFixtures() async throws {
        let rep = try await token(.rep)
        func create(_ path: String, _ json: String) async throws -> String {
            guard let target = URL(string: url("/v1/tenants/battery/sales/\(path)")) else { throw BatteryFailure("bad url") }
            var request = URLRequest(url: target)
            request.httpMethod = "POST"
            request.setValue("Bearer \(rep)", forHTTPHeaderField: "Authorization")
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = Data(json.utf8)
            let response = try await HTTP.send(request)
            guard response.status == 201 || response.status == 200,
                let id = (try JSONSerialization.jsonObject(with: response.body) as? [String: Any])?["id"] as? String
            else { throw BatteryFailure("creating \(path) failed: \(response.status) \(String(decoding: response.body, as: UTF8.self))") }
            return id
        }
        fixtures.company = try await create("companies", #"{"name":"Battery Co","domain":"battery.test"}"#)
        fixtures.contact = try await create("contacts", #"{"first_name":"Bat","last_name":"Tery","email":"bat@battery.test"}"#)
        fixtures.product = try await create("products", #"{"sku":"B-1","name":"Battery","unit_price":100,"currency":"USD"}"#)
        fixtures.deal = try await create("deals", #"{"title":"Big battery deal","amount":1000}"#)
        fixtures.activity = try await create("activities", #"{"kind":"note","subject":"Met","contact_id":"\#(fixtures.contact)"}"#)
        let users = try await HTTP.get(url("/v1/tenants/battery/admin/users?limit=200"), bearer: try await token(.owner))
        let listed = ((try JSONSerialization.jsonObject(with: users.body) as? [String: Any])?["data"] as? [[String: Any]]) ?? []
        fixtures.spareUser = try #require(listed.first { $0["email"] as? String == "spare@battery.test" }?["id"] as? String, "\(users.status)")
        fixtures.repUser = try #require(listed.first { $0["email"] as? String == "rep@battery.test" }?["id"] as? String, "\(users.status)")
        try await createPortfolioFixtures()
        fixtures.item = try await create("deals/\(fixtures.deal)/items", #"{"product_id":"\#(fixtures.product)","quantity":3}"#)
        var upload = URLRequest(url: try #require(URL(string: url("/v1/tenants/battery/sales/imports?entity=companies"))))
        upload.httpMethod = "POST"
        upload.setValue("Bearer \(rep)", forHTTPHeaderField: "Authorization")
        upload.setValue("text/csv", forHTTPHeaderField: "Content-Type")
        upload.httpBody = Data("name,domain\r\nImported Co,imported.test\r\n".utf8)
        let imported = try await HTTP.send(upload)
        fixtures.importID = try #require((try JSONSerialization.jsonObject(with: imported.body) as? [String: Any])?["id"] as? String, "\(imported.status)")
        var key = URLRequest(url: try #require(URL(string: url("/v1/tenants/battery/admin/api-keys"))))
        key.httpMethod = "POST"
        key.setValue("Bearer \(try await token(.owner))", forHTTPHeaderField: "Authorization")
        key.setValue("application/json", forHTTPHeaderField: "Content-Type")
        key.httpBody = Data(#"{"name":"fixture key","permissions":["sales.records.own"]}"#.utf8)
        let created = try await HTTP.send(key)
        let apiKey = (try JSONSerialization.jsonObject(with: created.body) as? [String: Any])?["api_key"] as? [String: Any]
        fixtures.apiKey = try #require(apiKey?["id"] as? String, "\(created.status) \(String(decoding: created.body, as: UTF8.self))")
        // The rep's: the owner's sessions end with logout-all before auth/refresh runs.
        let second = try await HTTP.post(url("/v1/tenants/battery/auth/login"), json: #"{"email":"rep@battery.test","password":"battery-rep-pass"}"#)
        fixtures.refreshToken = try #require((try JSONSerialization.jsonObject(with: second.body) as? [String: Any])?["refresh_token"] as? String)
    }

    /// A session of the owner's other than the battery's own, for ending one.
    func spareSession() async throws {
        _ = try await HTTP.post(url("/v1/tenants/battery/auth/login"), json: #"{"email":"owner@battery.test","password":"battery-owner-pass"}"#)
        let sessions = try await HTTP.get(url("/v1/tenants/battery/auth/sessions"), bearer: try await token(.owner))
        let listed = ((try JSONSerialization.jsonObject(with: sessions.body) as? [String: Any])?["data"] as? [[String: Any]]) ?? []
        fixtures.session = try #require(listed.first { $0["current"] as? Bool != true }?["id"] as? String, "\(String(decoding: sessions.body, as: UTF8.self))")
    }
}

struct BatteryFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Checksums of every row of one tenant in every table that has a `tenant_id`, read
/// through the owner role in the tenant's scope (RLS applies to the owner too).
struct TenantTables: Sendable {
    /// Tables a refused request may still change, and why.
    static let bookkeeping: [String: String] = [
        "usage_events": "API calls are counted whatever the answer, and flushed once a second",
        "usage_counters": "the same flush, and the fold that moves pending usage into them",
        "usage_pending": "the fold moves pending usage out on its own schedule",
        "jobs": "the worker updates its rows on its own schedule; only their ids are compared",
    ]

    let connection: PostgresConnection
    let logger = Logger(label: "battery.tables")

    init(_ connection: PostgresConnection, tenant: String) async throws {
        let id = try await connection.query("SELECT id FROM tenants WHERE slug = \(tenant)", logger: logger).first().decode(UUID.self)
        try await connection.query(
            "SELECT set_config('app.tenant_id', \(id.uuidString), false), set_config('app.owner_scope', 'any', false)", logger: logger)
        // PostgreSQL writes the statement, quoting each table's name itself.
        let excluded = Array(Self.bookkeeping.keys)
        let statement = try await connection.query(
            """
            SELECT string_agg(format('SELECT %L AS name, md5(coalesce(string_agg(t::text, %L ORDER BY t::text), %L)) AS sum FROM %I t',
                                     c.table_name, E'\\n', '', c.table_name), ' UNION ALL ' ORDER BY c.table_name)
            FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name)
            WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id' AND t.table_type = 'BASE TABLE' AND NOT c.table_name = ANY(\(excluded))
            """, logger: logger
        ).first().decode(String.self)
            // A job's row changes as the worker runs it; a refused request must only not add one.
            + " UNION ALL SELECT 'jobs (ids)', md5(coalesce(string_agg(id::text, ',' ORDER BY id), '')) FROM jobs"
        // A session's own PL/pgSQL function, so the 30-table query is planned once, not
        // at each of some 10,000 snapshots.
        let create = try await connection.query(
            """
            SELECT format('CREATE FUNCTION pg_temp.battery_snapshot() RETURNS TABLE (table_name text, checksum text) LANGUAGE plpgsql AS %L',
                          'BEGIN RETURN QUERY ' || \(statement) || '; END')
            """, logger: logger
        ).first().decode(String.self)
        try await connection.query(PostgresQuery(unsafeSQL: create), logger: logger)
        self.connection = connection
    }

    /// Waits until no job of the tenant is due or running: the worker's own changes are
    /// done before the next request is judged. (A job retried later is excluded by
    /// `run_at`; the rows it would change then are the jobs table's, checksummed by id.)
    func settle() async throws {
        for _ in 0..<600 {
            let busy = try await connection.query(
                "SELECT count(*) FROM jobs WHERE state = 'running' OR (state = 'pending' AND run_at <= now())", logger: logger
            ).first().decode(Int.self)
            if busy == 0 { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw BatteryFailure("the tenant's jobs did not settle within 30 s")
    }

    func snapshot() async throws -> [String: String] {
        var sums: [String: String] = [:]
        for try await (name, sum) in try await connection.query("SELECT * FROM pg_temp.battery_snapshot()", logger: logger).decode((String, String).self) {
            sums[name] = sum
        }
        return sums
    }
}
