import AtriumCore
@testable import AtriumTesting
import Foundation
import HTTPTypes
import Testing

/// The guide's module keeps the rules every module lives by (`ModuleConformance`), and
/// the checks find a module that breaks them.
@Suite struct ModuleConformanceTests {
    @Test func theGuidesModuleKeepsTheRules() async throws {
        #expect(try await ModuleConformance.problems(of: GuestbookModule()) == [])
    }

    @Test func aModuleBreakingTheRulesIsNamed() async throws {
        let problems = try await ModuleConformance.problems(of: CarelessModule())
        #expect(problems.contains { $0.contains("table unprefixed_notes is not named careless_") }, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("schema:") && $0.contains("unprefixed_notes") }, "\(problems)")
        // `.anyCaller` is a declared access, on a tenant route as on a public one.
        #expect(!problems.contains { $0.contains("declares no access") }, "\(problems)")
    }

    /// An operation whose access OpenAPI does not show (a route a module registered around
    /// `ModuleRoutes`), on a tenant path or a public one, is named.
    @Test func anOperationWithoutItsAccessIsNamed() throws {
        let document = Data(
            """
            {"paths": {
              "/v1/tenants/{tenant}/careless/notes": {"get": {"x-atrium-access": "any_caller"}, "post": {}},
              "/v1/public/{tenant}/careless/form": {"post": {}},
              "/v1/tenants/{tenant}/other/things": {"get": {}}
            }}
            """.utf8)
        #expect(try ModuleConformance.undeclaredRoutes(of: "careless", in: document) == [
            "POST /v1/public/{tenant}/careless/form declares no access", "POST /v1/tenants/{tenant}/careless/notes declares no access",
        ])
    }
}

/// A module that breaks the schema rules: an unprefixed table without row-level security.
/// Its routes, for any caller, keep the access rule.
private struct CarelessModule: AtriumModule {
    var id: String { "careless" }
    var version: String { "1.0.0" }
    var requiredKernelVersion: String { "0.1" }

    func migrations() throws -> [Migration] {
        [Migration(owner: id, version: 1, fileName: "0001_careless.sql", sql: """
            CREATE TABLE unprefixed_notes (tenant_id uuid NOT NULL REFERENCES tenants (id), id uuid PRIMARY KEY, body text NOT NULL);
            GRANT SELECT ON unprefixed_notes TO atrium_app;
            """)]
    }

    func routes(_ routes: ModuleRoutes) {
        routes.on(.get, "notes", summary: "Notes", access: .anyCaller, response: Page<String>.self) { _ in Page(data: []) }
    }

    func publicRoutes(_ routes: ModuleRoutes) {
        routes.on(.get, "board", summary: "The public board", access: .anyCaller, response: Page<String>.self) { _ in Page(data: []) }
    }
}
