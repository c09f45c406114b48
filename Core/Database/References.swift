public import Foundation
import PostgresNIO

/// A row id a request names in another table (a deal's `contact_id`).
public struct Reference: Sendable {
    public var field: String
    public var table: String
    public var id: UUID?

    /// `table` is the module's own constant, never input: it is checked to be a plain
    /// identifier and goes into the SQL text; the id is bound.
    public init(_ field: String, table: String, id: UUID?) {
        self.field = field
        self.table = table
        self.id = id
    }
}

extension TenantTransaction {
    /// 422 naming every field whose id is not a row this transaction may see.
    ///
    /// PostgreSQL checks foreign keys without row-level security, so a reference to a row
    /// the caller may not see (another owner's) would be accepted, and would confirm the
    /// id exists. References are therefore checked first through the caller's own view,
    /// in one statement however many there are.
    public func requireVisible(_ references: Reference...) async throws {
        let named = references.filter { $0.id != nil }
        guard !named.isEmpty else { return }
        var sql = SQLBuilder("SELECT ")
        for (index, reference) in named.enumerated() {
            guard let id = reference.id else { continue }
            guard Self.isIdentifier(reference.table) else {
                throw ConfigurationError("requireVisible: '\(reference.table)' is not a table name")
            }
            sql.append((index == 0 ? "" : ", ") + "EXISTS (SELECT 1 FROM \(reference.table) WHERE id = \(sql.bind(id)))")
        }
        // The SQL text holds checked table names only; every id is a bind parameter.
        guard let row = try await query(sql.query).first?.makeRandomAccess() else { throw AtriumError.internalError() }
        var errors: [AtriumError.FieldError] = []
        for (index, reference) in named.enumerated() where try row[index].decode(Bool.self) == false {
            errors.append(.init(field: reference.field, message: "does not name a record you may see"))
        }
        if !errors.isEmpty { throw AtriumError.validation(errors) }
    }

    static func isIdentifier(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || ("a"..."z").contains(first), name.count <= 63 else { return false }
        return name.unicodeScalars.allSatisfy { $0 == "_" || ("a"..."z").contains($0) || ("0"..."9").contains($0) }
    }
}
