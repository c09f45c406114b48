public import Logging
public import PostgresNIO
import NIOPosix

/// Runs `body` with a pooled client that is running for exactly the body's duration,
/// for commands that need the database briefly rather than as a long-lived service.
@discardableResult
public func withPostgresClient<Result: Sendable>(
    _ url: DatabaseURL, maximumConnections: Int = 4, logger: Logger, _ body: @Sendable (PostgresClient) async throws -> Result
) async throws -> Result {
    let client = PostgresClient(configuration: try url.clientConfiguration(maximumConnections: maximumConnections), backgroundLogger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        // The body waits until the run task is under way: a lease before `run()` works,
        // but makes the driver print a warning on every command. The signal comes just
        // before `run()` marks the client running (its first step, with no hook after
        // it), so the body also gives it a moment: on a loaded machine the run task was
        // once still between the two when the body leased.
        let (started, signal) = AsyncStream.makeStream(of: Void.self)
        group.addTask {
            signal.finish()
            await client.run()
        }
        for await _ in started {}
        try await Task.sleep(for: .milliseconds(20))
        defer { group.cancelAll() }
        return try await body(client)
    }
}

/// Runs `body` with a `Database` of `maximumConnections` pooled connections, and as many
/// for authenticated requests (whose `BEGIN` goes with their first statement, as under
/// `atrium serve`), running for exactly the body's duration: the tests' application.
@discardableResult
public func withDatabase<Result: Sendable>(
    _ url: DatabaseURL, maximumConnections: Int = 4, logger: Logger, _ body: @Sendable (Database) async throws -> Result
) async throws -> Result {
    let loops = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())
    let requests = try RequestConnectionPool(
        url: url, connectionsPerLoop: max(1, maximumConnections / max(1, loops.count)), eventLoops: loops, logger: logger)
    return try await withPostgresClient(url, maximumConnections: maximumConnections, logger: logger) { client in
        let database = Database(shared: client, loopPools: [], background: nil, requests: requests, maximumConnections: maximumConnections * 2)
        guard let requests else { return try await body(database) }
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await requests.run() }
            defer { group.cancelAll() }
            return try await body(database)
        }
    }
}

/// Opens one connection (for the migrator, which holds a session advisory lock), runs
/// `body` and closes it. `connectTimeout` bounds opening it (socket and startup).
@discardableResult
public func withPostgresConnection<Result: Sendable>(
    _ url: DatabaseURL, connectTimeout: Duration = .seconds(5), logger: Logger, _ body: (PostgresConnection) async throws -> Result
) async throws -> Result {
    let connectionConfiguration = try url.connectionConfiguration(connectTimeout: connectTimeout)
    let connection: PostgresConnection
    do {
        connection = try await PostgresConnection.connect(configuration: connectionConfiguration, id: 1, logger: logger)
    } catch {
        throw ConfigurationError("cannot connect to PostgreSQL at \(url.redactedDescription): \(DatabaseErrors.describe(error))")
    }
    do {
        let result = try await body(connection)
        try? await connection.close()
        return result
    } catch {
        try? await connection.close()
        throw error
    }
}

/// Short, human descriptions of driver errors for operator-facing messages.
public enum DatabaseErrors {
    public static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return message }
            if let underlying = error.underlying { return String(describing: underlying) }
            return "\(error.code)"
        }
        return String(describing: error)
    }
}
