import AtriumCore
import Foundation
import HTTPTypes

struct DealRoutes {
    func register(_ routes: ModuleRoutes) {
        SalesAccess.recordRoutes.list(
            routes, "deals", summary: "List deals you may see", search: "titles",
            query: [.init("stage", "Only deals in this stage."), .init("status", "open, won or lost.")]
        ) { request, page, filter in
            let (stage, status) = (request.query("stage"), request.query("status"))
            return try await request.transaction { try await DealStore.list(page, filter, stage: stage, status: status, on: $0) }
        }

        routes.on(.get, "pipeline", summary: "Deals per stage with counts and totals per currency", access: SalesAccess.records,
                  query: [.init("status", "open (default), won or lost.")], response: Pipeline.self) { request in
            let status = request.query("status") ?? "open"
            guard ["open", "won", "lost"].contains(status) else { throw AtriumError.validation(field: "status", "must be open, won or lost") }
            return try await request.transaction { try await DealStore.pipeline(status: status, on: $0) }
        }

        SalesAccess.recordRoutes.register(routes, "deals", store: DealStore.self, summaries: .init(
            create: "Create a deal", get: "One deal",
            change: "Change a deal (JSON Merge Patch: null clears a field); a new stage records a stage_change activity",
            delete: "Delete a deal with its items and activities"))
        Self.registerItems(routes)
    }

    static func registerItems(_ routes: ModuleRoutes) {
        routes.on(.get, "deals/{id}/items", summary: "A deal's line items", access: SalesAccess.records, response: Page<DealItem>.self) { request in
            let id = try request.uuidParameter("id")
            return Page(data: try await request.transaction { try await DealStore.items(of: id, on: $0) })
        }

        routes.on(.post, "deals/{id}/items", summary: "Add a product to a deal", access: SalesAccess.records, body: DealItemInput.self,
                  response: DealItem.self, status: .created) { request, input in
            let id = try request.uuidParameter("id")
            let item = try input.validated()
            return try await request.transaction { try await DealStore.addItem(item, to: id, on: $0) }
        }

        routes.on(.patch, "deals/{id}/items/{item}", summary: "Change a line item's quantity or price (JSON Merge Patch)", access: SalesAccess.records,
                  body: DealItemPatch.self, response: DealItem.self) { request, input in
            let (id, item) = (try request.uuidParameter("id"), try request.uuidParameter("item"))
            let patch = try input.validated()
            return try await request.transaction { try await DealStore.updateItem(item, of: id, patch, on: $0) }
        }

        routes.on(.delete, "deals/{id}/items/{item}", summary: "Remove a line item from a deal", access: SalesAccess.records, response: NoContent.self,
                  status: .noContent) { request in
            let (id, item) = (try request.uuidParameter("id"), try request.uuidParameter("item"))
            try await request.transaction { try await DealStore.removeItem(item, of: id, on: $0) }
            return NoContent()
        }
    }
}
