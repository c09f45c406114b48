import AtriumCore
import AtriumTesting
import Foundation
import NIOFoundationCompat
import HTTPTypes
import HummingbirdTesting
import Testing

@Suite("OpenAPI document")
struct OpenAPITests {
    @Test func documentListsEveryOperationWithSchemas() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let document = try await withTestApp(db) { client, _ in
            try await client.execute(uri: "/v1/openapi.json", method: .get) { response in
                #expect(response.status == .ok)
                return json(response)
            }
        }
        #expect(document["openapi"]?.string == "3.1.0")
        let create = try #require(document["paths"]?["/v1/tenants/{tenant}/notes/notes"]?["post"])
        #expect(create["x-atrium-permission"]?.string == "notes.write")
        // Bodies and responses are named after their Swift types and listed once.
        #expect(create["requestBody"]?["content"]?["application/json"]?["schema"] == ["$ref": "#/components/schemas/NewNote"])
        #expect(create["responses"]?["201"]?["content"]?["application/json"]?["schema"] == ["$ref": "#/components/schemas/Note"])
        let get = try #require(document["paths"]?["/v1/tenants/{tenant}/notes/notes/{id}"]?["get"])
        #expect(get["responses"]?["200"]?["content"]?["application/json"]?["schema"] == ["$ref": "#/components/schemas/Note"])
        let body = try #require(resolved(create["requestBody"]?["content"]?["application/json"]?["schema"], in: document))
        #expect(body["properties"]?["title"]?["type"]?.string == "string")
        #expect(body["required"] == ["title"])  // pinned is optional
        // An optional field accepts null (the decoder reads it as absent), and says so:
        // PATCH auth/me takes "display_name": null.
        #expect(body["properties"]?["pinned"]?["type"] == ["boolean", "null"])
        let profile = try #require(resolved(
            document["paths"]?["/v1/tenants/{tenant}/auth/me"]?["patch"]?["requestBody"]?["content"]?["application/json"]?["schema"], in: document))
        #expect(profile["properties"]?["display_name"]?["type"] == ["string", "null"])
        let response = try #require(resolved(create["responses"]?["201"]?["content"]?["application/json"]?["schema"], in: document))
        #expect(response["properties"]?["created_at"]?["format"]?.string == "date-time")
        #expect(response["properties"]?["id"]?["format"]?.string == "uuid")
        #expect(get["parameters"]?.array?.compactMap { $0["name"]?.string } == ["tenant", "id"])
        #expect(document["paths"]?["/healthz"]?["get"] != nil)
        #expect(document["paths"]?["/v1/tenants/{tenant}/modules"]?["get"] != nil)
        let list = try #require(document["paths"]?["/v1/tenants/{tenant}/notes/notes"]?["get"])
        #expect(resolved(list["responses"]?["200"]?["content"]?["application/json"]?["schema"], in: document)?["properties"]?["data"]?["type"]?.string == "array")
    }

    @Test func documentPassesAnOpenAPIValidator() async throws {
        let python = try #require(
            ProcessInfo.processInfo.environment["ATRIUM_TEST_PYTHON"], "make test provides a Python with openapi-spec-validator")
        let db = try await TestDatabase.create(modules: [NotesModule()])
        // With the identity layer, billing and the operator API on, so their routes are validated too.
        let catalog = try PlanCatalog.parse("plans:\n  free: {}\n", path: "plans.yaml")
        let data = try await withIdentityApp(db, plans: catalog, operatorToken: String(repeating: "t", count: 32)) { client, _ in
            try await client.execute(uri: "/v1/openapi.json", method: .get) { Data(buffer: $0.body) }
        }
        let document = try JSONDecoder().decode(JSONValue.self, from: data)
        for (path, method) in [
            ("/v1/tenants/{tenant}/auth/login", "post"), ("/v1/tenants/{tenant}/auth/refresh", "post"), ("/v1/tenants/{tenant}/auth/me", "get"),
            ("/v1/tenants/{tenant}/auth/mfa/verify", "post"), ("/v1/tenants/{tenant}/admin/api-keys", "post"),
            ("/v1/tenants/{tenant}/admin/users/{id}/roles", "post"), ("/v1/tenants/{tenant}/auth/reset-password", "post"), ("/.well-known/jwks.json", "get"),
            ("/v1/tenants/{tenant}/billing/usage/events", "post"), ("/v1/tenants/{tenant}/billing/invoices/{id}", "get"),
            ("/v1/tenants/{tenant}/billing/webhook", "put"), ("/v1/operator/tenants/{tenant}/plan", "put"),
        ] {
            #expect(document["paths"]?[path]?[method] != nil, "\(method) \(path) is documented")
        }
        let login = document["paths"]?["/v1/tenants/{tenant}/auth/login"]?["post"]
        #expect(resolved(login?["requestBody"]?["content"]?["application/json"]?["schema"], in: document)?["required"] == ["email", "password"])
        #expect(resolved(login?["responses"]?["200"]?["content"]?["application/json"]?["schema"], in: document)?["properties"]?["access_token"] != nil)
        let file = FileManager.default.temporaryDirectory.appending(path: "atrium-openapi-\(UUID().uuidString).json")
        try data.write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let result = try await ProcessRunner().run(python, ["-m", "openapi_spec_validator", file.path()], timeout: .seconds(120))
        #expect(result.status == 0, "\(result.output)")
    }
}

/// A schema with its `$ref` to the document's components followed.
func resolved(_ schema: JSONValue?, in document: JSONValue) -> JSONValue? {
    let prefix = "#/components/schemas/"
    guard let reference = schema?["$ref"]?.string, reference.hasPrefix(prefix) else { return schema }
    return document["components"]?["schemas"]?[String(reference.dropFirst(prefix.count))]
}
