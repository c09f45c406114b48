import AtriumCore
import AtriumSales
import Foundation
import Testing

/// What every module must satisfy, checked for each one the repository ships (and the
/// guide's): its migrations keep the tenancy rules, and every authenticated route
/// declares the permission it needs.
@Suite struct ModuleConformanceTests {
    static let modules: [any AtriumModule] = [SalesModule(), GuestbookModule()]

    @Test(arguments: modules.map(\.id)) func migrationsKeepTheTenancyRules(_ id: String) async throws {
        let module = try #require(Self.modules.first { $0.id == id })
        let db = try await TestDatabase.create(modules: [module])
        let violations = try await db.withOwner { try await SchemaVerifier(logger: TestDatabase.logger).verify($0) }
        #expect(violations == [])
    }

    @Test(arguments: modules.map(\.id)) func everyRouteDeclaresItsAccess(_ id: String) async throws {
        let module = try #require(Self.modules.first { $0.id == id })
        let db = try await TestDatabase.create(modules: [module])
        try await withIdentityApp(db, modules: [module]) { client, _ in
            let document = json(try await client.get("/v1/openapi.json", token: nil))
            guard case .object(let paths) = document["paths"] ?? .null else {
                Issue.record("no paths")
                return
            }
            var undeclared: [String] = []
            var routes = 0
            for (path, operations) in paths where path.hasPrefix("/v1/tenants/{tenant}/\(id)/") || path == "/v1/tenants/{tenant}/\(id)" {
                guard case .object(let byMethod) = operations else { continue }
                for (method, operation) in byMethod {
                    routes += 1
                    if operation["x-atrium-permission"] == nil { undeclared.append("\(method.uppercased()) \(path)") }
                }
            }
            #expect(routes > 0)
            #expect(undeclared == [])
        }
    }
}
