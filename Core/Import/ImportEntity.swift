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
    /// The natural key upserts match on (a field, also the target's column); every row
    /// needs it. For a key of several fields, its first (`keys` has them all).
    public let key: String
    /// Every field of the natural key (a price's `symbol` and `date`), also the target's
    /// columns, compared as text.
    public internal(set) var keys: [String]
    /// The target's columns of `keys`, in order (`on_date` for a file's `date`).
    public internal(set) var keyColumns: [String]
    /// Whether the target's rows have owners (`owner_id`): an importer who sees only
    /// their own cannot overwrite another's. False for the tenant's shared data (a
    /// market's prices), which only a permission lets anyone import.
    public internal(set) var owned: Bool
    /// Fields that must name an existing row of another table (a price's `symbol`, an
    /// instrument): a row naming none is rejected by its line before anything lands.
    public internal(set) var references: [ImportReference] = []
    /// The table rows land in, a constant of the module: owner and `insert`-mode
    /// rejections look the key up in it.
    public let table: String
    /// Normalises `values` (aligned with `fields`, nil for absent) in place and returns
    /// why the row is rejected, or nil.
    public let check: @Sendable (inout [String?]) -> String?
    /// The one set-based statement that lands the staged rows and returns a single
    /// `int8`: how many rows it inserted or changed.
    public let land: @Sendable (ImportLanding) -> PostgresQuery
    /// A statement run after the landing, in its transaction, returning one nullable
    /// `text`: why what landed cannot stand (a ledger that now sells more than it held),
    /// or null. A reason fails the import and nothing of it is kept.
    public internal(set) var verify: (@Sendable (ImportLanding) -> PostgresQuery)?

    public init(
        _ name: String, fields: [String], key: String, table: String, check: @escaping @Sendable (inout [String?]) -> String?,
        land: @escaping @Sendable (ImportLanding) -> PostgresQuery
    ) {
        self.name = name
        self.fields = fields
        self.key = key
        self.keys = [key]
        self.keyColumns = [key]
        self.owned = true
        self.table = table
        self.check = check
        self.land = land
    }
}

extension ImportEntity {
    /// An entity whose natural key has several fields (`keys`, every row needs each; the
    /// table's columns for them are `keyColumns` when they are named otherwise) or whose
    /// table has no owners (`owned: false`).
    public init(
        _ name: String, fields: [String], keys: [String], keyColumns: [String]? = nil, table: String, owned: Bool, references: [ImportReference] = [],
        check: @escaping @Sendable (inout [String?]) -> String?, land: @escaping @Sendable (ImportLanding) -> PostgresQuery
    ) {
        self.init(name, fields: fields, key: keys.first ?? "", table: table, check: check, land: land)
        self.keys = keys
        self.keyColumns = keyColumns ?? keys
        self.owned = owned
        self.references = references
    }
}

extension ImportEntity {
    /// This entity, with `statement` run after every landing: the import fails with the
    /// reason it returns (one nullable `text`), and nothing of it is kept.
    public func verified(by statement: @escaping @Sendable (ImportLanding) -> PostgresQuery) -> ImportEntity {
        var entity = self
        entity.verify = statement
        return entity
    }
}

/// The record every row of an import lands in, named by a parameter of the import's
/// mount path (`portfolios/{id}/transactions/imports`: a broker's file of one
/// portfolio's entries). The kernel checks the caller may import into it when the
/// import is created (`authorize` throws, 404 for a record the caller cannot change),
/// stores it on the import, gives it to the landing as `ImportLanding.parentID`,
/// compares natural keys within it only, and lists and reads imports under it only.
public struct ImportParent: Sendable {
    /// The path parameter naming the parent (`id`).
    public let parameter: String
    /// The parent's column in the entities' tables (`portfolio_id`).
    public let column: String
    public let authorize: @Sendable (UUID, TenantTransaction) async throws -> Void

    public init(parameter: String, column: String, authorize: @escaping @Sendable (UUID, TenantTransaction) async throws -> Void) {
        (self.parameter, self.column, self.authorize) = (parameter, column, authorize)
    }
}

/// A field of an imported row that must name a row of `table` (compared as text with
/// `column`), seen through the importer's row-level security.
public struct ImportReference: Sendable {
    public let field: String
    public let table: String
    public let column: String
    /// What a rejected row's reason calls the referenced record ("instrument").
    public let noun: String

    public init(field: String, table: String, column: String, noun: String) {
        (self.field, self.table, self.column, self.noun) = (field, table, column, noun)
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
    /// The record the rows land in (`ImportParent`), nil for an import without one.
    public var parentID: UUID? = nil
}
