import Foundation
public import Logging
public import PostgresNIO

/// Moves a tenant to another plan at once: modules the new plan lacks are disabled
/// (their data is kept, ready for an upgrade back), the modules it keeps are told
/// (`AtriumModule.planChanged`, in the same transaction), and the change is audited.
public struct PlanChange: Sendable {
    public struct Outcome: Sendable, Codable, Equatable {
        public var tenant: String
        public var from: String
        public var to: String
        public var disabledModules: [String]
    }

    let catalog: PlanCatalog
    let modules: [any AtriumModule]
    let logger: Logger

    /// `modules` are the installed ones, told of the change when the tenant keeps them.
    public init(catalog: PlanCatalog, modules: [any AtriumModule] = [], logger: Logger) {
        self.catalog = catalog
        self.modules = modules
        self.logger = logger
    }

    /// Runs on an owner connection, in one transaction. The database records when the
    /// plan changed (`plan_periods`), which is what this month's invoice prorates. A
    /// canceled subscription becomes active again; `trialDays` starts a trial.
    public func change(
        slug: String, to planID: String, trialDays: Int? = nil, actor: AuditLog.Actor, on connection: PostgresConnection
    ) async throws -> Outcome {
        guard let plan = catalog.plan(planID) else {
            throw AtriumError.validation(field: "plan", "'\(planID)' is not in the plan catalog (\(catalog.plans.keys.sorted().joined(separator: ", ")))")
        }
        return try await connection.withUnwrappedTransaction(logger: logger) { connection in
            let store = TenantStore(logger: logger)
            guard let before = try await store.find(slug: slug, on: connection) else { throw AtriumError.notFound("No tenant named '\(slug)'.") }
            _ = try await store.update(slug: slug, plan: planID, on: connection)
            try await connection.scopeTransaction(toTenant: before.id, logger: logger)
            let enablement = ModuleEnablement(logger: logger)
            let dropped = try await enablement.enabledModules(on: connection).subtracting(plan.modules).sorted()
            for module in dropped { try await enablement.disable(module, on: connection) }
            let kept = try await enablement.enabledModules(on: connection)
            let told = modules.filter { kept.contains($0.id) }
            if !told.isEmpty {
                try await connection.scopeToAllOwners(logger: logger)
                let transaction = TenantTransaction(
                    connection: connection, tenantID: before.id, principalID: nil, logger: logger, jobs: JobQueue(logger: logger),
                    metering: Metering(registry: try ModuleRegistry(modules), logger: logger), channels: [])
                for module in told { try await module.planChanged(to: planID, on: transaction) }
            }
            let subscriptions = Subscriptions(logger: logger)
            if let trialDays {
                try await subscriptions.startTrial(days: trialDays, on: connection)
            } else if try await subscriptions.find(on: connection)?.status == .canceled {
                try await subscriptions.activate(on: connection)
            }
            try await AuditLog(logger: logger).record(
                "plan.changed", tenantID: before.id, actor: actor,
                details: ["from": .string(before.plan), "to": .string(planID), "disabled_modules": .array(dropped.map(JSONValue.string))],
                on: connection)
            return Outcome(tenant: slug, from: before.plan, to: planID, disabledModules: dropped)
        }
    }
}
