public import PostgresNIO

/// A query's first row, or a thrown error naming that there was none: a test that
/// indexes `collect()[0]` traps on an empty answer and takes the whole test process down
/// with it (every other test's result is lost); this fails only its own test.
extension PostgresRowSequence {
    public func first() async throws -> PostgresRow {
        for try await row in self { return row }
        throw NoRow()
    }

    public struct NoRow: Error, CustomStringConvertible {
        public var description: String { "the query answered no row" }
    }
}
