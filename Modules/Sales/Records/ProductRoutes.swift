import AtriumCore
import Foundation
import HTTPTypes

/// The catalog: everyone in the tenant reads it; a product's owner or a manager changes it.
struct ProductRoutes {
    func register(_ routes: ModuleRoutes) {
        SalesAccess.recordRoutes.list(routes, "products", summary: "The tenant's product catalog", search: "SKU and name") { request, page, filter in
            try await request.transaction { try await ProductStore.list(page, filter, on: $0) }
        }

        SalesAccess.recordRoutes.register(routes, "products", store: ProductStore.self, summaries: .init(
            create: "Add a product", get: "One product", change: "Change a product you own (any, as a manager); JSON Merge Patch",
            delete: "Remove a product no deal uses (one you own; any, as a manager)"))
    }
}
