public import PostgresNIO

/// A statement and its bound values, written like a `PostgresQuery`: every interpolated
/// value is bound and stands in the text only as its `$n` placeholder, and only
/// `\(unescaped:)` (constant names and keywords of the caller's own, never input) goes
/// into the text.
///
/// Unlike `PostgresQuery` it also remembers each value's PostgreSQL type, which is what
/// lets the kernel run it as a named prepared statement of the connection (parsed and
/// planned once per connection rather than once per request; see `PreparedStatements`)
/// with exactly the parameter types an unnamed statement would have declared.
public struct SQL: Sendable, Hashable, ExpressibleByStringInterpolation {
    public private(set) var text: String
    public private(set) var binds: PostgresBindings
    /// The type of each bound value in order; `.null` for a nil, which PostgreSQL infers.
    public private(set) var types: [PostgresDataType]

    public init(stringLiteral value: String) {
        text = value
        binds = PostgresBindings()
        types = []
    }

    public init(stringInterpolation: StringInterpolation) {
        text = stringInterpolation.text
        binds = stringInterpolation.binds
        types = stringInterpolation.types
    }

    /// Constant text (names and keywords of the caller's own, never input) and no values.
    public init(unescaped text: String) {
        self.init(stringLiteral: text)
    }

    /// The same statement for PostgresNIO's unnamed-statement path.
    public var postgresQuery: PostgresQuery {
        PostgresQuery(unsafeSQL: text, binds: binds)
    }

    /// Appends constant text (for `SQLBuilder`).
    mutating func append(unescaped text: String) {
        self.text += text
    }

    /// Appends `other`'s text and takes its values. Only for a statement that has no
    /// values yet (`SQLBuilder` starts from constant text), so `other`'s placeholders stay right.
    mutating func adopt(_ other: SQL) {
        text += other.text
        binds = other.binds
        types = other.types
    }

    /// Binds `value` (for `SQLBuilder`), returning its placeholder.
    mutating func bind<Value: PostgresDynamicTypeEncodable>(_ value: Value) -> String {
        binds.append(value)
        types.append(value.psqlType)
        return "$\(binds.count)"
    }

    public struct StringInterpolation: StringInterpolationProtocol, Sendable {
        var text: String
        var binds: PostgresBindings
        var types: [PostgresDataType]

        public init(literalCapacity: Int, interpolationCount: Int) {
            text = ""
            text.reserveCapacity(literalCapacity + 3 * interpolationCount)
            binds = PostgresBindings(capacity: interpolationCount)
            types = []
            types.reserveCapacity(interpolationCount)
        }

        public mutating func appendLiteral(_ literal: String) {
            text += literal
        }

        public mutating func appendInterpolation<Value: PostgresDynamicTypeEncodable>(_ value: Value) {
            binds.append(value)
            types.append(value.psqlType)
            text += "$\(binds.count)"
        }

        public mutating func appendInterpolation<Value: PostgresDynamicTypeEncodable>(_ value: Value?) {
            binds.append(value)
            types.append(value?.psqlType ?? .null)
            text += "$\(binds.count)"
        }

        public mutating func appendInterpolation<Value: PostgresThrowingDynamicTypeEncodable>(_ value: Value) throws {
            try binds.append(value)
            types.append(value.psqlType)
            text += "$\(binds.count)"
        }

        public mutating func appendInterpolation<Value: PostgresThrowingDynamicTypeEncodable>(_ value: Value?) throws {
            try binds.append(value)
            types.append(value?.psqlType ?? .null)
            text += "$\(binds.count)"
        }

        /// Constant text: a name or keyword of the caller's own, never input.
        public mutating func appendInterpolation(unescaped text: String) {
            self.text += text
        }
    }
}
