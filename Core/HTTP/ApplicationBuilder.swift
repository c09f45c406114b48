import Foundation
public import ServiceLifecycle
public import Hummingbird
public import Logging
import PostgresNIO
public import Prometheus

/// Everything the HTTP application is built from.
public struct ApplicationDependencies: Sendable {
    public var database: Database
    public var registry: ModuleRegistry
    public var authenticator: any Authenticator
    public var metrics: PrometheusCollectorRegistry
    public var logger: Logger
    /// The migrations `/readyz` expects applied.
    public var expectedMigrations: [Migration]
    /// The identity layer; when present its auth routes and JWKS are served and access
    /// tokens authenticate (unless `authenticator` says otherwise).
    public var identity: Identity?
    /// The plan catalog; its rate limits apply to authenticated tenant requests.
    public var plans: PlanCatalog?
    public var limiter: any RateLimitStore
    /// The operator API's credentials; nil leaves `/v1/operator` unmounted.
    public var operatorAccess: OperatorAccess?
    /// Tenants in memory, kept fresh by `requestPathServices`' listener.
    public let directory: TenantDirectory
    /// `kernel.api_calls`, counted in memory and flushed by `requestPathServices`.
    public let apiCalls: APICallCounter
    /// What modules' contexts are made of (sealing, outbound HTTP, links, clock).
    public var kit: ModuleKit
    /// Realtime subscribers, fed by `requestPathServices`' listener.
    public let events = EventHub()

    public init(
        database: Database, registry: ModuleRegistry, identity: Identity? = nil, authenticator: (any Authenticator)? = nil,
        plans: PlanCatalog? = nil, limiter: any RateLimitStore = MemoryRateLimitStore(), operatorAccess: OperatorAccess? = nil,
        metrics: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), kit: ModuleKit? = nil, logger: Logger,
        expectedMigrations: [Migration]
    ) {
        self.database = database
        self.registry = registry
        self.identity = identity
        self.plans = plans
        self.limiter = limiter
        self.operatorAccess = operatorAccess
        let directory = TenantDirectory(logger: logger)
        self.directory = directory
        self.authenticator = authenticator ?? identity.map { TokenAuthenticator(identity: $0, sessions: directory.sessions) } ?? DenyAllAuthenticator()
        self.apiCalls = APICallCounter(metering: Metering(registry: registry, catalog: plans, logger: logger), logger: logger)
        self.metrics = metrics
        self.kit = kit ?? ModuleKit.ephemeral(masterKey: identity?.masterKey ?? .generate(), logger: logger)
        self.logger = logger
        self.expectedMigrations = expectedMigrations
    }
}

extension ApplicationDependencies {
    /// What the request path runs beside the HTTP server: the tenant-change listener and
    /// the API-call flusher. List them *before* the server in a service group, so that on
    /// a graceful stop the server drains first and the last calls are flushed after it.
    public var requestPathServices: [any Service] {
        [TenantDirectory.Listener(directory: directory, database: database, events: events), APICallCounter.Flusher(counter: apiCalls, database: database)]
    }
}

