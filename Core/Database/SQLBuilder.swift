public import PostgresNIO

/// A statement whose shape depends on the request (which filters were given, how many
/// references to check): constant text is appended, and every value is bound and stands
/// in the text only as its `$n` placeholder, so no value is ever concatenated into SQL.
public struct SQLBuilder: Sendable {
    public private(set) var query: SQL

    /// Starts from `query`, keeping its text and its bound values; `prefix` and `suffix`
    /// are constant text around it (a filter inside `SELECT … WHERE (` and `)`).
    public init(_ prefix: String = "", _ query: SQL = "", _ suffix: String = "") {
        self.query = SQL(unescaped: prefix)
        self.query.adopt(query)
        self.query.append(unescaped: suffix)
    }

    /// Appends constant SQL text (names and keywords of the caller's own, never input).
    public mutating func append(_ text: String) {
        query.append(unescaped: text)
    }

    /// Binds `value` and returns its placeholder, to be used in appended text (once or more).
    public mutating func bind(_ value: some PostgresDynamicTypeEncodable) -> String {
        query.bind(value)
    }
}
