import AtriumCore
import Foundation
import HTTPTypes

struct ActivityRoutes {
    func register(_ routes: ModuleRoutes) {
        routes.on(.get, "activities", summary: "Activities you may see on a contact or deal, newest first", access: SalesAccess.records,
                  query: QueryParameter.pagination + [.init("contact", "The contact's id."), .init("deal", "The deal's id.")],
                  response: Page<Activity>.self) { request in
            let (contact, deal) = (try request.uuidQuery("contact"), try request.uuidQuery("deal"))
            guard contact != nil || deal != nil else { throw AtriumError.validation(field: "contact", "name a contact or a deal") }
            let page = try request.pageRequest()
            return try await request.transaction { try await ActivityStore.list(page, contact: contact, deal: deal, on: $0) }
        }

        routes.create("activities", summary: "Log a call, email, meeting or note", access: SalesAccess.records,
                      body: ActivityInput.self, response: Activity.self) { request, input in
            let owner = try request.requireOwnership().userID
            let activity = try input.validated()
            return try await request.transaction { transaction in
                try await transaction.requireVisible(
                    Reference("contact_id", table: "sales_contacts", id: activity.contactId), Reference("deal_id", table: "sales_deals", id: activity.dealId))
                return try await ActivityStore.insert(activity, owner: owner, on: transaction)
            }
        }

        SalesAccess.recordRoutes.get(routes, "activities/{id}", summary: "One activity", table: ActivityStore.table)

        routes.on(.patch, "activities/{id}", summary: "Correct an activity you logged (JSON Merge Patch: null clears the body)", access: SalesAccess.records,
                  body: ActivityPatch.self, response: Activity.self) { request, input in
            let id = try request.uuidParameter("id")
            let patch = try input.validated()
            return try await request.transaction { try await ActivityStore.update(id, patch, on: $0) }
        }

        SalesAccess.recordRoutes.delete(
            routes, "activities/{id}", summary: "Delete an activity you logged", table: ActivityStore.table, onlyIf: ActivityStore.loggedByHand)
    }
}
