import Foundation
import Hummingbird
import PostgresNIO
import Logging

/// The tenant part of the request path: resolve the tenant named in the URL, refuse a
/// suspended one, authenticate the caller as a principal *of that tenant*, and refuse
/// a module the tenant has not enabled.
///
/// A principal of another tenant is refused exactly like a bad credential, so a token
/// never reveals whether a tenant exists.
struct TenantMiddleware: RouterMiddleware {
    typealias Context = AtriumRequestContext
    let services: KernelServices
    /// Authenticate the caller (false for a module's public routes).
    let authenticate: Bool
    /// The module whose routes this guards, if any.
    let moduleID: String?
    /// Apply the catalog's per-IP limits of the sign-in routes.
    var limitsSignIn = false

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        guard let slug = context.parameters.get("tenant") else { throw AtriumError.notFound() }
        let logger = context.logger
        let tenantStore = services.tenants
        let found = try await services.database.client.withConnection { connection in
            try await tenantStore.find(slug: slug, on: connection)
        }
        guard let tenant = found else {
            throw AtriumError.notFound("No tenant named '\(slug)'.")
        }
        context.tenant = tenant
        context.logger[metadataKey: "tenant.id"] = .string(tenant.id.uuidString.lowercased())
        if tenant.status == .suspended {
            throw AtriumError.forbidden(code: "tenant_suspended", "Tenant '\(slug)' is suspended.")
        }
        if authenticate {
            guard let principal = try await services.authenticator.authenticate(request, tenant: tenant, logger: logger),
                principal.tenantID == tenant.id
            else {
                throw AtriumError.unauthenticated()
            }
            context.principal = principal
            context.logger[metadataKey: "principal.id"] = .string(principal.id.uuidString.lowercased())
        }
        var limits: RateLimitDecision?
        if authenticate, let plan = services.plans?.plan(tenant.plan), let principal = context.principal {
            let rules = plan.rateLimits.map { RateLimitRule(key: "tenant:\(tenant.id)", policy: $0) }
                + plan.principalRateLimits.map { RateLimitRule(key: "principal:\(principal.id)", policy: $0) }
            if !rules.isEmpty {
                let decision = try await services.limiter.check(rules, now: nil)
                guard decision.allowed else { throw Self.rateLimited(decision) }
                limits = decision
            }
        }
        if limitsSignIn, let policies = services.plans?.authRateLimits.perIP, !policies.isEmpty {
            let ip = services.trustedProxies.clientIP(peer: context.peerIP, forwardedFor: request.headers[.xForwardedFor]) ?? "unknown"
            let decision = try await services.limiter.check(key: "auth-ip:\(ip)", policies: policies)
            guard decision.allowed else { throw Self.rateLimited(decision) }
            limits = decision
        }
        if moduleID != nil || authenticate {
            try await admit(tenant: tenant, metered: authenticate, logger: logger)
        }
        var response = try await next(request, context)
        if let limits {
            response.headers[.rateLimitPolicy] = limits.policyHeader
            response.headers[.rateLimit] = limits.stateHeader
        }
        return response
    }

    /// One tenant transaction for the per-request checks: the module is enabled, and an
    /// authenticated call is metered as `kernel.api_calls`, consuming the plan's monthly
    /// quota atomically (see `Metering.record(quota:)`).
    private func admit(tenant: Tenant, metered: Bool, logger: Logger) async throws {
        let enablement = services.enablement
        let quota = services.plans?.plan(tenant.plan)?.quotas["api_calls_per_month"]
        let moduleID = self.moduleID
        let metering = services.metering
        let enabled = try await services.database.withTenantTransaction(tenant.id, logger: logger) { connection -> Bool in
            if let moduleID, try await !enablement.isEnabled(moduleID, on: connection) { return false }
            guard metered else { return true }
            try await metering.record(
                "kernel.api_calls", quantity: 1, idempotencyKey: "api:\(UUID().uuidString.lowercased())", at: Date(), properties: [:], tenantID: tenant.id,
                quota: quota, on: connection)
            return true
        }
        guard enabled else {
            throw AtriumError.forbidden(code: "module_disabled", "The '\(moduleID ?? "")' module is not enabled for this tenant.")
        }
    }

    /// 429 naming the violated policies, with `Retry-After` and the IETF fields.
    static func rateLimited(_ decision: RateLimitDecision) -> AtriumError {
        var error = AtriumError(
            status: .tooManyRequests, code: "rate_limited", title: "Rate limited",
            detail: "The rate limit \(decision.violated.joined(separator: ", ")) is used up; retry after \(decision.retryAfter ?? 1) s.")
        error.headers[.retryAfter] = String(decision.retryAfter ?? 1)
        error.headers[.rateLimitPolicy] = decision.policyHeader
        error.headers[.rateLimit] = decision.stateHeader
        error.extensions = ["violated_policies": .array(decision.violated.map(JSONValue.string))]
        return error
    }
}
