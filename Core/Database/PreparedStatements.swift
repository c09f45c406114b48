import Logging
import PostgresNIO
import Synchronization

/// Runs `SQL` as named prepared statements: each pooled connection parses and plans a
/// statement the first time it runs it, and every later run sends only Bind and Execute.
/// PostgreSQL's own profile of a module's list put parsing and planning its unnamed
/// statement at about a third of the database's time; a prepared statement also lets
/// PostgreSQL settle on a generic plan after a few runs and skip planning altogether.
///
/// A statement is known by its text and its values' types, so a nil bound where a value
/// was before (a type PostgreSQL infers) is a statement of its own, parsed as the unnamed
/// path would have parsed it. At most `capacity` distinct statements are named (each
/// costs every connection memory in PostgreSQL); any beyond run unnamed.
///
/// PostgresNIO remembers a statement whose preparation failed and fails it again on that
/// connection without asking the server; a preparation can fail for a passing reason (the
/// transaction was already aborted by an earlier error). So until a statement has once
/// succeeded on a connection, a failure sends it down the unnamed path on that connection
/// from then on.
final class PreparedStatements: Sendable {
    static let shared = PreparedStatements()
    static let capacity = 256

    struct Key: Hashable, Sendable {
        var text: String
        var types: [PostgresDataType]
    }

    struct ConnectionState {
        var prepared: Set<String> = []
        var refused: Set<String> = []
    }

    struct State {
        var names: [Key: String] = [:]
        var connections: [ObjectIdentifier: ConnectionState] = [:]
    }

    enum Route {
        case unnamed
        case prepared(name: String, known: Bool, firstUseOfConnection: Bool)
    }

    private let state = Mutex(State())
    private let namesOnThisThread = ThreadLocalMemo<Key, String?>(limit: 2 * PreparedStatements.capacity)

    /// The rows of `sql`, run on `connection` as a prepared statement where it can be.
    func rows(_ sql: SQL, on connection: PostgresConnection, logger: Logger) async throws -> [PostgresRow] {
        let id = ObjectIdentifier(connection)
        switch route(sql, connection: id) {
        case .unnamed:
            return try await connection.query(sql.postgresQuery, logger: logger).collect()
        case .prepared(let name, let known, let firstUse):
            if firstUse {
                // Forget the connection when it closes, before its address can be reused.
                connection.closeFuture.whenComplete { [self] _ in state.withLock { _ = $0.connections.removeValue(forKey: id) } }
            }
            do {
                let rows = try await DynamicStatement.$current.withValue(DynamicStatement.Current(name: name, sql: sql.text, types: sql.types)) {
                    var rows: [PostgresRow] = []
                    for try await row in try await connection.execute(DynamicStatement(bindings: sql.binds), logger: logger) {
                        rows.append(row)
                    }
                    return rows
                }
                if !known { state.withLock { _ = $0.connections[id]?.prepared.insert(name) } }
                return rows
            } catch {
                if !known { state.withLock { _ = $0.connections[id]?.refused.insert(name) } }
                throw error
            }
        }
    }

    func route(_ sql: SQL, connection id: ObjectIdentifier) -> Route {
        // The statement's name is looked up per thread: hashing its text under the shared
        // lock, on every statement of both event loops, was where they queued.
        let key = Key(text: sql.text, types: sql.types)
        guard let name = namesOnThisThread.value(for: key, orMake: { name(for: key) }) else { return .unnamed }
        return state.withLock { state in
            let firstUse = state.connections[id] == nil
            let connection = state.connections[id, default: ConnectionState()]
            if firstUse { state.connections[id] = connection }
            if connection.refused.contains(name) { return .unnamed }
            return .prepared(name: name, known: connection.prepared.contains(name), firstUseOfConnection: firstUse)
        }
    }

    /// The process-wide name of `key`, given on its first use; nil once `capacity`
    /// statements are named (and so for good: names are never taken back).
    private func name(for key: Key) -> String? {
        state.withLock { state in
            if let known = state.names[key] { return known }
            guard state.names.count < Self.capacity else { return nil }
            let name = "atrium_statement_\(state.names.count + 1)"
            state.names[key] = name
            return name
        }
    }
}

/// PostgresNIO's prepared statements name their text with static requirements (one type
/// per statement); the kernel's come from `SQL` at run time, so this type answers them
/// from a task-local that `PreparedStatements.rows` sets around the one `execute` call
/// that reads them (PostgresNIO reads them in that call, in the calling task).
struct DynamicStatement: PostgresPreparedStatement {
    struct Current: Sendable {
        var name: String
        var sql: String
        var types: [PostgresDataType]
    }

    @TaskLocal static var current: Current?

    static var name: String { current?.name ?? "atrium_statement_unset" }
    static var sql: String { current?.sql ?? "" }
    static var bindingDataTypes: [PostgresDataType] { current?.types ?? [] }

    typealias Row = PostgresRow

    let bindings: PostgresBindings

    func makeBindings() throws -> PostgresBindings { bindings }
    func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
}
