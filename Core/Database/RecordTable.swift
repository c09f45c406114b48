public import Foundation
public import PostgresNIO

/// A module's table of records as its store reads it: one record by id, a page of
/// records, one deleted by id. These statements are the same for every resource but for
/// names, so the kernel writes them once; a store adds its inserts, updates and filters.
///
/// Owner scope needs nothing here: row-level security (`atrium_owner_visible`) already
/// hides rows the caller may not reach, so another owner's id is answered 404 like a
/// missing one. Lists of an owned table still filter on the owner column, so that the
/// planner can use an `(owner_id, updated_at, id)` index.
public struct RecordTable<Record: Sendable>: Sendable {
    /// The table, a constant of the module (checked to be a plain identifier).
    public let name: String
    /// The select list that `decode` reads, also usable in a store's `RETURNING`.
    public let columns: String
    /// What a record is called in a 404: "No such \(noun)."
    public let noun: String
    let ownerColumn: String?
    /// The delegation scope of a table made with `atrium_delegated_table`: its pages show a
    /// caller the rows of owners who delegated to them too.
    let delegation: String?
    let order: KeysetOrder<Record>?
    let decode: @Sendable (PostgresRow) throws -> Record

    /// - Parameters:
    ///   - ownedBy: the owner column of a table with an owner policy, nil for one without.
    ///   - delegatedAs: the scope its owners delegate in (`atrium_delegated_table`), so
    ///     that a delegate's page has their delegators' rows beside their own.
    ///   - order: the list order and the cursor it pages by; nil for a table not listed
    ///     a page at a time (a deal's line items).
    public init(
        _ name: String, columns: String, noun: String, ownedBy ownerColumn: String? = "owner_id", delegatedAs delegation: String? = nil,
        order: KeysetOrder<Record>? = nil,
        decode: @escaping @Sendable (PostgresRow) throws -> Record
    ) {
        self.name = name
        self.columns = columns
        self.noun = noun
        self.ownerColumn = ownerColumn
        self.delegation = delegation
        self.order = order
        self.decode = decode
    }

    /// The record `id`; 404 when it is missing or hidden from this transaction.
    /// `forUpdate` locks it until commit (to compare before and after a change).
    public func find(_ id: UUID, on transaction: TenantTransaction, forUpdate: Bool = false) async throws -> Record {
        try checkNames()
        let lock = forUpdate ? " FOR UPDATE" : ""
        return try await one("SELECT \(unescaped: columns) FROM \(unescaped: name) WHERE id = \(id)\(unescaped: lock)", on: transaction)
    }

    /// Deletes the record `id`; 404 when no visible row matched. `condition` is further SQL
    /// a row must meet (a constant such as `kind <> 'stage_change'`, never input).
    public func delete(_ id: UUID, on transaction: TenantTransaction, onlyIf condition: String = "true") async throws {
        try checkNames()
        let deleted = try await transaction.query("DELETE FROM \(unescaped: name) WHERE id = \(id) AND (\(unescaped: condition)) RETURNING 1")
        guard !deleted.isEmpty else { throw AtriumError.notFound("No such \(noun).") }
    }

    /// Runs `query` (a store's `SELECT`, `INSERT … RETURNING` or `UPDATE … RETURNING` of
    /// `columns`) and decodes its first row; 404 when it returned none.
    public func one(_ query: SQL, on transaction: TenantTransaction) async throws -> Record {
        guard let row = try await transaction.query(query).first else {
            throw AtriumError.notFound("No such \(noun).")
        }
        return try decode(row)
    }

    /// Runs `query` and decodes every row.
    public func all(_ query: SQL, on transaction: TenantTransaction) async throws -> [Record] {
        try await transaction.query(query).map(decode)
    }

    /// One page of the rows matching `filter` (a boolean SQL expression with bound
    /// values), in the table's order, from where `request`'s cursor left off.
    ///
    /// A cursor's position is read from the row it names, so the page starts exactly after
    /// it; when that row is gone meanwhile, the time the cursor carries stands in.
    public func page(_ request: PageRequest, where filter: SQL = "true", on transaction: TenantTransaction) async throws -> Page<Record> {
        try checkNames()
        guard let order else { throw ConfigurationError("RecordTable \(name) has no order to page by") }
        var sql = SQLBuilder("SELECT \(columns) FROM \(name) WHERE (", filter, ")")
        if let ownerColumn, let owner = transaction.ownerFilter {
            let me = sql.bind(owner)
            if let delegation {
                sql.append(
                    " AND (\(ownerColumn) = \(me) OR \(ownerColumn) IN (SELECT owner_id FROM owner_delegations WHERE scope = \(sql.bind(delegation)) AND delegate_id = \(me)))")
            } else {
                sql.append(" AND \(ownerColumn) = \(me)")
            }
        }
        let (column, direction) = (order.column, order.descending ? "DESC" : "")
        if let after = request.after {
            let (id, time) = (sql.bind(after.id), sql.bind(after.time))
            sql.append(" AND (\(column), id) \(order.descending ? "<" : ">") (coalesce((SELECT \(column) FROM \(name) WHERE id = \(id)), \(time)), \(id))")
        }
        sql.append(" ORDER BY \(column) \(direction), id \(direction) LIMIT \(sql.bind(request.limit + 1))")
        // The text holds checked names and the filter's own text; every value is bound.
        let fetched = try await all(sql.query, on: transaction)
        return request.page(fetched, key: order.key)
    }

    private func checkNames() throws {
        for identifier in [name] + [order?.column, ownerColumn].compactMap({ $0 }) where !TenantTransaction.isIdentifier(identifier) {
            throw ConfigurationError("RecordTable: '\(identifier)' is not a plain identifier")
        }
    }
}

/// The order a `RecordTable` lists in: a time column, then `id` to break ties, and how a
/// record gives its cursor.
public struct KeysetOrder<Record>: Sendable {
    let column: String
    let descending: Bool
    let key: @Sendable (Record) -> KeysetCursor

    /// Oldest `column` first (`updated_at`: what changed since a client's last sync comes last).
    public static func ascending(_ column: String, time: @escaping @Sendable (Record) -> Date, id: @escaping @Sendable (Record) -> UUID) -> Self {
        Self(column: column, descending: false, key: { KeysetCursor(time: time($0), id: id($0)) })
    }

    /// Newest `column` first (an activity feed).
    public static func descending(_ column: String, time: @escaping @Sendable (Record) -> Date, id: @escaping @Sendable (Record) -> UUID) -> Self {
        Self(column: column, descending: true, key: { KeysetCursor(time: time($0), id: id($0)) })
    }
}
