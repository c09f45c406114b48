import AtriumCore
import Foundation
import HTTPTypes

struct ContactRoutes {
    func register(_ routes: ModuleRoutes) {
        SalesAccess.recordRoutes.list(
            routes, "contacts", summary: "List contacts you may see, oldest change first", search: "names and email",
            query: [.init("tag", "Only contacts with this tag."), .init("company", "Only this company's contacts.")]
        ) { request, page, common in
            let filter = ContactStore.Filter(common: common, tag: request.query("tag"), company: try request.uuidQuery("company"))
            return try await request.transaction { try await ContactStore.list(page, filter, on: $0) }
        }

        SalesAccess.recordRoutes.register(routes, "contacts", store: ContactStore.self, summaries: .init(
            create: "Create a contact", get: "One contact",
            change: "Change a contact (JSON Merge Patch: null clears a field); owner_id reassigns it (sales.owners.assign)",
            delete: "Delete a contact and its activities"))

        routes.streaming(.get, "contacts/export", summary: "Every contact you may see, as CSV (streamed)", access: SalesAccess.importing,
                         produces: "text/csv") { request in
            try await ContactExport.response(request)
        }
    }
}
