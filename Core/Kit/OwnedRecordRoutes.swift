public import Foundation
import HTTPTypes

/// A request body that creates a record (POST) or changes one (PATCH, a JSON Merge
/// Patch): the same fields, checked the same way, whichever door they come through.
public protocol RecordFields: Codable, Sendable {
    /// Normalised and checked fields; `creating` requires what a new record needs.
    func validated(creating: Bool) throws -> Self
    /// Another owner to give the record to (the routes' `assignPermission`).
    var ownerId: Patch<UUID> { get }
}

/// The SQL of an owned record that `OwnedRecordRoutes` calls: a module writes its insert
/// and update, the kernel writes the routes around them.
public protocol OwnedRecordStore {
    associatedtype Record: Codable & Sendable
    associatedtype Fields: RecordFields
    static var table: RecordTable<Record> { get }
    static func insert(_ fields: Fields, owner: UUID, on transaction: TenantTransaction) async throws -> Record
    static func update(_ id: UUID, _ fields: Fields, owner: UUID?, on transaction: TenantTransaction) async throws -> Record
}

/// The routes every owned record shares, written once for every module: `POST path`
/// (checked input, owner settled, Idempotency-Key by the kernel's `create`), `GET`,
/// `PATCH` and `DELETE path/{id}` (another owner's id answered like a missing one), and
/// `GET path` pages narrowed by the common filters (`ListFilter`).
///
/// A module makes one for its owned records, naming the access its routes declare and
/// the permission that lets a caller give a record to another owner:
///
/// ```swift
/// let records = OwnedRecordRoutes(access: .owned("notes.records"), assignPermission: "notes.owners.assign")
/// records.register(routes, "notes", store: NoteStore.self, summaries: .init(create: "Create a note", …))
/// ```
public struct OwnedRecordRoutes: Sendable {
    /// What each route does, for OpenAPI.
    public struct Summaries: Sendable {
        public var create: String
        public var get: String
        public var change: String
        public var delete: String

        public init(create: String, get: String, change: String, delete: String) {
            self.create = create
            self.get = get
            self.change = change
            self.delete = delete
        }
    }

    /// The access every route declares (an `.owned(...)` access).
    public let access: RouteAccess
    /// The permission that lets a caller name another owner (`owner_id`) on create or change.
    public let assignPermission: String

    public init(access: RouteAccess, assignPermission: String) {
        self.access = access
        self.assignPermission = assignPermission
    }

    /// `POST path`, `GET`, `PATCH` and `DELETE path/{id}` of `store`'s records.
    public func register<Store: OwnedRecordStore>(_ routes: ModuleRoutes, _ path: String, store: Store.Type, summaries: Summaries) {
        let assignPermission = assignPermission
        routes.create(path, summary: summaries.create, access: access, body: Store.Fields.self, response: Store.Record.self) { request, input in
            let fields = try input.validated(creating: true)
            let owner = try request.requireOwnership().owner(for: fields.ownerId.value, assignPermission: assignPermission)
            return try await request.transaction { try await Store.insert(fields, owner: owner, on: $0) }
        }

        get(routes, "\(path)/{id}", summary: summaries.get, table: Store.table)

        routes.on(.patch, "\(path)/{id}", summary: summaries.change, access: access, body: Store.Fields.self, response: Store.Record.self) {
            request, input in
            let id = try request.uuidParameter("id")
            let fields = try input.validated(creating: false)
            // (Not `Optional.map` with a throwing closure: in a release build that crashes
            // the Swift 6.3 compiler's coroutine splitting in this generic async closure.)
            var owner: UUID?
            if let requested = fields.ownerId.value {
                owner = try request.requireOwnership().owner(for: requested, assignPermission: assignPermission)
            }
            return try await request.transaction { [owner] in try await Store.update(id, fields, owner: owner, on: $0) }
        }

        delete(routes, "\(path)/{id}", summary: summaries.delete, table: Store.table)
    }

    /// `GET path`: a page of the records the caller may see, narrowed by the common
    /// filters (`owner`, `updated_since`, `q` searching `search`) and the list's own
    /// `query` parameters, which `list` reads.
    public func list<Record: Codable & Sendable>(
        _ routes: ModuleRoutes, _ path: String, summary: String, search: String, query extra: [QueryParameter] = [],
        _ list: @escaping @Sendable (TenantRequest, PageRequest, ListFilter) async throws -> Page<Record>
    ) {
        routes.on(
            .get, path, summary: summary, access: access, query: QueryParameter.pagination + ListFilter.parameters(search: search) + extra,
            response: Page<Record>.self
        ) { request in
            try await list(request, try request.pageRequest(), try ListFilter(request))
        }
    }

    /// `GET path`: the record, 404 for one the caller may not see.
    public func get<Record: Codable & Sendable>(_ routes: ModuleRoutes, _ path: String, summary: String, table: RecordTable<Record>) {
        routes.on(.get, path, summary: summary, access: access, response: Record.self) { request in
            let id = try request.uuidParameter("id")
            return try await request.transaction { transaction in try await transaction.lastStatement { try await table.find(id, on: transaction) } }
        }
    }

    /// `DELETE path`: 404 for a record the caller may not see (or change); `condition` is
    /// constant SQL a record must also meet to be deleted.
    public func delete<Record>(_ routes: ModuleRoutes, _ path: String, summary: String, table: RecordTable<Record>, onlyIf condition: String = "true") {
        routes.on(.delete, path, summary: summary, access: access, response: NoContent.self, status: .noContent) { request in
            let id = try request.uuidParameter("id")
            try await request.transaction { transaction in
                try await transaction.lastStatement { try await table.delete(id, on: transaction, onlyIf: condition) }
            }
            return NoContent()
        }
    }
}

/// The filters every list of owned records shares: `owner`, `updated_since` and `q`
/// (paging is `PageRequest`).
public struct ListFilter: Sendable {
    public var owner: UUID?
    public var updatedSince: Date?
    public var search: String?

    /// `%q%` for ILIKE, with the wildcard characters of `q` escaped.
    public var pattern: String? {
        search.map {
            "%" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
                + "%"
        }
    }

    public init(_ request: TenantRequest) throws {
        owner = try request.uuidQuery("owner")
        updatedSince = try request.timeQuery("updated_since")
        search = request.query("q").flatMap { $0.isEmpty ? nil : String($0.prefix(100)) }
    }

    /// The filter as SQL conditions on a table with `owner_id` and `updated_at`: `extra`
    /// (the list's own conditions, with their bound values) and, for each parameter the
    /// request gave, its condition with the value bound. `searching` are constant SQL
    /// expressions `q` is matched in (ILIKE).
    public func conditions(searching columns: [String], and extra: SQL = "true") -> SQL {
        var sql = SQLBuilder("(", extra, ")")
        if let owner { sql.append(" AND owner_id = \(sql.bind(owner))") }
        if let updatedSince { sql.append(" AND updated_at >= \(sql.bind(updatedSince))") }
        if let pattern {
            let placeholder = sql.bind(pattern)
            sql.append(" AND (" + columns.map { "\($0) ILIKE \(placeholder)" }.joined(separator: " OR ") + ")")
        }
        return sql.query
    }

    /// The three parameters for OpenAPI; `search` says what `q` searches in.
    public static func parameters(search: String) -> [QueryParameter] {
        [
            .init("owner", "Only this owner's records (a user id)."), .init("updated_since", "Only records changed at or after this RFC 3339 time."),
            .init("q", "Search in \(search) (case-insensitive)."),
        ]
    }
}
