import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("HTTP edge: request ids, problems, health, metrics")
struct HTTPEdgeTests {
    @Test func healthAndReadinessAnswerWithRequestIDAndNoSniff() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        try await withTestApp(db) { client, _ in
            try await client.execute(uri: "/healthz", method: .get, headers: [HTTPField.Name("X-Request-Id")!: "abc-123"]) { response in
                #expect(response.status == .ok)
                #expect(response.headers[HTTPField.Name("X-Request-Id")!] == "abc-123")
                #expect(response.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff")
                #expect(response.headers[.server] == nil)
            }
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .ok)
                #expect(json(response)["checks"]?["migrations"]?.string == "ok")
                let generated = response.headers[HTTPField.Name("X-Request-Id")!] ?? ""
                #expect(UUID(uuidString: generated) != nil)
            }
            // An unacceptable request id is replaced, not echoed: characters outside
            // [A-Za-z0-9._-] (that the HTTP layer passes through unchanged), or over 128.
            for bad in ["bad/id;x=1", "<script>", String(repeating: "a", count: 129)] {
                try await client.execute(uri: "/healthz", method: .get, headers: [HTTPField.Name("X-Request-Id")!: bad]) { response in
                    let echoed = response.headers[HTTPField.Name("X-Request-Id")!] ?? ""
                    #expect(echoed != bad, "\(bad)")
                    #expect(UUID(uuidString: echoed) != nil, "a generated id replaces \(bad)")
                }
            }
            let longest = String(repeating: "a", count: 128)
            try await client.execute(uri: "/healthz", method: .get, headers: [HTTPField.Name("X-Request-Id")!: longest]) { response in
                #expect(response.headers[HTTPField.Name("X-Request-Id")!] == longest)
            }
        }
    }

    @Test func readinessFailsWhileMigrationsArePending() async throws {
        let db = try await TestDatabase.create(modules: [])  // notes migration not applied
        try await withTestApp(db) { client, _ in
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(json(response)["checks"]?["migrations"]?.string == "1 pending")
            }
        }
    }

    @Test func unknownRouteIsAProblemDocument() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        try await withTestApp(db) { client, _ in
            try await client.execute(uri: "/nope", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(response.headers[.contentType] == "application/problem+json")
                let problem = json(response)
                #expect(problem["code"]?.string == "not_found")
                #expect(problem["status"] == 404)
                #expect(problem["instance"]?.string == "/nope")
                #expect(response.headers[HTTPField.Name("X-Request-Id")!] != nil)
            }
        }
    }

    @Test func metricsCountRequestsByRouteTemplate() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        try await withTestApp(db) { client, _ in
            for _ in 0..<3 { try await client.execute(uri: "/healthz", method: .get) { _ in } }
            // Another route and status after them: each series is counted as itself, not
            // as the handles the middleware already holds.
            for _ in 0..<2 { try await client.execute(uri: "/no-such-route", method: .get) { _ in } }
            try await client.execute(uri: "/metrics", method: .get) { response in
                let text = String(buffer: response.body)
                #expect(response.headers[.contentType]?.hasPrefix("text/plain") == true)
                #expect(text.contains(#"atrium_http_requests_total{route="/healthz",method="GET",status="200"} 3"#))
                #expect(text.contains(#"atrium_http_requests_total{route="NotFound",method="GET",status="404"} 2"#))
                #expect(text.contains("atrium_http_request_duration_seconds_bucket"))
                #expect(text.contains(#"atrium_jobs_queue_jobs{state="pending"} 0"#))
                // The test's pool of 4, and as many for authenticated requests.
                #expect(text.contains("atrium_db_pool_max_connections 8"))
            }
        }
    }
}

@Suite("CORS")
struct CORSTests {
    @Test func allowListedOriginIsEchoedAndOthersGetNothing() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        try await withTestApp(db, server: ServerConfiguration(corsOrigins: ["https://app.example.com"])) { client, _ in
            let origin = HTTPField.Name("Origin")!
            try await client.execute(
                uri: "/v1/tenants/acme/notes/notes", method: .options,
                headers: [origin: "https://app.example.com", HTTPField.Name("Access-Control-Request-Method")!: "POST"]
            ) { response in
                #expect(response.status == .noContent)
                #expect(response.headers[HTTPField.Name("Access-Control-Allow-Origin")!] == "https://app.example.com")
                #expect(response.headers[HTTPField.Name("Access-Control-Allow-Methods")!]?.contains("POST") == true)
            }
            try await client.execute(uri: "/healthz", method: .get, headers: [origin: "https://app.example.com"]) { response in
                #expect(response.headers[HTTPField.Name("Access-Control-Allow-Origin")!] == "https://app.example.com")
                #expect(response.headers[HTTPField.Name("Access-Control-Allow-Credentials")!] == "true")
                #expect(response.headers[HTTPField.Name("Vary")!] == "Origin")
            }
            try await client.execute(uri: "/healthz", method: .get, headers: [origin: "https://evil.example"]) { response in
                #expect(response.status == .ok)
                #expect(response.headers[HTTPField.Name("Access-Control-Allow-Origin")!] == nil)
            }
        }
    }
}
