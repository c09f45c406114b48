import AtriumCore
import Foundation
import HTTPTypes

/// The catalog: everyone in the tenant reads it; a product's owner or a manager changes it.
struct ProductRoutes {
    func register(_ routes: ModuleRoutes) {
        routes.on(.get, "products", summary: "The tenant's product catalog", access: SalesAccess.records,
                  query: QueryParameter.pagination + ListFilter.parameters(search: "SKU and name"), response: Page<Product>.self) { request in
            let (page, filter) = (try request.pageRequest(), try ListFilter(request))
            return try await request.transaction { try await ProductStore.list(page, filter, on: $0) }
        }

        OwnedRecordRoutes.register(routes, "products", store: ProductStore.self, summaries: .init(
            create: "Add a product", get: "One product", change: "Change a product you own (any, as a manager); JSON Merge Patch",
            delete: "Remove a product no deal uses (one you own; any, as a manager)"))
    }
}
