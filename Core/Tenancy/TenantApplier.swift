import Foundation
public import Logging
public import PostgresNIO

/// Makes the database match the tenant files: creates missing tenants, updates changed
/// ones and sets each tenant's enabled modules to exactly the listed ones. Applying the
/// same files twice changes nothing; tenants without a file are left alone.
public struct TenantApplier: Sendable {
    public struct Change: Sendable, Codable, Equatable, CustomStringConvertible {
        public var slug: String
        public var action: String
        public var detail: String
        public var description: String { "\(slug): \(action)\(detail.isEmpty ? "" : " (\(detail))")" }
    }

    /// A declared user this run created, so `serve` can show how to log in.
    public struct CreatedLogin: Sendable, Codable, Equatable {
        public var tenant: String
        public var email: String
        public var password: String
        public var roles: [String]
    }

    let registry: ModuleRegistry
    let hasher: PasswordHasher
    /// When given, every file's plan must be in it and include the file's modules.
    let plans: PlanCatalog?
    let logger: Logger

    public init(registry: ModuleRegistry, hasher: PasswordHasher = PasswordHasher(), plans: PlanCatalog? = nil, logger: Logger) {
        self.registry = registry
        self.hasher = hasher
        self.plans = plans
        self.logger = logger
    }

    /// Applies `files` on an owner connection, in one transaction: all files or none.
    public func apply(_ files: [TenantFile], on connection: PostgresConnection) async throws -> [Change] {
        try await applyReportingLogins(files, on: connection).changes
    }

    /// Applies `files` and also returns the declared users it created.
    public func applyReportingLogins(_ files: [TenantFile], on connection: PostgresConnection) async throws -> (changes: [Change], logins: [CreatedLogin]) {
        let catalog = PermissionCatalog(registry: registry)
        var hashes: [String: String] = [:]
        for file in files {
            for module in file.modules ?? [] where registry.module(module) == nil {
                throw ConfigurationError("\(file.path): module '\(module)' is not installed")
            }
            if let plans {
                let planID = file.plan ?? "free"
                guard plans.plan(planID) != nil else { throw ConfigurationError("\(file.path): plan '\(planID)' is not in the plan catalog") }
                if let module = file.modules?.first(where: { !plans.allows($0, on: planID) }) {
                    throw ConfigurationError("\(file.path): the '\(planID)' plan does not include the '\(module)' module")
                }
            }
            for user in file.users ?? [] {
                for role in user.roles ?? [] where !catalog.isRole(role) {
                    throw ConfigurationError("\(file.path): user \(user.email) has unknown role '\(role)'")
                }
                do {
                    try PasswordPolicy.validate(email: user.email)
                    try PasswordPolicy.validate(user.password, email: user.email)
                } catch {
                    throw ConfigurationError("\(file.path): user \(user.email): \(error.detail ?? error.title)")
                }
                // Hashing happens before the transaction opens, so it holds no locks while hashing.
                hashes["\(file.slug)/\(user.email.lowercased())"] = try await hasher.hash(user.password)
            }
        }
        let users = UserStore(logger: logger)
        let audit = AuditLog(logger: logger)
        let store = TenantStore(logger: logger)
        let enablement = ModuleEnablement(logger: logger)
        return try await connection.withUnwrappedTransaction(logger: logger) { connection in
            var changes: [Change] = []
            var logins: [CreatedLogin] = []
            for file in files {
                let plan = file.plan ?? "free"
                var details: [String] = []
                let tenant: Tenant
                var created = false
                if let existing = try await store.find(slug: file.slug, on: connection) {
                    if existing.name != file.name { details.append("name") }
                    if existing.plan != plan { details.append("plan \(existing.plan) -> \(plan)") }
                    if details.isEmpty {
                        tenant = existing
                    } else {
                        tenant = try await store.update(slug: file.slug, name: file.name, plan: plan, on: connection) ?? existing
                    }
                } else {
                    tenant = try await store.create(slug: file.slug, name: file.name, plan: plan, on: connection)
                    created = true
                }
                let settings = String(decoding: try JSONEncoder().encode(file.settings ?? [:]), as: UTF8.self)
                let settingsChanged = try await connection.query(
                    "UPDATE tenants SET settings = \(settings)::jsonb, updated_at = now() WHERE id = \(tenant.id) AND settings <> \(settings)::jsonb RETURNING 1",
                    logger: logger
                ).collect().isEmpty == false
                if settingsChanged { details.append("settings") }
                try await connection.scopeTransaction(toTenant: tenant.id, logger: logger)
                let wanted = Set(file.modules ?? [])
                let current = try await enablement.enabledModules(on: connection)
                for module in wanted.subtracting(current).sorted() {
                    try await enablement.enable(module, tenantID: tenant.id, on: connection)
                    details.append("enabled \(module)")
                }
                for module in current.subtracting(wanted).sorted() {
                    try await enablement.disable(module, on: connection)
                    details.append("disabled \(module)")
                }
                for declared in file.users ?? [] where try await users.find(email: declared.email, on: connection) == nil {
                    let roles = declared.roles ?? ["member"]
                    let user = try await users.create(
                        tenantID: tenant.id, email: declared.email, passwordHash: hashes["\(file.slug)/\(declared.email.lowercased())"], roles: roles,
                        verified: true, on: connection)
                    try await audit.record(
                        "user.created", tenantID: tenant.id, actor: .init(type: .operator, id: "tenant-file"), subject: user.id.uuidString.lowercased(),
                        details: ["email": .string(declared.email), "roles": .array(roles.map(JSONValue.string))], on: connection)
                    details.append("user \(declared.email)")
                    logins.append(CreatedLogin(tenant: file.slug, email: declared.email, password: declared.password, roles: roles))
                }
                if created || !details.isEmpty {
                    changes.append(Change(slug: file.slug, action: created ? "created" : "updated", detail: details.joined(separator: ", ")))
                }
            }
            return (changes, logins)
        }
    }
}
