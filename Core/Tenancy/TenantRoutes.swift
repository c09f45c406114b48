import Foundation
import HTTPTypes

/// Kernel routes under `/v1/tenants/{tenant}`: what a principal may learn about its own tenant.
struct TenantRoutes {
    let registry: ModuleRegistry

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
        routes.on(.get, "modules", summary: "Installed modules and whether this tenant has them enabled", permission: nil, response: ModuleList.self) {
            request in
            let enabled = try await request.transaction { transaction in
                try await enablement.enabledModules(on: transaction.connection)
            }
            return ModuleList(data: installed.map { ModuleView(id: $0.id, version: $0.version, enabled: enabled.contains($0.id)) })
        }
    }
}
