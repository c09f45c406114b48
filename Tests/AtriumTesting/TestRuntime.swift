public import AtriumCore
import Testing

extension AtriumRuntime {
    /// The runtime `atrium serve` builds (`prepare`), over `database` of a test database:
    /// cheap password hashing and the database's master key, the rest as `configure` leaves it.
    public static func prepareForTest(
        _ db: TestDatabase, modules: [any AtriumModule], database: Database, configure: (inout AtriumConfiguration) -> Void = { _ in }
    ) async throws -> AtriumRuntime {
        let registry = try ModuleRegistry(modules)
        var configuration = try AtriumConfiguration(environment: [:], registry: registry, dataDirectory: db.dataDirectory)
        configuration.hashing = testHashing
        configure(&configuration)
        return try await prepare(
            configuration, registry: registry, location: db.location, database: database, masterKey: db.masterKey, logger: TestDatabase.logger)
    }
}

extension TenantDirectory {
    /// Runs `body` while this directory's listener runs over `database`, as under `atrium
    /// serve`: tenants and sessions are then served from memory.
    public func whileListening<Result: Sendable>(on database: Database, _ body: () async throws -> Result) async throws -> Result {
        let listener = Task { try await Listener(directory: self, database: database, retryDelay: .milliseconds(100)).run() }
        defer { listener.cancel() }
        let deadline = ContinuousClock.now + .seconds(10)
        while !isListening, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(isListening, "the tenant directory's listener did not start")
        return try await body()
    }
}
