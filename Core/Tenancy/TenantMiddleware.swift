import Foundation
import HTTPTypes
import Hummingbird
import PostgresNIO
import Logging

/// The tenant part of the request path: resolve the tenant named in the URL (from
/// memory, `TenantDirectory`), refuse a suspended one, authenticate the caller as a
/// principal *of that tenant* in the request's one transaction, apply the plan's rate
/// limits, refuse a module the tenant has not enabled, and count the call.
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
        let started = ContinuousClock.now
        guard let slug = context.parameters.get("tenant") else { throw AtriumError.notFound() }
        guard let snapshot = try await services.directory.tenant(slug: slug, database: services.database) else {
            throw AtriumError.notFound("No tenant named '\(slug)'.")
        }
        let tenant = snapshot.tenant
        context.tenant = tenant
        context.logger[metadataKey: "tenant.id"] = .string(tenant.id.lowercasedString)
        if tenant.status == .suspended {
            throw AtriumError.forbidden(code: "tenant_suspended", "Tenant '\(slug)' is suspended.")
        }
        // Sessions, users and roles change only through the kernel's own routes (and the
        // CLI): after a write there, this process forgets the tenant's cached sessions
        // before it answers, so the caller's next request sees the change; other processes
        // learn it from the database's notification (SessionCache).
        defer {
            if moduleID == nil, !Self.isSafe(request.method) { services.directory.sessions.invalidate(tenantID: tenant.id) }
        }
        guard authenticate else {
            // Before anyone is authenticated, limits apply per client IP: the sign-in
            // routes' own, and the catalog's `public_rate_limits` on modules' public routes.
            let policies = limitsSignIn ? services.plans?.authRateLimits.perIP : moduleID == nil ? nil : services.plans?.publicRateLimits
            if let policies, !policies.isEmpty {
                let ip = services.trustedProxies.clientIP(peer: context.peerIP, forwardedFor: request.headers[.xForwardedFor]) ?? "unknown"
                let decision = try await services.limiter.check(key: "\(limitsSignIn ? "auth" : "public")-ip:\(ip)", policies: policies)
                guard decision.allowed else { throw Self.rateLimited(decision) }
                try requireModule(snapshot)
                return Self.withLimits(try await next(request, context), decision)
            }
            try requireModule(snapshot)
            return try await next(request, context)
        }
        // An authenticated request holds one pooled connection and runs one transaction:
        // BEGIN, one statement that scopes it and checks the credentials, the handler's
        // statements, COMMIT (see RequestTransaction). Where the connection allows
        // (Database.withRequestConnection), BEGIN and a scope from memory (a session
        // checked before) travel in one write with the handler's first statement, and
        // COMMIT with its last where the handler says which that is
        // (TenantTransaction.lastStatement): a read is then one round trip, and a request
        // that runs no statement none. Under a monthly API-call quota the call's place is
        // reserved first, so that a lease of allowance, when one is due, runs on this
        // connection as a statement of its own before BEGIN.
        //
        // No connection waits for a client's bytes: a small body is read before one is
        // taken, and a large or chunked one (an upload) is read by the handler after the
        // checks have committed and the connection has gone back to the pool.
        var request = request
        let streamsBody: Bool
        switch Self.body(of: request) {
        case .none:
            streamsBody = false
        case .small(let length):
            _ = try await request.collectBody(upTo: length)
            streamsBody = false
        case .streamed:
            streamsBody = true
        }
        let resolved = ContinuousClock.now
        let plan = services.plans?.plan(tenant.plan)
        // A connection that died before anything of the request reached it ran none of its
        // statements: the request runs again, once, on a fresh one (a read runs again however
        // far it got). Otherwise the client gets 503 and Retry-After (ProblemMiddleware).
        func attempt() async throws -> Outcome {
        try await services.database.withRequestConnection { lease -> Outcome in
            let connection = lease.connection
            // The request runs on the connection's event loop while it holds the connection
            // (EventLoopTaskExecutor): each statement is written and answered on one thread.
            // Served by `atrium serve`, it is there already: the connection came from the
            // pool of the loop the HTTP connection runs on (Database.client).
            return try await EventLoopTaskExecutor.run(on: connection.eventLoop) { () async throws -> Outcome in
                try await RequestLease.$current.withValue(lease) { () async throws -> Outcome in
                    let reservation = try await services.apiCalls.reserve(
                        tenantID: tenant.id, quota: plan?.quotas["api_calls_per_month"], on: connection)
                    let transaction = RequestTransaction(connection: connection, logger: context.logger, lease: lease)
                    var admitted = false
                    var success = false
                    do {
                        try await lease.begin(logger: context.logger)
                        let (caller, limits) = try await checkCaller(request, context: context, snapshot: snapshot, plan: plan, on: connection)
                        let authenticated = ContinuousClock.now
                        try services.apiCalls.admit(reservation)
                        admitted = true
                        if streamsBody {
                            success = true
                            try await transaction.finish(success: true)
                            return .checked(caller, limits, authenticated)
                        }
                        var context = caller
                        context.requestTransaction = transaction
                        let response = try await next(request, context)
                        success = true
                        try await transaction.finish(success: true)
                        logTiming(context.logger, started: started, resolved: resolved, authenticated: authenticated)
                        return .served(limits.map { Self.withLimits(response, $0) } ?? response)
                    } catch {
                        if !admitted { services.apiCalls.release(reservation) }
                        if !success { try? await transaction.finish(success: false) }
                        if DatabaseAvailability.isLost(error), !(error is RequestConnectionLost) {
                            throw RequestConnectionLost(sentStatement: lease.sentStatement, underlying: error)
                        }
                        throw error
                    }
                }
            }
        }
        }
        let outcome: Outcome
        do {
            outcome = try await attempt()
        } catch let lost as RequestConnectionLost where !lost.sentStatement || Self.isSafe(request.method) {
            context.logger.warning("the request's database connection was lost; running it again on a fresh one", metadata: ["error": "\(lost)"])
            services.database.requests?.counters.addRetry()
            outcome = try await attempt()
        }
        switch outcome {
        case .served(let response):
            return response
        case .checked(let context, let limits, let authenticated):
            // The handler's transactions take pooled connections of their own.
            let response = try await next(request, context)
            logTiming(context.logger, started: started, resolved: resolved, authenticated: authenticated)
            return limits.map { Self.withLimits(response, $0) } ?? response
        }
    }

    static func isSafe(_ method: HTTPRequest.Method) -> Bool {
        method == .get || method == .head || method == .options
    }

    enum Outcome: Sendable {
        case served(Response)
        /// The caller is checked and counted; the handler runs without the connection.
        case checked(Context, RateLimitDecision?, ContinuousClock.Instant)
    }

    enum Body {
        case none
        case small(length: Int)
        case streamed
    }

    /// Bodies up to this size are read before a pooled connection is taken.
    static let smallBodyLimit = 64 * 1024

    static func body(of request: Request) -> Body {
        if let length = request.headers[.contentLength].flatMap(Int.init) {
            if length == 0 { return .none }
            return length <= smallBodyLimit ? .small(length: length) : .streamed
        }
        return request.headers[.transferEncoding] == nil ? .none : .streamed
    }

    private func logTiming(
        _ logger: Logger, started: ContinuousClock.Instant, resolved: ContinuousClock.Instant, authenticated: ContinuousClock.Instant
    ) {
        guard logger.logLevel <= .debug else { return }
        logger.debug("request path timing", metadata: [
            "time.tenant_ms": "\(Self.milliseconds(resolved - started))",
            "time.authenticate_ms": "\(Self.milliseconds(authenticated - resolved))",
            "time.handler_ms": "\(Self.milliseconds(ContinuousClock.now - authenticated))",
        ])
    }

    /// Authenticates the caller in the request's transaction (which this scopes to the
    /// tenant and principal), then applies the plan's rate limits and the module check.
    private func checkCaller(
        _ request: Request, context: Context, snapshot: TenantSnapshot, plan: Plan?, on connection: PostgresConnection
    ) async throws -> (Context, RateLimitDecision?) {
        var context = context
        let tenant = snapshot.tenant
        guard let principal = try await services.authenticator.authenticate(request, tenant: tenant, on: connection, logger: context.logger),
            principal.tenantID == tenant.id
        else {
            throw AtriumError.unauthenticated()
        }
        context.principal = principal
        context.logger[metadataKey: "principal.id"] = .string(principal.id.lowercasedString)
        var limits: RateLimitDecision?
        if let plan {
            let rules = plan.rateLimits.map { RateLimitRule(key: "tenant:\(tenant.id)", policy: $0) }
                + plan.principalRateLimits.map { RateLimitRule(key: "principal:\(principal.id)", policy: $0) }
            if !rules.isEmpty {
                let decision = try await services.limiter.check(rules, now: nil)
                guard decision.allowed else { throw Self.rateLimited(decision) }
                limits = decision
            }
        }
        try requireModule(snapshot)
        return (context, limits)
    }

    /// 403 `module_disabled` unless this route's module is enabled for the tenant.
    private func requireModule(_ snapshot: TenantSnapshot) throws {
        if let moduleID, !snapshot.modules.contains(moduleID) {
            throw AtriumError.forbidden(code: "module_disabled", "The '\(moduleID)' module is not enabled for this tenant.")
        }
    }

    static func withLimits(_ response: Response, _ limits: RateLimitDecision) -> Response {
        var response = response
        response.headers[.rateLimitPolicy] = limits.policyHeader
        response.headers[.rateLimit] = limits.stateHeader
        return response
    }

    static func milliseconds(_ duration: Duration) -> String {
        String(format: "%.3f", Double(duration.components.seconds) * 1_000 + Double(duration.components.attoseconds) / 1e15)
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
