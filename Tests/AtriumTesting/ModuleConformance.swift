public import AtriumCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOFoundationCompat
import PostgresNIO

/// The rules every module lives by, checked on a real database and the real router. A
/// module's test target runs them once:
///
/// ```swift
/// @Test func keepsTheModuleRules() async throws {
///     #expect(try await ModuleConformance.problems(of: MyModule()) == [])
/// }
/// ```
///
/// (The registry refuses names of permissions, meters, jobs and schedules without the
/// module's prefix before any of this runs.)
public enum ModuleConformance {
    /// Every rule `module` breaks, described; empty when it keeps them all:
    /// - its migrations pass `SchemaVerifier` (row-level security on every tenant table),
    /// - every table it creates is named `<id>_…`,
    /// - every route it serves, authenticated or public, declares its access (shown in
    ///   OpenAPI as `x-atrium-access`: `any_caller`, `permission` or `owned`),
    /// - the OpenAPI document with its routes passes openapi-spec-validator, which `make
    ///   test` provides (`ATRIUM_TEST_PYTHON`); without it the check fails rather than
    ///   pass unchecked.
    public static func problems(of module: any AtriumModule) async throws -> [String] {
        let db = try await TestDatabase.create(modules: [module])
        let kernelOnly = try await TestDatabase.create(modules: [])
        var problems = try await db.withOwner { try await SchemaVerifier(logger: TestDatabase.logger).verify($0) }.map { "schema: \($0)" }
        let kernelTables = Set(try await kernelOnly.withOwner(tables))
        for table in try await db.withOwner(tables) where !kernelTables.contains(table) && !table.hasPrefix(module.id + "_") {
            problems.append("table \(table) is not named \(module.id)_…")
        }
        let document = try await withTestApplication(db, modules: [module]) { client, _ in
            try await client.execute(uri: "/v1/openapi.json", method: .get) { Data(buffer: $0.body) }
        }
        problems += try undeclaredRoutes(of: module.id, in: document)
        problems += try await validatorProblems(document)
        return problems
    }

    private static func tables(_ connection: PostgresConnection) async throws -> [String] {
        try await connection.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", logger: TestDatabase.logger)
            .collect().map { try $0.decode(String.self) }
    }

    /// The module's operations whose access OpenAPI does not show.
    static func undeclaredRoutes(of id: String, in document: Data) throws -> [String] {
        guard case .object(let root) = try JSONDecoder().decode(JSONValue.self, from: document), case .object(let paths) = root["paths"] ?? .null else {
            return ["the OpenAPI document has no paths"]
        }
        var problems: [String] = []
        var operations = 0
        let prefixes = ["/v1/tenants/{tenant}/\(id)", "/v1/public/{tenant}/\(id)"]
        for (path, entry) in paths.sorted(by: { $0.key < $1.key }) where prefixes.contains(where: { path.hasPrefix($0) }) {
            guard case .object(let byMethod) = entry else { continue }
            for (method, operation) in byMethod.sorted(by: { $0.key < $1.key }) {
                operations += 1
                if operation["x-atrium-access"] == nil { problems.append("\(method.uppercased()) \(path) declares no access") }
            }
        }
        if operations == 0 { problems.append("the module serves no route under /v1/tenants/{tenant}/\(id) or /v1/public/{tenant}/\(id)") }
        return problems
    }

    private static func validatorProblems(_ document: Data) async throws -> [String] {
        guard let python = ProcessInfo.processInfo.environment["ATRIUM_TEST_PYTHON"] else {
            return ["OpenAPI: not validated: ATRIUM_TEST_PYTHON is not set (make test provides openapi-spec-validator)"]
        }
        let file = FileManager.default.temporaryDirectory.appending(path: "atrium-openapi-\(UUID().uuidString).json")
        try document.write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let result = try await ProcessRunner().run(python, ["-m", "openapi_spec_validator", file.path()], timeout: .seconds(120))
        return result.status == 0 ? [] : ["OpenAPI: \(result.output)"]
    }
}
