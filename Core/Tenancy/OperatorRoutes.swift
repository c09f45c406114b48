import Crypto
import Foundation
import Hummingbird
import Logging
import PostgresNIO

/// Who may call the operator API: the holder of `ATRIUM_OPERATOR_TOKEN`, and the owner
/// connection its changes need (the application role cannot change tenants).
public struct OperatorAccess: Sendable {
    let tokenDigest: SHA256Digest
    let ownerURL: DatabaseURL

    /// `token` must be at least 32 characters (`openssl rand -base64 32`).
    public init(token: String, ownerURL: DatabaseURL) throws(ConfigurationError) {
        guard token.count >= 32 else { throw ConfigurationError("ATRIUM_OPERATOR_TOKEN must be at least 32 characters") }
        self.tokenDigest = SHA256.hash(data: Data(token.utf8))
        self.ownerURL = ownerURL
    }

    /// Compares digests, so the comparison takes the same time wherever a guess differs.
    func admits(_ authorization: String?) -> Bool {
        guard let authorization, authorization.hasPrefix("Bearer ") else { return false }
        let presented = SHA256.hash(data: Data(authorization.dropFirst("Bearer ".count).utf8))
        return zip(presented, tokenDigest).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// `/v1/operator/…`: what the platform's operator does over HTTP rather than the CLI —
/// list tenants with their subscriptions, move a tenant to another plan, cancel.
/// Mounted only when `ATRIUM_OPERATOR_TOKEN` is set.
struct OperatorRoutes {
    struct TenantSummary: Codable, Sendable {
        var slug: String
        var name: String
        var status: String
        var plan: String
        var subscriptionStatus: String?
    }

    struct TenantList: Codable, Sendable {
        var data: [TenantSummary]
    }

    struct PlanInput: Codable, Sendable {
        var plan: String
        var trialDays: Int?
    }

    let access: OperatorAccess
    let plans: PlanCatalog?
    /// The installed modules, told when a tenant's plan changes.
    let modules: [any AtriumModule]
    let collector: OperationCollector

    func register(on router: Router<AtriumRequestContext>) {
        let (access, plans, modules) = (access, plans, modules)
        let group = router.group("v1/operator")
        document(.get, "/v1/operator/tenants", "Every tenant with its plan and subscription status", body: nil, response: TenantList.self)
        group.get("tenants") { request, context -> Response in
            try Self.authorize(request, access)
            let tenants = try await Self.withOwner(access, context) { connection in
                let rows = try await connection.withPlatformTransaction(logger: context.logger) { connection in
                    try await connection.query(
                        """
                        SELECT t.slug, t.name, t.status, t.plan, s.status FROM tenants t
                        LEFT JOIN subscriptions s ON s.tenant_id = t.id ORDER BY t.slug
                        """, logger: context.logger
                    ).collect()
                }
                return try rows.map { row in
                    let (slug, name, status, plan, subscription) = try row.decode((String, String, String, String, String?).self)
                    return TenantSummary(slug: slug, name: name, status: status, plan: plan, subscriptionStatus: subscription)
                }
            }
            return try context.responseEncoder.encode(TenantList(data: tenants), from: request, context: context)
        }

        document(.put, "/v1/operator/tenants/{tenant}/plan", "Move a tenant to another plan now (prorated; modules the plan lacks are disabled)",
                 body: PlanInput.self, response: PlanChange.Outcome.self)
        group.put("tenants/:tenant/plan") { request, context -> Response in
            try Self.authorize(request, access)
            guard let plans else { throw AtriumError.notFound("Billing is not configured (no plan catalog).") }
            let slug = try context.parameters.require("tenant")
            try ModuleRoutes.requireJSON(request)
            let input = try await request.decode(as: PlanInput.self, context: context)
            if let days = input.trialDays, !(1...365).contains(days) { throw AtriumError.validation(field: "trial_days", "must be 1 to 365") }
            let outcome = try await Self.withOwner(access, context) { connection in
                try await PlanChange(catalog: plans, modules: modules, logger: context.logger).change(
                    slug: slug, to: input.plan, trialDays: input.trialDays, actor: .init(type: .operator, id: "operator-api"), on: connection)
            }
            return try context.responseEncoder.encode(outcome, from: request, context: context)
        }

        document(.post, "/v1/operator/tenants/{tenant}/cancel", "Cancel a tenant's subscription now (the flat fee stops; data stays)",
                 body: nil, response: NoContent.self)
        group.post("tenants/:tenant/cancel") { request, context -> Response in
            try Self.authorize(request, access)
            let slug = try context.parameters.require("tenant")
            try await Self.withOwner(access, context) { connection in
                guard let tenant = try await TenantStore(logger: context.logger).find(slug: slug, on: connection) else {
                    throw AtriumError.notFound("No tenant named '\(slug)'.")
                }
                try await connection.withTenantTransaction(tenant.id, logger: context.logger) { connection in
                    try await Subscriptions(logger: context.logger).cancel(on: connection)
                    try await AuditLog(logger: context.logger).record(
                        "subscription.canceled", tenantID: tenant.id, actor: .init(type: .operator, id: "operator-api"), on: connection)
                }
            }
            return Response(status: .noContent)
        }
    }

    static func authorize(_ request: Request, _ access: OperatorAccess) throws {
        guard access.admits(request.headers[.authorization]) else { throw AtriumError.unauthenticated("The operator token is required.") }
    }

    static func withOwner<Result: Sendable>(
        _ access: OperatorAccess, _ context: AtriumRequestContext, _ body: @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await withPostgresConnection(access.ownerURL, logger: context.logger, body)
    }

    private func document<Output: Decodable>(
        _ method: HTTPRequest.Method, _ path: String, _ summary: String, body: (any Decodable.Type)?, response: Output.Type
    ) {
        collector.add(OperationRecord(
            method: method, path: path, summary: summary, tag: "operator", permission: nil, authenticated: true, query: [],
            requestBody: body.map { SchemaReflector.schema(for: $0) },
            response: Output.self == NoContent.self ? nil : SchemaReflector.schema(for: Output.self), successStatus: Output.self == NoContent.self ? 204 : 200))
    }
}
