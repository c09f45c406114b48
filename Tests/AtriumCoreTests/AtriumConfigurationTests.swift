import AtriumCore
import Foundation
import Testing

/// The composition root's configuration: defaults that are safe, and every malformed
/// variable refused at start by name (never silently defaulted).
@Suite struct AtriumConfigurationTests {
    let registry: ModuleRegistry
    let directory = FileManager.default.temporaryDirectory

    init() throws {
        registry = try ModuleRegistry([NotesModule()])
    }

    func configuration(_ environment: [String: String], port: Int? = nil) throws -> AtriumConfiguration {
        try AtriumConfiguration(environment: environment, registry: registry, dataDirectory: directory, port: port)
    }

    @Test func defaultsListenLocallyWithoutSharedLimitsOrOperatorAPI() throws {
        let defaults = try configuration([:])
        #expect(defaults.server.host == "127.0.0.1")
        #expect(defaults.server.port == 8080)
        #expect(defaults.publicURL.absoluteString == "http://127.0.0.1:8080")
        #expect(!defaults.sharedRateLimits)
        #expect(defaults.operatorToken == nil)
        #expect(defaults.plans == nil)
        #expect(defaults.poolSize >= 8)
        #expect(defaults.hashing == PasswordHasher.Parameters())
    }

    @Test func theCommandLineOverridesTheEnvironment() throws {
        let chosen = try configuration(["ATRIUM_PORT": "9000", "ATRIUM_ARGON2_ITERATIONS": "3", "ATRIUM_RATE_LIMIT_STORE": "postgres"], port: 9100)
        #expect(chosen.server.port == 9100)
        #expect(chosen.publicURL.absoluteString == "http://127.0.0.1:9100")
        #expect(chosen.hashing.iterations == 3)
        #expect(chosen.sharedRateLimits)
    }

    @Test(arguments: [
        ("ATRIUM_PORT", "eighty"), ("ATRIUM_DB_POOL_SIZE", "0"), ("ATRIUM_PUBLIC_URL", "ftp://example.com"), ("ATRIUM_RATE_LIMIT_STORE", "redis"),
        ("ATRIUM_ACCESS_TOKEN_TTL", "5"), ("ATRIUM_ARGON2_MEMORY_KIB", "lots"),
    ])
    func aMalformedVariableIsRefusedByName(name: String, value: String) throws {
        let error = #expect(throws: ValidationFailure.self) { try configuration([name: value]) }
        #expect(error?.description.contains(name) == true, "\(String(describing: error))")
    }
}
