import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

/// `context.http`: calls as sent and answered, bounded failures, connections reused per
/// host, cancellation, and the address policy that keeps calls off internal addresses.
@Suite struct OutboundHTTPTests {
    let logger = TestDatabase.logger

    /// A module's client with loopback allowed, as the tests' echo server needs.
    var loopbackAllowed: OutboundHTTP {
        ModuleKit.ephemeral(environment: ["ATRIUM_CRYPTO_OUTBOUND_ALLOW": "loopback"], logger: logger).context(for: "crypto").http
    }

    /// A real server on a loopback port that reports what it received.
    func withEchoServer(_ body: @escaping @Sendable (URL) async throws -> Void) async throws {
        let router = Router()
        router.on("echo/:rest", method: .put) { request, context -> Response in
            let received = try await request.body.collect(upTo: 1 << 20)
            var headers: HTTPFields = [.contentType: "application/octet-stream"]
            headers[HTTPField.Name("X-Method")!] = request.method.rawValue
            headers[HTTPField.Name("X-Signature")!] = request.headers[HTTPField.Name("X-Signature")!] ?? "none"
            headers[HTTPField.Name("X-Query")!] = request.uri.query ?? ""
            headers[.setCookie] = "a=1"
            headers.append(HTTPField(name: .setCookie, value: "b=2"))
            return Response(status: .accepted, headers: headers, body: .init(byteBuffer: received))
        }
        router.get("big") { _, _ in String(repeating: "x", count: 10_000) }
        router.get("slow") { _, _ -> String in
            try await Task.sleep(for: .seconds(3))
            return "late"
        }
        router.get("redirect") { _, _ in Response(status: .found, headers: [.location: "http://example.invalid/"]) }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
        try await app.test(.live) { client in
            let port = try #require(client.port)
            try await body(try #require(URL(string: "http://127.0.0.1:\(port)")))
        }
    }

    @Test func outboundCallsCarryMethodHeadersAndBinaryBodiesAndReturnHeaders() async throws {
        try await withEchoServer { base in
            let http = loopbackAllowed
            let body = Data([0, 1, 2, 0, 255, 10, 13])
            let response = try await http.send(OutboundRequest(
                .put, base.appending(path: "echo/orders").appending(queryItems: [URLQueryItem(name: "signature", value: "s e")]),
                headers: [("X-Signature", "abc123")], body: body))
            #expect(response.status == 202)
            #expect(response.body == body)
            #expect(response.header("x-method") == "PUT")
            #expect(response.header("X-Signature") == "abc123")
            #expect(response.header("X-Query") == "signature=s%20e")
            #expect(response.headers.filter { $0.name.lowercased() == "set-cookie" }.map(\.value) == ["a=1", "b=2"])
            // A redirect is an answer, never followed.
            #expect(try await http.send(OutboundRequest(.get, base.appending(path: "redirect"))).status == 302)
        }
    }

    @Test func outboundCallsFailCleanlyOnOversizedAnswersTimeoutsAndBadTargets() async throws {
        try await withEchoServer { base in
            let http = loopbackAllowed
            let fits = try await http.send(OutboundRequest(.get, base.appending(path: "big"), maxResponseBytes: 10_000))
            #expect(fits.body.count == 10_000)
            let big = await #expect(throws: OutboundError.self) {
                try await http.send(OutboundRequest(.get, base.appending(path: "big"), maxResponseBytes: 9_999))
            }
            #expect(big?.description.contains("larger than 9999 bytes") == true)
            // The server answers after 3 s; a "timed out" failure is the 300 ms limit at work.
            let slow = await #expect(throws: OutboundError.self) {
                try await http.send(OutboundRequest(.get, base.appending(path: "slow"), timeout: .milliseconds(300)))
            }
            #expect(slow?.description.contains("timed out") == true)
            await #expect(throws: OutboundError.self) {
                try await http.send(OutboundRequest(.get, try #require(URL(string: "file:///etc/passwd"))))
            }
            await #expect(throws: OutboundError.self) {
                try await http.send(OutboundRequest(.get, base.appending(path: "big"), headers: [("X-Evil", "a\r\nInjected: yes")]))
            }
        }
    }

    @Test func callsToAHostReuseItsConnection() async throws {
        try await withEchoServer { base in
            let http = loopbackAllowed
            var reused: [Bool] = []
            for _ in 0..<5 { reused.append(try await http.send(OutboundRequest(.get, base.appending(path: "big"))).reusedConnection) }
            // The first call may find a connection an earlier test left; every later one must.
            #expect(reused.dropFirst().allSatisfy { $0 }, "\(reused)")
            let fresh = OutboundHTTP(logger: logger, policy: http.policy, reusesConnections: false)
            for _ in 0..<3 { #expect(try await fresh.send(OutboundRequest(.get, base.appending(path: "big"))).reusedConnection == false) }
        }
    }

    @Test func aCancelledCallEndsWithoutWaitingForTheAnswer() async throws {
        try await withEchoServer { base in
            let http = loopbackAllowed
            // The server answers after 3 s, the call's own timeout is 20 s: only the
            // cancellation can end it with CancellationError.
            let call = Task { try await http.send(OutboundRequest(.get, base.appending(path: "slow"))) }
            try await Task.sleep(for: .milliseconds(300))
            call.cancel()
            let outcome = await call.result
            #expect(throws: CancellationError.self) { try outcome.get() }
            // A task cancelled before the call never sends it.
            let early = Task {
                withUnsafeCurrentTask { $0?.cancel() }
                return try await http.send(OutboundRequest(.get, base.appending(path: "big")))
            }
            await #expect(throws: CancellationError.self) { try await early.value }
        }
    }

    @Test func internalAddressesAreRefusedUnlessTheModulesSettingAllowsThem() async throws {
        try await withEchoServer { base in
            let port = try #require(base.port)
            let guarded = ModuleKit.ephemeral(logger: logger).context(for: "crypto").http
            #expect(guarded.policy == .publicInternet)
            for host in ["127.0.0.1", "localhost", "[::1]", "[::ffff:127.0.0.1]", "169.254.169.254", "10.1.2.3", "192.168.0.10", "172.20.0.1", "0.0.0.0"] {
                let url = try #require(URL(string: "http://\(host):\(port)/big?secret=abc"))
                let error = await #expect(throws: OutboundError.self, "\(host)") {
                    try await guarded.send(OutboundRequest(.get, url, timeout: .seconds(2)))
                }
                #expect(error?.description.contains("refused") == true, "\(host): \(error?.description ?? "")")
                #expect(error?.description.contains("secret") == false, "the URL's query must not be in the message")
            }
            // The module's own setting opens exactly the range it names.
            let allowed = ModuleKit.ephemeral(environment: ["ATRIUM_CRYPTO_OUTBOUND_ALLOW": "loopback"], logger: logger).context(for: "crypto").http
            #expect(try await allowed.send(OutboundRequest(.get, base.appending(path: "big"))).status == 200)
            let other = ModuleKit.ephemeral(environment: ["ATRIUM_CRYPTO_OUTBOUND_ALLOW": "loopback"], logger: logger).context(for: "portfolio").http
            await #expect(throws: OutboundError.self) { try await other.send(OutboundRequest(.get, base.appending(path: "big"))) }
            await #expect(throws: OutboundError.self) {
                try await allowed.send(OutboundRequest(.get, try #require(URL(string: "http://169.254.169.254/latest/meta-data/")), timeout: .seconds(2)))
            }
        }
    }

    @Test func addressesAreClassifiedByRange() throws {
        let policy = OutboundAddressPolicy.publicInternet
        func refusal(_ host: String) throws -> String? { try policy.refusal(forHost: host, port: 80) }
        #expect(try refusal("8.8.8.8") == nil)
        #expect(try refusal("2001:4860:4860::8888") == nil)
        #expect(try refusal("127.0.0.2") == "a loopback address")
        #expect(try refusal("100.64.0.1") == "a private address")
        #expect(try refusal("fd00::1") == "a private address")
        #expect(try refusal("fe80::1") == "a link-local address")
        #expect(try refusal("224.0.0.1") == "an unspecified, multicast or reserved address")
        #expect(try refusal("64:ff9b::7f00:1") == "an unspecified, multicast or reserved address")
        #expect(try OutboundAddressPolicy(setting: "X", value: "loopback, private").allowed == [.loopback, .private])
        let error = #expect(throws: ValidationFailure.self) { try OutboundAddressPolicy(setting: "ATRIUM_CRYPTO_OUTBOUND_ALLOW", value: "everything") }
        #expect(error?.description.contains("ATRIUM_CRYPTO_OUTBOUND_ALLOW") == true)
    }
}
