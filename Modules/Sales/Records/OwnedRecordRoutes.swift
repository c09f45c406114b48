import AtriumCore
import Foundation
import HTTPTypes

/// A request body that creates a record (POST) or changes one (PATCH, a JSON Merge
/// Patch): the same fields, checked the same way, whichever door they come through.
protocol RecordFields: Codable, Sendable {
    /// Normalised and checked fields; `creating` requires what a new record needs.
    func validated(creating: Bool) throws -> Self
    /// Another owner to give the record to (`sales.owners.assign`).
    var ownerId: Patch<UUID> { get }
}

/// The SQL of an owned sales record that the standard routes call.
protocol OwnedRecordStore {
    associatedtype Record: Codable & Sendable
    associatedtype Fields: RecordFields
    static var table: RecordTable<Record> { get }
    static func insert(_ fields: Fields, owner: UUID, on transaction: TenantTransaction) async throws -> Record
    static func update(_ id: UUID, _ fields: Fields, owner: UUID?, on transaction: TenantTransaction) async throws -> Record
}

/// The routes every owned sales record shares, written once: `POST path` (checked input,
/// owner settled, Idempotency-Key by the kernel's `create`), `GET`, `PATCH` and `DELETE
/// path/{id}` (another owner's id answered like a missing one).
enum OwnedRecordRoutes {
    /// What each route does, for OpenAPI.
    struct Summaries {
        var create: String
        var get: String
        var change: String
        var delete: String
    }

    static func register<Store: OwnedRecordStore>(_ routes: ModuleRoutes, _ path: String, store: Store.Type, summaries: Summaries) {
        routes.create(path, summary: summaries.create, access: SalesAccess.records, body: Store.Fields.self, response: Store.Record.self) { request, input in
            let fields = try input.validated(creating: true)
            let owner = try request.requireOwnership().owner(for: fields.ownerId.value, assignPermission: SalesPermission.assign)
            return try await request.transaction { try await Store.insert(fields, owner: owner, on: $0) }
        }

        get(routes, "\(path)/{id}", summary: summaries.get, table: Store.table)

        routes.on(.patch, "\(path)/{id}", summary: summaries.change, access: SalesAccess.records, body: Store.Fields.self,
                  response: Store.Record.self) { request, input in
            let id = try request.uuidParameter("id")
            let fields = try input.validated(creating: false)
            // (Not `Optional.map` with a throwing closure: in a release build that crashes
            // the Swift 6.3 compiler's coroutine splitting in this generic async closure.)
            var owner: UUID?
            if let requested = fields.ownerId.value {
                owner = try request.requireOwnership().owner(for: requested, assignPermission: SalesPermission.assign)
            }
            return try await request.transaction { [owner] in try await Store.update(id, fields, owner: owner, on: $0) }
        }

        delete(routes, "\(path)/{id}", summary: summaries.delete, table: Store.table)
    }

    /// `GET path`: a page of the records the caller may see, narrowed by the common
    /// filters (`owner`, `updated_since`, `q` searching `search`) and the list's own
    /// `query` parameters, which `list` reads.
    static func list<Record: Codable & Sendable>(
        _ routes: ModuleRoutes, _ path: String, summary: String, search: String, query extra: [QueryParameter] = [],
        _ list: @escaping @Sendable (TenantRequest, PageRequest, ListFilter) async throws -> Page<Record>
    ) {
        routes.on(.get, path, summary: summary, access: SalesAccess.records, query: QueryParameter.pagination + ListFilter.parameters(search: search) + extra,
                  response: Page<Record>.self) { request in
            try await list(request, try request.pageRequest(), try ListFilter(request))
        }
    }

    /// `GET path`: the record, 404 for one the caller may not see.
    static func get<Record: Codable & Sendable>(_ routes: ModuleRoutes, _ path: String, summary: String, table: RecordTable<Record>) {
        routes.on(.get, path, summary: summary, access: SalesAccess.records, response: Record.self) { request in
            let id = try request.uuidParameter("id")
            return try await request.transaction { transaction in try await transaction.lastStatement { try await table.find(id, on: transaction) } }
        }
    }

    /// `DELETE path`: 404 for a record the caller may not see (or change).
    static func delete<Record>(_ routes: ModuleRoutes, _ path: String, summary: String, table: RecordTable<Record>, onlyIf condition: String = "true") {
        routes.on(.delete, path, summary: summary, access: SalesAccess.records, response: NoContent.self, status: .noContent) { request in
            let id = try request.uuidParameter("id")
            try await request.transaction { transaction in try await transaction.lastStatement { try await table.delete(id, on: transaction, onlyIf: condition) } }
            return NoContent()
        }
    }
}
