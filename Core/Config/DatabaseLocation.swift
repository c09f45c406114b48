public import Foundation
public import Logging

/// Where the database is: an external server named by `DATABASE_URL` and
/// `DATABASE_OWNER_URL`, or the embedded cluster under the data folder.
public struct DatabaseLocation: Sendable {
    /// The application role: owns nothing, subject to row-level security.
    public var app: DatabaseURL
    /// The owner role: runs migrations and operator commands.
    public var owner: DatabaseURL
    /// The embedded cluster, when one is in use.
    public var embedded: EmbeddedPostgres?

    public init(app: DatabaseURL, owner: DatabaseURL, embedded: EmbeddedPostgres?) {
        self.app = app
        self.owner = owner
        self.embedded = embedded
    }

    /// Resolves the database from the environment and, for the embedded cluster, makes
    /// sure it is running for the duration of `body` (stopping it afterwards only if this
    /// call started it).
    public static func withDatabase<Result: Sendable>(
        dataDirectory: URL, environment: [String: String] = ProcessInfo.processInfo.environment, logger: Logger,
        _ body: (DatabaseLocation) async throws -> Result
    ) async throws -> Result {
        if let appURL = environment["DATABASE_URL"], !appURL.isEmpty {
            guard let ownerURL = environment["DATABASE_OWNER_URL"], !ownerURL.isEmpty else {
                throw ConfigurationError("DATABASE_URL is set but DATABASE_OWNER_URL is not; migrations run as the owner role, so set both")
            }
            let location = DatabaseLocation(app: try DatabaseURL(parsing: appURL), owner: try DatabaseURL(parsing: ownerURL), embedded: nil)
            return try await body(location)
        }
        let embedded = EmbeddedPostgres(dataDirectory: dataDirectory, logger: logger)
        let started = try await embedded.start()
        let urls = try embedded.urls()
        let location = DatabaseLocation(app: urls.app, owner: urls.owner, embedded: embedded)
        do {
            let result = try await body(location)
            if started { try embedded.stop() }
            return result
        } catch {
            if started { try? embedded.stop() }
            throw error
        }
    }
}
