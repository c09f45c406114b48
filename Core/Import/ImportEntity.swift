public import Foundation
public import PostgresNIO

/// One kind of record a module imports in bulk (contacts, transactions, clients): what
/// the kernel cannot know about it. The kernel reads the file (CSV or NDJSON, streamed),
/// maps columns to `fields`, runs `check` on every row, stages the valid ones with COPY
/// into the temporary table `ImportLanding.stage` (a `line` column, then one text column
/// per field), rejects what cannot land (a key repeated in the file, another owner's
/// record, an existing key in `insert` mode), and runs `land` once.
public struct ImportEntity: Sendable {
    /// The `entity` an import names (`contacts`).
    public let name: String
    /// The fields as they arrive, all text, in staging order.
    public let fields: [String]
    /// The natural key upserts match on (a field, also the target's column); every row needs it.
    public let key: String
    /// The table rows land in, a constant of the module: owner and `insert`-mode
    /// rejections look the key up in it.
    public let table: String
    /// Normalises `values` (aligned with `fields`, nil for absent) in place and returns
    /// why the row is rejected, or nil.
    public let check: @Sendable (inout [String?]) -> String?
    /// The one set-based statement that lands the staged rows and returns a single
    /// `int8`: how many rows it inserted or changed.
    public let land: @Sendable (ImportLanding) -> PostgresQuery

    public init(
        _ name: String, fields: [String], key: String, table: String, check: @escaping @Sendable (inout [String?]) -> String?,
        land: @escaping @Sendable (ImportLanding) -> PostgresQuery
    ) {
        self.name = name
        self.fields = fields
        self.key = key
        self.table = table
        self.check = check
        self.land = land
    }
}

/// What a landing statement is written with.
public struct ImportLanding: Sendable {
    /// The temporary staging table the valid rows are in.
    public static let stage = "atrium_import_stage"
    public let tenantID: UUID
    /// The importer: new rows are theirs.
    public let ownerID: UUID
    /// Whether the importer sees every owner's records (references may resolve to any).
    public let seesAll: Bool
    /// `upsert` mode: update existing rows whose values differ; false (`insert`) leaves them.
    public let upsert: Bool
}
