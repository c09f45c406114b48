@testable import AtriumCore
import AtriumTesting
import Foundation
import PostgresNIO
import Testing

/// `SQL` run through `PreparedStatements`: prepared once per connection, the same rows as
/// the unnamed path, and a failed first preparation never sticks to a connection.
@Suite("Prepared statements")
struct PreparedStatementsTests {
    let statements = PreparedStatements()
    let logger = TestDatabase.logger

    /// Names of the statements prepared in this connection's session.
    func preparedNames(_ connection: PostgresConnection) async throws -> Set<String> {
        Set(try await connection.query("SELECT name FROM pg_prepared_statements", logger: logger).collect().map { try $0.decode(String.self) })
    }

    @Test func aStatementIsPreparedOncePerConnectionAndAnswersLikeTheUnnamedPath() async throws {
        let db = try await TestDatabase.create()
        try await db.withApp(maximumConnections: 1) { database in
            try await database.client.withConnection { connection in
                let missing: String? = nil
                let letter = "x"
                for value in [1, 2, 3] as [Int64] {
                    let sql: SQL = "SELECT \(value) + 1, \(missing)::text IS NULL, \(letter)::text"
                    let prepared = try await statements.rows(sql, on: connection, logger: logger)
                    let unnamed = try await connection.query(sql.postgresQuery, logger: logger).collect()
                    #expect(prepared.count == 1 && unnamed.count == 1)
                    let viaPrepared = try #require(prepared.first).decode((Int64, Bool, String).self)
                    let viaUnnamed = try #require(unnamed.first).decode((Int64, Bool, String).self)
                    #expect(viaPrepared == (value + 1, true, "x"))
                    #expect(viaUnnamed == viaPrepared)
                }
                let names = try await preparedNames(connection)
                #expect(names.count == 1)
                #expect(names.allSatisfy { $0.hasPrefix("atrium_statement_") })
                // The same text with a value where a nil was is a statement of its own.
                let given: String? = "y"
                let typed: SQL = "SELECT \(Int64(1)) + 1, \(given)::text IS NULL, \(letter)::text"
                let row = try #require(try await statements.rows(typed, on: connection, logger: logger).first)
                let decoded = try row.decode((Int64, Bool, String).self)
                #expect(decoded == (2, false, "x"))
                #expect(try await preparedNames(connection).count == 2)
            }
        }
    }

    @Test func aPreparationThatFailedInAnAbortedTransactionDoesNotStickToTheConnection() async throws {
        let db = try await TestDatabase.create()
        try await db.withApp(maximumConnections: 1) { database in
            try await database.client.withConnection { connection in
                let sql: SQL = "SELECT \(Int64(41)) + 1"
                try await connection.query("BEGIN", logger: logger)
                await #expect(throws: (any Error).self) { try await connection.query("SELECT 1/0", logger: logger) }
                // The first preparation meets an aborted transaction and fails…
                await #expect(throws: (any Error).self) { try await statements.rows(sql, on: connection, logger: logger) }
                try await connection.query("ROLLBACK", logger: logger)
                // …and afterwards the statement runs on this connection all the same.
                for _ in 0..<2 {
                    let row = try #require(try await statements.rows(sql, on: connection, logger: logger).first)
                    #expect(try row.decode(Int64.self) == 42)
                }
            }
        }
    }

    @Test func statementsBeyondTheCapacityRunUnnamed() async throws {
        let db = try await TestDatabase.create()
        try await db.withApp(maximumConnections: 1) { database in
            try await database.client.withConnection { connection in
                for index in 0..<(PreparedStatements.capacity + 3) {
                    let sql = SQL(unescaped: "SELECT \(index)::int8")
                    let row = try #require(try await statements.rows(sql, on: connection, logger: logger).first)
                    #expect(try row.decode(Int64.self) == Int64(index))
                }
                #expect(try await preparedNames(connection).count == PreparedStatements.capacity)
            }
        }
    }

    /// The request transaction's prepared `BEGIN` and `COMMIT`: `COMMIT` prepares even when
    /// its first use meets an aborted transaction (it ends it), and both keep working on
    /// the connection afterwards.
    @Test func preparedBeginAndCommitSurviveAnAbortedTransaction() async throws {
        let db = try await TestDatabase.create()
        try await db.withApp(maximumConnections: 1) { database in
            try await database.client.withConnection { connection in
                try await TransactionControl.begin(on: connection, logger: logger)
                await #expect(throws: (any Error).self) { try await connection.query("SELECT 1/0", logger: logger) }
                try await TransactionControl.commit(on: connection, logger: logger)
                for value in [1, 2] as [Int64] {
                    try await TransactionControl.begin(on: connection, logger: logger)
                    try await connection.query("CREATE TEMP TABLE IF NOT EXISTS kept (n int8)", logger: logger)
                    try await connection.query("INSERT INTO kept VALUES (\(value))", logger: logger)
                    try await TransactionControl.commit(on: connection, logger: logger)
                }
                let rows = try await connection.query("SELECT count(*) FROM kept", logger: logger).collect()
                #expect(try rows.first?.decode(Int64.self) == 2)
                let names = try await preparedNames(connection)
                #expect(names.isSuperset(of: ["atrium_begin", "atrium_commit"]))
            }
        }
    }
}
