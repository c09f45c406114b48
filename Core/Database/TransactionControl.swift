import Logging
import PostgresNIO

/// `BEGIN` and `COMMIT` of a request's transaction as prepared statements of the
/// connection (PostgresNIO prepares each once per connection, by name). Sent as plain
/// queries, each was parsed and described on every request — six messages back instead
/// of three, twice per request — for two statements that never change.
///
/// A failed preparation would stick to the connection (PostgresNIO remembers it), but
/// neither can fail to prepare: `BEGIN` is sent on an idle connection, and PostgreSQL
/// accepts `COMMIT` even in an aborted transaction. `ROLLBACK`, on the error path only,
/// stays a plain query.
enum TransactionControl {
    /// A statement without values or rows of interest.
    protocol Statement: PostgresPreparedStatement where Row == PostgresRow {}

    struct Begin: Statement {
        static let name = "atrium_begin"
        static let sql = "BEGIN"
    }

    struct Commit: Statement {
        static let name = "atrium_commit"
        static let sql = "COMMIT"
    }

    static func begin(on connection: PostgresConnection, logger: Logger) async throws {
        for try await _ in try await connection.execute(Begin(), logger: logger) {}
    }

    static func commit(on connection: PostgresConnection, logger: Logger) async throws {
        for try await _ in try await connection.execute(Commit(), logger: logger) {}
    }
}

extension TransactionControl.Statement {
    func makeBindings() throws -> PostgresBindings { PostgresBindings() }
    func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
}
