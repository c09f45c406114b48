public import PostgresNIO

/// Reads a row's columns in order, each into the type its destination has:
///
/// ```swift
/// init(_ row: PostgresRow) throws {
///     var columns = RowReader(row)
///     id = try columns.next()
///     email = try columns.next()  // String? when the column may be NULL
/// }
/// ```
///
/// Why not `row.decode((UUID, String?, …).self)`: that call is generic over a parameter
/// pack, which the compiler does not specialise, so every column of every row looks up
/// its type's metadata at run time — in a profile of a 20-row list, a twentieth of the
/// machine. Here each column is decoded by a call specialised for its type in the
/// caller's module. It also names no tuple that must be kept in step with the fields.
public struct RowReader {
    @usableFromInline var cells: PostgresRow.Iterator
    @usableFromInline var index = 0

    @inlinable public init(_ row: PostgresRow) {
        cells = row.makeIterator()
    }

    /// The next column as `Value`; a decoding failure names the column, as
    /// `PostgresRow.decode` does.
    @inlinable public mutating func next<Value: PostgresDecodable>(
        _ type: Value.Type = Value.self, file: String = #fileID, line: Int = #line
    ) throws -> Value {
        guard let cell = cells.next() else { throw MissingColumn(index: index) }
        index += 1
        return try cell.decode(Value.self, context: .default, file: file, line: line)
    }

    /// A row has fewer columns than its reader asked for: the statement and the type
    /// that reads it disagree.
    public struct MissingColumn: Error, CustomStringConvertible {
        public let index: Int
        public init(index: Int) { self.index = index }
        public var description: String { "the row has no column \(index) (columns are counted from 0)" }
    }
}
