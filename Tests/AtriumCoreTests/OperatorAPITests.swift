import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@Suite("Operator API")
struct OperatorAPITests {
    static let token = String(repeating: "k", count: 40)

    @Test func theOperatorMovesPlansAndCancelsWithItsToken() async throws {
        let db = try await TestDatabase.create(modules: [NotesModule()])
        _ = try await db.createTenant("acme", modules: ["notes"])
        let catalog = try PlanCatalog.parse("plans:\n  free:\n    modules: [notes]\n  pro:\n    price: 1999\n", path: "plans.yaml")
        try await db.withApp { database in
            let registry = try ModuleRegistry([NotesModule()])
            let dependencies = ApplicationDependencies(
                database: database, registry: registry, authenticator: TestAuthenticator(), plans: catalog,
                operatorAccess: try OperatorAccess(token: Self.token, ownerURL: db.owner), logger: TestDatabase.logger,
                expectedMigrations: try registry.allMigrations())
            let app = Application(router: buildRouter(dependencies), logger: TestDatabase.logger)
            try await app.test(.router) { client in
                let auth: HTTPFields = [.authorization: "Bearer \(Self.token)", .contentType: "application/json"]
                #expect(try await client.execute(uri: "/v1/operator/tenants", method: .get).status == .unauthorized)
                let wrong = try await client.execute(
                    uri: "/v1/operator/tenants", method: .get, headers: [.authorization: "Bearer \(String(repeating: "x", count: 40))"])
                #expect(wrong.status == .unauthorized)
                #expect(json(wrong)["code"]?.string == "unauthenticated")
                let list = try await client.execute(uri: "/v1/operator/tenants", method: .get, headers: auth)
                #expect(json(list)["data"]?.array?.first?["plan"]?.string == "free")
                #expect(json(list)["data"]?.array?.first?["subscription_status"]?.string == "active")

                let moved = try await client.execute(
                    uri: "/v1/operator/tenants/acme/plan", method: .put, headers: auth, body: ByteBuffer(string: #"{"plan":"pro","trial_days":7}"#))
                #expect(moved.status == .ok)
                #expect(json(moved)["to"]?.string == "pro")
                #expect(json(moved)["disabled_modules"] == ["notes"])
                let unknown = try await client.execute(
                    uri: "/v1/operator/tenants/acme/plan", method: .put, headers: auth, body: ByteBuffer(string: #"{"plan":"gold"}"#))
                #expect(unknown.status == .unprocessableContent)
                let missing = try await client.execute(
                    uri: "/v1/operator/tenants/nope/plan", method: .put, headers: auth, body: ByteBuffer(string: #"{"plan":"pro"}"#))
                #expect(missing.status == .notFound)
                let trial = try await client.execute(uri: "/v1/operator/tenants", method: .get, headers: auth)
                #expect(json(trial)["data"]?.array?.first?["subscription_status"]?.string == "trialing")

                #expect(try await client.execute(uri: "/v1/operator/tenants/acme/cancel", method: .post, headers: auth).status == .noContent)
                let canceled = try await client.execute(uri: "/v1/operator/tenants", method: .get, headers: auth)
                #expect(json(canceled)["data"]?.array?.first?["subscription_status"]?.string == "canceled")
            }
        }
        // Without a token configured the operator API does not exist.
        try await withTestApp(db) { client, _ in
            let response = try await client.execute(uri: "/v1/operator/tenants", method: .get, headers: [.authorization: "Bearer \(Self.token)"])
            #expect(response.status == .notFound)
        }
    }
}
