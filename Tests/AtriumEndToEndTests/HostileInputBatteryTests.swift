import AtriumCore
import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Walks every operation of `/v1/openapi.json` on a running `atrium serve` and sends
/// each parameter and body field hostile values, one at a time: NUL, lone surrogates,
/// 10 kB and grapheme-heavy strings, ±1e300, Int64 bounds, impossible dates, junk
/// cursors (among them the cursor time that once crashed the server), deep nesting and
/// wrong content types. Every answer must be below 500 and, when an error, a problem
/// document; the process must be alive after each operation; and an operation whose
/// every hostile request was refused must have changed nothing a tenant can list.
@Suite("Hostile input battery", .serialized)
struct HostileInputBatteryTests {
    @Test(.timeLimit(.minutes(10))) func everyOperationAnswersHostileInputWithoutAFault() async throws {
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
        for (path, operations) in paths.sorted(by: { $0.key < $1.key }) {
            for (method, operation) in operations.sorted(by: { $0.key < $1.key }) {
                guard let operation = operation as? [String: Any] else { continue }
                let variants = Battery.variants(
                    method: method.uppercased(), path: path, operation: operation, components: components, fixtures: server.fixtures)
                try await server.refreshTokens()
                let before = try await server.fingerprint()
                var everyOneRefused = true
                for variant in variants {
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
                    if response.status < 400 { everyOneRefused = false }
                }
                try #require(server.isAlive, "the server died during \(method.uppercased()) \(path); faults so far: \(faults)")
                #expect(try await HTTP.get(server.url("/healthz")).status == 200)
                if everyOneRefused && !variants.isEmpty {
                    let after = try await server.fingerprint()
                    if after != before { faults.append("\(method.uppercased()) \(path): refused requests changed what the tenant lists") }
                }
            }
        }
        #expect(requests > 1_000, "the battery sent \(requests) requests")
        print("hostile input battery: \(requests) requests over \(paths.count) paths, \(faults.count) fault(s)")
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
    var label: String
    /// When the answer is known exactly (a wrong content type is 415).
    var expectedStatus: Int?
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

    static func variants(
        method: String, path: String, operation: [String: Any], components: [String: Any], fixtures: BatteryServer.Fixtures
    ) -> [BatteryRequest] {
        let caller: BatteryServer.Caller = path.contains("/sales/") ? .rep : .owner
        var requests: [BatteryRequest] = []
        let parameters = (operation["parameters"] as? [[String: Any]]) ?? []
        let queryNames = parameters.filter { $0["in"] as? String == "query" }.compactMap { $0["name"] as? String }
        let pathNames = path.split(separator: "/").filter { $0.hasPrefix("{") }.map { String($0.dropFirst().dropLast()) }
        func resolved(_ replacing: String? = nil, with value: String = "") -> String {
            var segments: [String] = []
            var previous = ""
            for segment in path.split(separator: "/").map(String.init) {
                if segment.hasPrefix("{") {
                    let name = String(segment.dropFirst().dropLast())
                    segments.append(name == replacing ? value : fixtures.value(for: name, after: previous))
                } else {
                    segments.append(segment)
                }
                previous = segment
            }
            return "/" + segments.joined(separator: "/")
        }
        // Path parameters (the tenant's and ids).
        for name in pathNames {
            for value in textValues {
                requests.append(.init(method: method, target: resolved(name, with: value), body: nil, token: caller,
                                      label: "\(method) \(path) {\(name)}=\(value.prefix(40))"))
            }
        }
        // Query parameters, one at a time.
        for name in queryNames {
            for value in textValues + (name == "cursor" ? cursors : []) {
                requests.append(.init(method: method, target: resolved() + "?\(name)=\(value)", body: nil, token: caller,
                                      label: "\(method) \(path)?\(name)=\(value.prefix(40))"))
            }
        }
        // Body fields, one at a time, in an otherwise plausible body.
        if let body = (operation["requestBody"] as? [String: Any])?["content"] as? [String: Any], let json = body["application/json"] as? [String: Any] {
            var schema = (json["schema"] as? [String: Any]) ?? [:]
            // A named body is a reference to the document's components.
            if let reference = schema["$ref"] as? String, reference.hasPrefix("#/components/schemas/") {
                schema = (components[String(reference.dropFirst("#/components/schemas/".count))] as? [String: Any]) ?? [:]
            }
            let properties = (schema["properties"] as? [String: [String: Any]]) ?? [:]
            let base = properties.mapValues { plausible($0, fixtures: fixtures) }
            for (field, _) in properties.sorted(by: { $0.key < $1.key }) {
                for value in jsonValues {
                    var members = base
                    members[field] = value
                    let text = "{" + members.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "}"
                    requests.append(.init(method: method, target: resolved(), body: Data(text.utf8), contentType: "application/json", token: caller,
                                          label: "\(method) \(path) .\(field)=\(value.prefix(40))"))
                }
            }
            for junk in ["{", "[]", "\"text\"", String(repeating: "[", count: 5_000), "{\"a\":" + String(repeating: "[", count: 2_000), "\u{FEFF}{}"] {
                requests.append(.init(method: method, target: resolved(), body: Data(junk.utf8), contentType: "application/json", token: caller,
                                      label: "\(method) \(path) body=\(junk.prefix(20))"))
            }
            for type in ["text/plain", "application/x-www-form-urlencoded", "application/xml"] {
                requests.append(.init(method: method, target: resolved(), body: Data("{}".utf8), contentType: type, token: caller,
                                      label: "\(method) \(path) as \(type)", expectedStatus: 415))
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
    enum Caller { case owner, rep }

    struct Fixtures {
        var contact = ""
        var company = ""
        var deal = ""
        var product = ""
        var activity = ""
        var repUser = ""

        /// The value of a path parameter, chosen by the collection it follows.
        func value(for name: String, after collection: String) -> String {
            if name == "tenant" { return "battery" }
            switch collection {
            case "contacts": return contact
            case "companies": return company
            case "deals": return deal
            case "products": return product
            case "activities": return activity
            case "users": return repUser
            default: return UUID().uuidString.lowercased()
            }
        }
    }

    let process: RunningProcess
    let port: Int
    let scratch: URL
    var fixtures = Fixtures()
    private var tokens: [String: String] = [:]

    private init(process: RunningProcess, port: Int, scratch: URL) {
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
                modules: [sales]
            """.write(to: tenants.appending(path: "plans.yaml"), atomically: true, encoding: .utf8)
        try """
            slug: battery
            name: Battery
            plan: unlimited
            modules: [sales]
            users:
              - email: owner@battery.test
                password: battery-owner-pass
                roles: [owner]
              - email: rep@battery.test
                password: battery-rep-pass
                roles: [member, sales_rep]
            """.write(to: tenants.appending(path: "battery.yaml"), atomically: true, encoding: .utf8)
        let port = try LocalPort.free()
        let atrium = AtriumBinary(dataDirectory: scratch.appending(path: ".atrium"), extra: ["ATRIUM_LOG_LEVEL": "critical"])
        let process = try atrium.start(["serve", "--port", String(port), "--tenants-dir", tenants.path()])
        let server = BatteryServer(process: process, port: port, scratch: scratch)
        try await server.waitUntilReady()
        try await server.createFixtures()
        return server
    }

    func stop() {
        process.stop()
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

    /// Logs in again whoever's token stopped working (an operation may end sessions).
    func refreshTokens() async throws {
        for (email, token) in tokens where try await HTTP.get(url("/v1/tenants/battery/auth/me"), bearer: token).status != 200 {
            tokens[email] = nil
        }
    }

    /// An access token for `caller`, logging in when there is none.
    func token(_ caller: Caller) async throws -> String {
        let (email, password) = caller == .owner ? ("owner@battery.test", "battery-owner-pass") : ("rep@battery.test", "battery-rep-pass")
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
        urlRequest.httpBody = request.body
        urlRequest.timeoutInterval = 30
        return try await HTTP.send(urlRequest)
    }

    /// What the tenant can list, as its owner sees it.
    func fingerprint() async throws -> [String] {
        let owner = try await token(.owner)
        var lists: [String] = []
        for path in ["sales/contacts", "sales/companies", "sales/deals", "sales/products", "admin/users", "admin/api-keys", "admin/roles"] {
            let response = try await HTTP.get(url("/v1/tenants/battery/\(path)?limit=200"), bearer: owner)
            lists.append("\(path) \(response.status) \(String(decoding: response.body, as: UTF8.self))")
        }
        return lists
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
        let me = try await HTTP.get(url("/v1/tenants/battery/auth/me"), bearer: rep)
        let user = (try JSONSerialization.jsonObject(with: me.body) as? [String: Any])
        fixtures.repUser = (user?["id"] as? String) ?? ((user?["user"] as? [String: Any])?["id"] as? String) ?? ""
    }
}

struct BatteryFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
