import Foundation
import HTTPTypes

/// Kernel routes under `/v1/tenants/{tenant}`: what a principal may learn about its own tenant.
struct TenantRoutes {
    let registry: ModuleRegistry
    let plans: PlanCatalog?

    struct TenantView: Codable, Sendable {
        var id: UUID
        var slug: String
        var name: String
        var status: String
        var plan: String
        var createdAt: Date
    }

    struct ModuleView: Codable, Sendable {
        var id: String
        var version: String
        var enabled: Bool
        /// Whether the tenant's plan includes the module (so an admin may enable it).
        var inPlan: Bool
    }

    struct ModuleList: Codable, Sendable {
        var data: [ModuleView]
    }

    func register(_ routes: ModuleRoutes) {
        routes.on(.get, "", summary: "The caller's tenant", permission: nil, response: TenantView.self) { request in
            TenantView(id: request.tenant.id, slug: request.tenant.slug, name: request.tenant.name, status: request.tenant.status.rawValue,
                       plan: request.tenant.plan, createdAt: request.tenant.createdAt)
        }
        let installed = registry.modules.map { (id: $0.id, version: $0.version) }
        let enablement = routes.services.enablement
        let registry = self.registry
        let plans = self.plans
        routes.on(.get, "modules", summary: "Installed modules: whether this tenant has each enabled, and whether its plan includes it",
                  permission: nil, response: ModuleList.self) { request in
            let enabled = try await request.transaction { transaction in
                try await enablement.enabledModules(on: transaction.connection)
            }
            let plan = request.tenant.plan
            return ModuleList(data: installed.map {
                ModuleView(id: $0.id, version: $0.version, enabled: enabled.contains($0.id), inPlan: plans?.allows($0.id, on: plan) ?? true)
            })
        }

        routes.on(.put, "modules/{module}", summary: "Enable a module the tenant's plan includes", permission: "kernel.modules.manage",
                  response: ModuleView.self) { request in
            let id = try request.parameter("module")
            guard let module = registry.module(id) else { throw AtriumError.notFound("No installed module named '\(id)'.") }
            if let plans, !plans.allows(id, on: request.tenant.plan) {
                throw AtriumError.forbidden(
                    code: "plan_upgrade_required", "The '\(request.tenant.plan)' plan does not include the '\(id)' module; upgrade the plan to enable it.")
            }
            let principal = try request.requirePrincipal()
            try await request.transaction { transaction in
                let current = try await enablement.enabledModules(on: transaction.connection)
                if let missing = module.dependencies.first(where: { !current.contains($0) }) {
                    throw AtriumError.conflict(code: "module_dependency_disabled", "Enable '\(missing)' first; '\(id)' depends on it.")
                }
                if try await enablement.enable(id, tenantID: transaction.tenantID, on: transaction.connection) {
                    try await AdminRoutes.audit("module.enabled", request, principal, subject: id, transaction)
                }
            }
            return ModuleView(id: id, version: module.version, enabled: true, inPlan: true)
        }

        routes.on(.delete, "modules/{module}", summary: "Disable a module (its data is kept)", permission: "kernel.modules.manage",
                  response: ModuleView.self) { request in
            let id = try request.parameter("module")
            guard let module = registry.module(id) else { throw AtriumError.notFound("No installed module named '\(id)'.") }
            let principal = try request.requirePrincipal()
            try await request.transaction { transaction in
                let current = try await enablement.enabledModules(on: transaction.connection)
                if let dependent = registry.modules.first(where: { $0.dependencies.contains(id) && current.contains($0.id) }) {
                    throw AtriumError.conflict(code: "module_required", "'\(dependent.id)' depends on '\(id)'; disable it first.")
                }
                if try await enablement.disable(id, on: transaction.connection) {
                    try await AdminRoutes.audit("module.disabled", request, principal, subject: id, transaction)
                }
            }
            return ModuleView(id: id, version: module.version, enabled: false, inPlan: plans?.allows(id, on: request.tenant.plan) ?? true)
        }
    }
}
