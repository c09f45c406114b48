import AtriumCore
import AtriumTesting
import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The README's login throttling as a running server applies it, at its default
/// thresholds (no setting changed): three free failures per account, fifty per address,
/// and the address taken from `X-Forwarded-For` only when the peer is a trusted proxy.
@Suite("Login throttling on a real atrium serve", .serialized)
struct LoginThrottleEndToEndTests {
    func login(_ port: Int, email: String, password: String, forwardedFor: String? = nil) async throws -> HTTP.Response {
        var request = URLRequest(url: try #require(URL(string: "http://127.0.0.1:\(port)/v1/tenants/acme/auth/login")))
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let forwardedFor { request.setValue(forwardedFor, forHTTPHeaderField: "X-Forwarded-For") }
        request.httpBody = Data(#"{"email":"\#(email)","password":"\#(password)"}"#.utf8)
        return try await HTTP.send(request)
    }

    func code(_ response: HTTP.Response) -> String? {
        (try? JSONSerialization.jsonObject(with: response.body) as? [String: Any])?["code"] as? String
    }

    @Test(.timeLimit(.minutes(5))) func defaultThresholdsAndForwardedForFromTrustedProxiesOnly() async throws {
        let scratch = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let tenants = scratch.appending(path: "tenants")
        try FileManager.default.createDirectory(at: tenants, withIntermediateDirectories: true)
        try """
            slug: acme
            name: Acme
            plan: free
            users:
              - email: owner@acme.test
                password: acme-demo-owner
                roles: [owner]
            """.write(to: tenants.appending(path: "acme.yaml"), atomically: true, encoding: .utf8)
        // No auth_rate_limits: only the throttle stands between a guesser and the hashes.
        try "plans:\n  free:\n    price: 0\n".write(to: tenants.appending(path: "plans.yaml"), atomically: true, encoding: .utf8)
        let data = scratch.appending(path: ".atrium")
        defer { _ = try? AtriumBinary(dataDirectory: data).runBlocking("db", "stop") }

        // Without trusted proxies (the default), X-Forwarded-For is the client's word.
        do {
            let port = try LocalPort.free()
            let server = try AtriumBinary(dataDirectory: data).start(["serve", "--port", String(port), "--tenants-dir", tenants.path()])
            defer { server.stop(timeout: .seconds(30)) }
            try await server.waitUntilReady(port: port)

            for _ in 0..<3 {
                #expect(code(try await login(port, email: "owner@acme.test", password: "wrong-password")) == "invalid_credentials")
            }
            // The fourth attempt must wait, and the right password does not skip the wait.
            let waiting = try await login(port, email: "owner@acme.test", password: "acme-demo-owner")
            #expect(waiting.status == 429)
            #expect(code(waiting) == "too_many_attempts")
            #expect(waiting.headers["retry-after"].flatMap(Int.init).map { (1...60).contains($0) } == true, "\(waiting.headers)")

            // Fifty failures from this address lock it, whatever each request claims to come from.
            var failures = 3
            var locked: HTTP.Response?
            for index in 0..<60 {
                let response = try await login(port, email: "nobody\(index)@acme.test", password: "wrong-password", forwardedFor: "198.51.100.\(index + 1)")
                if response.status == 429 {
                    locked = response
                    break
                }
                #expect(response.status == 401)
                failures += 1
            }
            #expect(locked.map(code) == "too_many_attempts")
            #expect(failures == 50, "the address was locked after \(failures) failures")
        }

        // Behind a trusted proxy, each forwarded client is its own address.
        do {
            let port = try LocalPort.free()
            let server = try AtriumBinary(dataDirectory: data, extra: ["ATRIUM_TRUSTED_PROXIES": "127.0.0.1"])
                .start(["serve", "--port", String(port), "--tenants-dir", tenants.path()])
            defer { server.stop(timeout: .seconds(30)) }
            try await server.waitUntilReady(port: port)
            var statuses: [Int] = []
            for index in 0..<55 {
                statuses.append(try await login(port, email: "nobody\(index)@acme.test", password: "wrong-password", forwardedFor: "198.51.100.\(index + 1)").status)
            }
            #expect(statuses.allSatisfy { $0 == 401 }, "\(statuses)")
            // One forwarded client failing on several accounts is still one address.
            for index in 0..<50 {
                _ = try await login(port, email: "other\(index)@acme.test", password: "wrong-password", forwardedFor: "203.0.113.7")
            }
            #expect(code(try await login(port, email: "last@acme.test", password: "wrong-password", forwardedFor: "203.0.113.7")) == "too_many_attempts")
        }
    }
}
