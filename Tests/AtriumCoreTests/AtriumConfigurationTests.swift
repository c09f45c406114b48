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
        #expect(defaults.connections >= ConnectionBudget.minimum(loops: 1))
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
        ("ATRIUM_PORT", "eighty"), ("ATRIUM_DB_CONNECTIONS", "0"), ("ATRIUM_PUBLIC_URL", "ftp://example.com"), ("ATRIUM_RATE_LIMIT_STORE", "redis"),
        ("ATRIUM_ACCESS_TOKEN_TTL", "5"), ("ATRIUM_ARGON2_MEMORY_KIB", "lots"), ("ATRIUM_OUTBOUND_ALLOW", "everywhere"),
        ("ATRIUM_CRYPTO_OUTBOUND_ALLOW", "internal"), ("ATRIUM_OUTBOUND_CONCURRENCY", "0"),
    ])
    func aMalformedVariableIsRefusedByName(name: String, value: String) throws {
        let error = #expect(throws: ValidationFailure.self) { try configuration([name: value]) }
        #expect(error?.description.contains(name) == true, "\(String(describing: error))")
    }
}

/// One number sizes a process's connections; the pools split it.
@Suite struct ConnectionBudgetTests {
    @Test func theBudgetSplitsAmongThePoolsAndRefusesTooFew() throws {
        let two = try ConnectionBudget(total: ConnectionBudget.defaultTotal(cores: 2, loops: 2), loops: 2)
        #expect(two.total == 29)
        #expect((two.shared, two.perLoop, two.background) == (8, 4, 4))
        let small = try ConnectionBudget(total: 12, loops: 2)
        #expect(small.total <= 12)
        #expect(small.total == ConnectionBudget.listener + small.background + small.shared + 4 * small.perLoop)
        #expect(throws: ConfigurationError.self) { try ConnectionBudget(total: 5, loops: 2) }
        // The old setting is refused by name, not ignored.
        #expect(throws: ConfigurationError.self) {
            try AtriumConfiguration(environment: ["ATRIUM_DB_POOL_SIZE": "20"], registry: try ModuleRegistry([]), dataDirectory: URL(fileURLWithPath: "/tmp"))
        }
    }
}