/// Builds the router: the kernel's routes and every module's, behind the request path
/// of DESIGN.md. Tests call this to get the very router `atrium serve` runs.
public func buildRouter(_ dependencies: ApplicationDependencies, server: ServerConfiguration = .init()) -> Router<AtriumRequestContext> {
    let logger = dependencies.logger
    let services = KernelServices(
        database: dependencies.database, directory: dependencies.directory, apiCalls: dependencies.apiCalls,
        jobs: JobQueue(logger: logger), tenants: TenantStore(logger: logger),
        enablement: ModuleEnablement(logger: logger), authenticator: dependencies.authenticator, identity: dependencies.identity,
        trustedProxies: server.trustedProxies, plans: dependencies.plans, limiter: dependencies.limiter,
        metering: Metering(registry: dependencies.registry, catalog: dependencies.plans, logger: logger),
        channels: dependencies.registry.channels, kit: dependencies.kit,
        events: dependencies.events)
    let router = Router(context: AtriumRequestContext.self)
    router.add(middleware: RequestIDMiddleware())
    if !server.corsOrigins.isEmpty {
        router.add(middleware: CORSMiddleware(allowedOrigins: server.corsOrigins))
    }
    router.add(middleware: HTTPMetricsMiddleware(registry: dependencies.metrics))
    router.add(middleware: AccessLogMiddleware())
    let routeMethods = RouteMethods()
    router.add(middleware: ProblemMiddleware(routeMethods: routeMethods, constraints: DeclaredConstraints(database: dependencies.database, logger: logger)))
    router.add(middleware: QueryDomainMiddleware())
    router.add(middleware: BodyLimitMiddleware(maxBodySize: server.maxBodySize))

    let collector = OperationCollector()
    HealthRoutes(dependencies: dependencies, collector: collector).register(on: router)
    if dependencies.identity != nil {
        EmailLinkPages().register(on: router)
    }
    if let access = dependencies.operatorAccess {
        OperatorRoutes(access: access, plans: dependencies.plans, modules: dependencies.registry.modules, collector: collector).register(on: router)
    }

    let tenantGroup = router.group("v1/tenants/:tenant")
        .add(middleware: TenantMiddleware(services: services, authenticate: true, moduleID: nil))
    let tenantRoutes = ModuleRoutes(
        group: tenantGroup, openAPIPrefix: "/v1/tenants/{tenant}", tag: "tenants", authenticated: true, services: services, collector: collector)
    TenantRoutes(registry: dependencies.registry, plans: dependencies.plans).register(tenantRoutes)
    BillingRoutes(plans: dependencies.plans).register(tenantRoutes)
    if let identity = dependencies.identity {
        let authGroup = router.group("v1/tenants/:tenant/auth")
            .add(middleware: TenantMiddleware(services: services, authenticate: false, moduleID: nil, limitsSignIn: true))
        let auth = AuthRoutes(identity: identity)
        auth.registerPublic(
            ModuleRoutes(group: authGroup, openAPIPrefix: "/v1/tenants/{tenant}/auth", tag: "auth", authenticated: false, services: services, collector: collector))
        auth.registerAuthenticated(tenantRoutes)
        AdminRoutes(identity: identity).register(tenantRoutes)
        OIDCAdminRoutes(identity: identity).register(tenantRoutes)
        let emailFlows = EmailFlowRoutes(identity: identity)
        emailFlows.registerPublic(
            ModuleRoutes(group: authGroup, openAPIPrefix: "/v1/tenants/{tenant}/auth", tag: "auth", authenticated: false, services: services, collector: collector))
        emailFlows.registerAuthenticated(tenantRoutes)
        OIDCRoutes(identity: identity).register(
            ModuleRoutes(group: authGroup, openAPIPrefix: "/v1/tenants/{tenant}/auth", tag: "auth", authenticated: false, services: services, collector: collector))
        collector.add(OperationRecord(
            method: .get, path: "/.well-known/jwks.json", summary: "Public keys that verify access tokens (RFC 7517)", tag: "auth", permission: nil,
            authenticated: false, query: [], requestBody: nil, response: .freeform, successStatus: 200))
        router.get(".well-known/jwks.json") { _, _ -> Response in
            let body = try JSONEncoder().encode(try await identity.keyring.jwks())
            return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "public, max-age=300"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
    }

    for module in dependencies.registry.modules {
        let group = router.group(RouterPath("v1/tenants/:tenant/\(module.id)"))
            .add(middleware: TenantMiddleware(services: services, authenticate: true, moduleID: module.id))
        module.routes(
            ModuleRoutes(group: group, openAPIPrefix: "/v1/tenants/{tenant}/\(module.id)", tag: module.id, authenticated: true,
                         services: services, collector: collector))
        let publicGroup = router.group(RouterPath("v1/public/:tenant/\(module.id)"))
            .add(middleware: TenantMiddleware(services: services, authenticate: false, moduleID: module.id))
        module.publicRoutes(
            ModuleRoutes(group: publicGroup, openAPIPrefix: "/v1/public/{tenant}/\(module.id)", tag: module.id, authenticated: false,
                         services: services, collector: collector))
    }

    routeMethods.load(collector.operations + [
        OperationRecord(
            method: .get, path: "/v1/openapi.json", summary: "", tag: "", permission: nil, authenticated: false, query: [], requestBody: nil,
            response: nil, successStatus: 200),
    ])
    let document = OpenAPIDocument.build(operations: collector.operations, version: AtriumVersion.kernel)
    let documentBody: ByteBuffer
    let plainEncoder = JSONEncoder()
    plainEncoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    documentBody = ByteBuffer(bytes: (try? plainEncoder.encode(document)) ?? Data("{}".utf8))
    router.get("v1/openapi.json") { _, _ in
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: documentBody))
    }
    return router
}

/// The HTTP application `atrium serve` runs.
public func buildApplication(
    _ dependencies: ApplicationDependencies, server: ServerConfiguration, services: [any Service] = []
) -> some ApplicationProtocol {
    Application(
        router: buildRouter(dependencies, server: server),
        server: .loopBoundHTTP1(configuration: .init(additionalChannelHandlers: [ParserErrorProblemHandler()])),
        configuration: .init(address: .hostname(server.host, port: server.port)),
        services: services,
        logger: dependencies.logger
    )
}

/// Sets the body limit on the context so every decoder honours it.
struct BodyLimitMiddleware: RouterMiddleware {
    typealias Context = AtriumRequestContext
    let maxBodySize: Int
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.maxUploadSize = maxBodySize
        return try await next(request, context)
    }
}
