@testable import AtriumCore
import AtriumTesting
import Foundation
import PostgresNIO
import Testing

/// `RowReader` reads what `PostgresRow.decode` reads, column by column, and says which
/// column failed when one does not fit.
@Suite("Row reader")
struct RowReaderTests {
    let logger = TestDatabase.logger

    @Test func readsEachColumnAsTheTupleDecodeDoes() async throws {
        let db = try await TestDatabase.create()
        try await db.withApp(maximumConnections: 1) { database in
            try await database.client.withConnection { connection in
                let rows = try await connection.query(
                    """
                    SELECT gen_random_uuid(), 'ann'::text, NULL::text, ARRAY['a','b']::text[], now(), 42::int8, NULL::uuid
                    """, logger: logger
                ).collect()
                let row = try #require(rows.first)
                let tuple = try row.decode((UUID, String, String?, [String], Date, Int64, UUID?).self)
                var columns = RowReader(row)
                let id: UUID = try columns.next()
                let name: String = try columns.next()
                let missing: String? = try columns.next()
                let tags: [String] = try columns.next()
                let at: Date = try columns.next()
                let count: Int64 = try columns.next()
                let none: UUID? = try columns.next()
                #expect(id == tuple.0 && name == tuple.1 && missing == tuple.2 && tags == tuple.3)
                #expect(at == tuple.4 && count == tuple.5 && none == tuple.6)
                #expect(name == "ann" && missing == nil && tags == ["a", "b"] && count == 42 && none == nil)
                // One column too many: the statement and the reader disagree.
                #expect(throws: RowReader.MissingColumn.self) { _ = try columns.next(String.self) }
            }
        }
    }

    @Test func aColumnThatDoesNotFitIsNamed() async throws {
        let db = try await TestDatabase.create()
        try await db.withApp(maximumConnections: 1) { database in
            try await database.client.withConnection { connection in
                let row = try #require(try await connection.query("SELECT 1::int8 AS n, NULL::text AS label", logger: logger).collect().first)
                var columns = RowReader(row)
                _ = try columns.next(Int64.self)
                let error = try #require(throws: PostgresDecodingError.self) { _ = try columns.next(String.self) }
                #expect(error.columnName == "label" && error.columnIndex == 1)
            }
        }
    }
}
