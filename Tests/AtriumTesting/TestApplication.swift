public import AtriumCore
import Foundation
public import HTTPTypes
import Hummingbird
public import HummingbirdTesting
import NIOCore
import Testing

/// Cheap Argon2 parameters so tests hash in milliseconds; production uses the defaults.
public let testHasher = PasswordHasher(parameters: testHashing)

/// Cheap Argon2 parameters for the application a test builds.
public let testHashing = PasswordHasher.Parameters(memoryKiB: 1024, iterations: 1, parallelism: 1)

/// The application `atrium serve` runs, built by the same composition root
/// (`AtriumRuntime.prepare`) over a test database, with the identity layer on.
///
/// - `clock`: what modules read as now (`context.clock`), a `MovableClock` to reach a
///   link's expiry or a reminder's time without sleeping;
/// - `environment`: module settings (`ATRIUM_<MODULE>_<NAME>`) and the like, for this
///   test alone (never the process's environment, which parallel tests share).
public func withTestApplication<Result: Sendable>(
    _ db: TestDatabase, modules: [any AtriumModule], settings: SessionSettings = SessionSettings(), plans: PlanCatalog? = nil,
    operatorToken: String? = nil, clock: any AtriumClock = SystemClock(), environment: [String: String] = [:],
    _ body: @escaping @Sendable (any TestClientProtocol, Identity) async throws -> Result
) async throws -> Result {
    try await db.withApp(maximumConnections: 8) { database in
        let runtime = try await AtriumRuntime.prepareForTest(db, modules: modules, database: database) { configuration in
            configuration.sessions = settings
            configuration.plans = plans
            configuration.operatorToken = operatorToken
            configuration.clock = clock
            configuration.environment.merge(environment) { $1 }
        }
        guard let identity = runtime.dependencies.identity else { throw ConfigurationError("the runtime has no identity layer") }
        let app = Application(router: runtime.router, logger: TestDatabase.logger)
        return try await app.test(.router) { client in try await body(client, identity) }
    }
}

extension TestDatabase {
    /// Creates a user with a password and roles, as an operator would.
    public func createUser(_ email: String, password: String, roles: [String], in tenant: Tenant, hasher: PasswordHasher = testHasher) async throws -> User {
        let hash = try await hasher.hash(password)
        do {
            return try await withOwner { connection in
                try await connection.withTenantTransaction(tenant.id, logger: Self.logger) { connection in
                    try await UserStore(logger: Self.logger).create(tenantID: tenant.id, email: email, passwordHash: hash, roles: roles, on: connection)
                }
            }
        } catch {
            // Driver errors describe themselves generically; a failing test needs the details.
            throw TestFailure(String(reflecting: error))
        }
    }
}

extension TestClientProtocol {
    /// POSTs a JSON body and returns the response.
    public func post(_ uri: String, json: String, token: String? = nil) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: json))
    }

    public func get(_ uri: String, token: String?) async throws -> TestResponse {
        var headers: HTTPFields = [:]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await execute(uri: uri, method: .get, headers: headers, body: nil)
    }

    /// Sends `json` (when given) with `token` as the bearer.
    public func send(
        _ method: HTTPRequest.Method, _ uri: String, token: String, json: String? = nil, headers extra: HTTPFields = [:]
    ) async throws -> TestResponse {
        var headers = extra
        headers[.authorization] = "Bearer \(token)"
        if json != nil { headers[.contentType] = "application/json" }
        return try await execute(uri: uri, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) })
    }

    /// The status of a login attempt, for tests that expect it refused.
    public func loginStatus(_ tenant: String, _ email: String, _ password: String) async throws -> HTTPResponse.Status {
        try await post("/v1/tenants/\(tenant)/auth/login", json: #"{"email":"\#(email)","password":"\#(password)"}"#).status
    }

    /// Logs in and returns (access token, refresh token).
    public func login(_ tenant: String, _ email: String, _ password: String) async throws -> (access: String, refresh: String) {
        let response = try await post("/v1/tenants/\(tenant)/auth/login", json: #"{"email":"\#(email)","password":"\#(password)"}"#)
        let body = json(response)
        // A failed login is the test's failure here, never an empty token that a later
        // "must be rejected" check would then wrongly count as a pass.
        guard response.status == .ok, let access = body["access_token"]?.string, let refresh = body["refresh_token"]?.string else {
            throw TestFailure("login of \(email) on \(tenant) failed: \(response.status) \(String(buffer: response.body))")
        }
        return (access, refresh)
    }
}

public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
