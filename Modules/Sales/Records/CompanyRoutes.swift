import AtriumCore
import Foundation
import HTTPTypes

struct CompanyRoutes {
    func register(_ routes: ModuleRoutes) {
        SalesAccess.recordRoutes.list(routes, "companies", summary: "List companies you may see", search: "name and domain") { request, page, filter in
            try await request.transaction { try await CompanyStore.list(page, filter, on: $0) }
        }

        SalesAccess.recordRoutes.register(routes, "companies", store: CompanyStore.self, summaries: .init(
            create: "Create a company", get: "One company",
            change: "Change a company (JSON Merge Patch: null clears a field); owner_id reassigns it (sales.owners.assign)",
            delete: "Delete a company (its contacts and deals stay, without it)"))
    }
}
