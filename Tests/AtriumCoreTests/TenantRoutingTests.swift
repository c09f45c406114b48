import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Tenant routes: resolution, authentication, enablement, permissions")
struct TenantRoutingTests {
    let logger = TestDatabase.logger

    @Test func unknownTenantIsNotFoundAndMissingCredentialsAreUnauthenticated() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme", modules: ["notes"])
        try await withTestApp(db) { client, _ in
            try await client.execute(uri: "/v1/tenants/ghost/notes/notes", method: .get, headers: [.authorization: TestAuthenticator.header(acme, "notes.read")]) {
                #expect($0.status == .notFound)
                #expect(json($0)["code"]?.string == "not_found")
            }
            try await client.execute(uri: "/v1/tenants/acme/notes/notes", method: .get) { response in
                #expect(response.status == .unauthorized)
                #expect(json(response)["code"]?.string == "unauthenticated")
                #expect(response.headers[.wwwAuthenticate] == "Bearer")
            }
        }
    }

    @Test func principalOfAnotherTenantIsRefusedLikeABadToken() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        _ = try await db.createTenant("acme", modules: ["notes"])
        let globex = try await db.createTenant("globex", modules: ["notes"])
        try await withTestApp(db) { client, _ in
            let foreign = TestAuthenticator.header(globex, "notes.read", "notes.write")
            try await client.execute(uri: "/v1/tenants/acme/notes/notes", method: .get, headers: [.authorization: foreign]) { foreignResponse in
                try await client.execute(uri: "/v1/tenants/acme/notes/notes", method: .get, headers: [.authorization: "Bearer garbage"]) { badResponse in
                    #expect(foreignResponse.status == .unauthorized)
                    #expect(json(foreignResponse)["code"] == json(badResponse)["code"])
                    #expect(json(foreignResponse)["detail"] == json(badResponse)["detail"])
                }
            }
        }
    }

    @Test func anotherTenantsRowIsAnsweredLikeAMissingOne() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme", modules: ["notes"])
        let globex = try await db.createTenant("globex", modules: ["notes"])
        try await withTestApp(db) { client, _ in
            let body = ByteBuffer(string: #"{"title":"globex plan"}"#)
            let created = try await client.execute(
                uri: "/v1/tenants/globex/notes/notes", method: .post, headers: [.authorization: TestAuthenticator.header(globex, "notes.write"), .contentType: "application/json"],
                body: body)
            #expect(created.status == .created)
            let id = try #require(json(created)["id"]?.string)
            let acmeAuth = TestAuthenticator.header(acme, "notes.read")
            try await client.execute(uri: "/v1/tenants/acme/notes/notes/\(id)", method: .get, headers: [.authorization: acmeAuth]) { stolen in
                try await client.execute(uri: "/v1/tenants/acme/notes/notes/\(UUID())", method: .get, headers: [.authorization: acmeAuth]) { missing in
                    #expect(stolen.status == .notFound)
                    #expect(json(stolen)["code"] == json(missing)["code"])
                    #expect(json(stolen)["detail"] == json(missing)["detail"])
                }
            }
            try await client.execute(uri: "/v1/tenants/acme/notes/notes", method: .get, headers: [.authorization: acmeAuth]) { list in
                #expect(json(list)["data"]?.array?.isEmpty == true)
            }
        }
    }

    @Test func disabledModuleSuspendedTenantAndMissingPermissionAreForbidden() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let plain = try await db.createTenant("plain")
        let acme = try await db.createTenant("acme", modules: ["notes"])
        try await withTestApp(db) { client, _ in
            try await client.execute(uri: "/v1/tenants/plain/notes/notes", method: .get, headers: [.authorization: TestAuthenticator.header(plain, "notes.read")]) {
                #expect($0.status == .forbidden)
                #expect(json($0)["code"]?.string == "module_disabled")
            }
            try await client.execute(
                uri: "/v1/tenants/acme/notes/notes", method: .post,
                headers: [.authorization: TestAuthenticator.header(acme, "notes.read"), .contentType: "application/json"], body: ByteBuffer(string: #"{"title":"x"}"#)
            ) {
                #expect($0.status == .forbidden)
                #expect(json($0)["code"]?.string == "permission_denied")
            }
            _ = try await db.withOwner { try await TenantStore(logger: logger).update(slug: "acme", status: .suspended, on: $0) }
            try await client.execute(uri: "/v1/tenants/acme/notes/notes", method: .get, headers: [.authorization: TestAuthenticator.header(acme, "notes.read")]) {
                #expect($0.status == .forbidden)
                #expect(json($0)["code"]?.string == "tenant_suspended")
            }
        }
    }

    @Test func badBodiesGetProblemsAndChangeNothing() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme", modules: ["notes"])
        try await withTestApp(db, server: ServerConfiguration(maxBodySize: 256)) { client, _ in
            let headers: HTTPFields = [.authorization: TestAuthenticator.header(acme, "notes.read", "notes.write"), .contentType: "application/json"]
            try await client.execute(uri: "/v1/tenants/acme/notes/notes", method: .post, headers: headers, body: ByteBuffer(string: "{not json")) {
                #expect($0.status == .badRequest)
                #expect(json($0)["code"]?.string == "malformed_json")
            }
            try await client.execute(uri: "/v1/tenants/acme/notes/notes", method: .post, headers: headers, body: ByteBuffer(string: #"{"pinned":true}"#)) {
                #expect($0.status == .unprocessableContent)
                let problem = json($0)
                #expect(problem["code"]?.string == "validation_failed")
                #expect(problem["errors"]?.array?.first?["field"]?.string == "title")
            }
            try await client.execute(uri: "/v1/tenants/acme/notes/notes", method: .post, headers: headers, body: ByteBuffer(string: #"{"title":42}"#)) {
                #expect($0.status == .unprocessableContent)
                #expect(json($0)["errors"]?.array?.first?["message"]?.string == "must be a string")
            }
            try await client.execute(uri: "/v1/tenants/acme/notes/notes", method: .post, headers: headers, body: ByteBuffer(string: #"{"title":""}"#)) {
                #expect($0.status == .unprocessableContent)
            }
            let big = ByteBuffer(string: #"{"title":""# + String(repeating: "x", count: 1000) + #""}"#)
            try await client.execute(uri: "/v1/tenants/acme/notes/notes", method: .post, headers: headers, body: big) {
                #expect($0.status == .contentTooLarge)
                #expect(json($0)["code"]?.string == "payload_too_large")
            }
            try await client.execute(uri: "/v1/tenants/acme/notes/notes", method: .get, headers: headers) {
                #expect(json($0)["data"]?.array?.isEmpty == true)
            }
        }
    }

    @Test func tenantEndpointsDescribeTheCallersTenant() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        let acme = try await db.createTenant("acme", modules: ["notes"])
        try await withTestApp(db) { client, _ in
            try await client.execute(uri: "/v1/tenants/acme", method: .get, headers: [.authorization: TestAuthenticator.header(acme)]) {
                #expect($0.status == .ok)
                let body = json($0)
                #expect(body["slug"]?.string == "acme")
                #expect(body["created_at"]?.string?.hasSuffix("Z") == true)
            }
            try await client.execute(uri: "/v1/tenants/acme/modules", method: .get, headers: [.authorization: TestAuthenticator.header(acme)]) {
                let modules = json($0)["data"]?.array
                #expect(modules?.first?["id"]?.string == "notes")
                #expect(modules?.first?["enabled"] == true)
            }
        }
    }
}
