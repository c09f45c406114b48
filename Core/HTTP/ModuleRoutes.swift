import Foundation
public import HTTPTypes
public import Hummingbird

/// Registers a module's (or the kernel's) routes, each with the facts the kernel
/// enforces and documents: its permission, its body and response types.
///
/// Registration writes the OpenAPI operation at the same moment it adds the route, so
/// the published document lists exactly what the router serves.
public final class ModuleRoutes {
    let group: RouterGroup<AtriumRequestContext>
    let openAPIPrefix: String
    let tag: String
    let authenticated: Bool
    let services: KernelServices
    let collector: OperationCollector

    init(
        group: RouterGroup<AtriumRequestContext>, openAPIPrefix: String, tag: String, authenticated: Bool,
        services: KernelServices, collector: OperationCollector
    ) {
        self.group = group
        self.openAPIPrefix = openAPIPrefix
        self.tag = tag
        self.authenticated = authenticated
        self.services = services
        self.collector = collector
    }

    /// The module's context: its sealer, HTTP client, signed links, clock and settings.
    public var context: ModuleContext { services.kit.context(for: tag) }

    /// A route without a request body (GET, DELETE, or a POST action), reached by
    /// callers holding `permission` (any caller when nil).
    public func on<Output: Codable & Sendable>(
        _ method: HTTPRequest.Method, _ path: String, summary: String, permission: String?,
        query: [QueryParameter] = [], response: Output.Type, status: HTTPResponse.Status = .ok,
        handler: @escaping @Sendable (TenantRequest) async throws -> Output
    ) {
        on(method, path, summary: summary, access: RouteAccess(permission), query: query, response: response, status: status, handler: handler)
    }

    /// A route without a request body, with its access declared.
    public func on<Output: Codable & Sendable>(
        _ method: HTTPRequest.Method, _ path: String, summary: String, access: RouteAccess,
        query: [QueryParameter] = [], response: Output.Type, status: HTTPResponse.Status = .ok,
        handler: @escaping @Sendable (TenantRequest) async throws -> Output
    ) {
        register(method, path, summary: summary, access: access, query: query, body: nil, idempotent: false, response: response, status: status) {
            request in try await handler(request)
        }
    }

    /// A route with a JSON request body, decoded (and validated by its `Decodable` init)
    /// before the handler runs.
    public func on<Input: Decodable & Sendable, Output: Codable & Sendable>(
        _ method: HTTPRequest.Method, _ path: String, summary: String, permission: String?,
        body: Input.Type, response: Output.Type, status: HTTPResponse.Status = .ok,
        handler: @escaping @Sendable (TenantRequest, Input) async throws -> Output
    ) {
        registerWithBody(method, path, summary: summary, access: RouteAccess(permission), body: body, idempotent: false, response: response, status: status) {
            request, input in try await handler(request, input)
        }
    }

    /// A route with a JSON request body, with its access declared.
    public func on<Input: Decodable & Sendable, Output: Codable & Sendable>(
        _ method: HTTPRequest.Method, _ path: String, summary: String, access: RouteAccess,
        body: Input.Type, response: Output.Type, status: HTTPResponse.Status = .ok,
        handler: @escaping @Sendable (TenantRequest, Input) async throws -> Output
    ) {
        registerWithBody(method, path, summary: summary, access: access, body: body, idempotent: false, response: response, status: status) {
            request, input in try await handler(request, input)
        }
    }

    /// A create that honours `Idempotency-Key` (see `TenantRequest.idempotent`): the kernel
    /// opens the transaction, claims the key, runs `handler` in that same transaction
    /// (its `request.transaction` blocks join it) and stores the answer before it commits;
    /// a retry gets the stored answer. The input must be `Encodable`, since the key is
    /// bound to the request body.
    public func create<Input: Codable & Sendable, Output: Codable & Sendable>(
        _ path: String, summary: String, access: RouteAccess, body: Input.Type, response: Output.Type, status: HTTPResponse.Status = .created,
        handler: @escaping @Sendable (TenantRequest, Input) async throws -> Output
    ) {
        registerWithBody(.post, path, summary: summary, access: access, body: body, idempotent: true, response: response, status: status) {
            request, input in
            try await request.transaction { transaction in
                try await request.idempotent(input: input, in: transaction) {
                    var joined = request
                    // With a key, the answer is stored after the handler, in its transaction:
                    // the handler's `lastStatement` must leave the commit to the block's end.
                    joined.ambient = request.request.headers[.idempotencyKey] == nil ? transaction : transaction.committingAtBlockEnd()
                    return try await handler(joined, input)
                }
            }
        }
    }

    /// A create that prepares outside any transaction, then writes in one that honours
    /// `Idempotency-Key`: for work that must not hold a connection or a lock while it runs
    /// (an analysis on the compute pool, a call to an outside model). `prepare` reads
    /// what it needs in its own `request.transaction` blocks, which commit on their own,
    /// and computes; `write` then runs in the transaction that claims the key and stores
    /// the answer, so the write and what it bills commit together or not at all. A retry
    /// with the same key prepares again and gets the first answer.
    public func create<Input: Codable & Sendable, Prepared: Sendable, Output: Codable & Sendable>(
        _ path: String, summary: String, access: RouteAccess, body: Input.Type, response: Output.Type, status: HTTPResponse.Status = .created,
        prepare: @escaping @Sendable (TenantRequest, Input) async throws -> Prepared,
        write: @escaping @Sendable (TenantRequest, TenantTransaction, Prepared) async throws -> Output
    ) {
        registerWithBody(.post, path, summary: summary, access: access, body: body, idempotent: true, response: response, status: status) {
            request, input in
            let prepared = try await prepare(request, input)
            return try await request.transaction { transaction in
                try await request.idempotent(input: input, in: transaction) {
                    try await write(request, transaction.committingAtBlockEnd(), prepared)
                }
            }
        }
    }

    private func registerWithBody<Input: Decodable & Sendable, Output: Codable & Sendable>(
        _ method: HTTPRequest.Method, _ path: String, summary: String, access: RouteAccess, body: Input.Type, idempotent: Bool,
        response: Output.Type, status: HTTPResponse.Status,
        handler: @escaping @Sendable (TenantRequest, Input) async throws -> Output
    ) {
        register(
            method, path, summary: summary, access: access, query: [], body: SchemaReflector.schema(for: Input.self),
            bodyName: SchemaReflector.componentName(for: Input.self), idempotent: idempotent, response: response, status: status
        ) { request in
            try Self.requireJSON(request.request)
            let input = try await AtriumRequestDecoder().decode(Input.self, from: request.request, maxSize: request.maxUploadSize)
            return try await handler(request, input)
        }
    }

    /// A route that streams: it may read the raw request body (`request.request.body`,
    /// for uploads larger than the JSON limit, declared by `accepts`) and answers with a
    /// response it builds itself (a CSV download, for example) of `produces`.
    public func streaming(
        _ method: HTTPRequest.Method, _ path: String, summary: String, permission: String?, query: [QueryParameter] = [],
        accepts: [String] = [], produces: String, status: HTTPResponse.Status = .ok,
        handler: @escaping @Sendable (TenantRequest) async throws -> Response
    ) {
        streaming(
            method, path, summary: summary, access: RouteAccess(permission), query: query, accepts: accepts, produces: produces, status: status,
            handler: handler)
    }

    /// A streaming route with its access declared.
    public func streaming(
        _ method: HTTPRequest.Method, _ path: String, summary: String, access: RouteAccess, query: [QueryParameter] = [],
        accepts: [String] = [], produces: String, status: HTTPResponse.Status = .ok,
        handler: @escaping @Sendable (TenantRequest) async throws -> Response
    ) {
        let trimmed = path.split(separator: "/").joined(separator: "/")
        var record = OperationRecord(
            method: method, path: openAPIPrefix + (trimmed.isEmpty ? "" : "/" + trimmed), summary: summary, tag: tag,
            permission: access.documentedPermission, authenticated: authenticated, query: query, requestBody: nil, response: nil,
            successStatus: Int(status.code))
        record.access = access
        record.requestContentTypes = accepts
        record.responseContentType = produces
        collector.add(record)
        let services = self.services
        group.on(RouterPath(Self.routerPath(trimmed)), method: method) { request, context -> Response in
            let tenantRequest = try Self.tenantRequest(request, context: context, services: services, access: access)
            return try await handler(tenantRequest)
        }
    }

    /// 415 for a body declared as anything but JSON (`application/json` or a `+json`
    /// type); a body without a Content-Type is read as JSON.
    static func requireJSON(_ request: Request) throws {
        guard let declared = request.headers[.contentType] else { return }
        // What nearly every client sends, recognised without Foundation's trimming and
        // lowercasing (which a profile of the create put at 2% of the server's CPU).
        if declared == "application/json" || declared == "application/json; charset=utf-8" { return }
        let type = declared.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        guard type == "application/json" || (type.hasPrefix("application/") && type.hasSuffix("+json")) else {
            throw AtriumError(
                status: .unsupportedMediaType, code: "unsupported_media_type", title: "Unsupported media type",
                detail: "This route takes application/json, not \(type.isEmpty ? "an empty Content-Type" : type).",
                headers: [.accept: "application/json"])
        }
    }

    static func routerPath(_ trimmed: String) -> String {
        trimmed.split(separator: "/").map { segment in
            segment.hasPrefix("{") && segment.hasSuffix("}") ? ":" + segment.dropFirst().dropLast() : String(segment)
        }.joined(separator: "/")
    }

    /// The handler's view of the request, after the route's access check.
    static func tenantRequest(_ request: Request, context: AtriumRequestContext, services: KernelServices, access: RouteAccess) throws -> TenantRequest {
        guard let tenant = context.tenant else { throw AtriumError.notFound() }
        var tenantRequest = TenantRequest(
            request: request, tenant: tenant, principal: context.principal, logger: context.logger,
            requestID: context.requestID, parameters: context.parameters, services: services,
            maxUploadSize: context.maxUploadSize, requestTransaction: context.requestTransaction,
            client: ClientInfo(
                ip: services.trustedProxies.clientIP(peer: context.peerIP, forwardedFor: request.headers[.xForwardedFor]),
                userAgent: request.headers[.userAgent]))
        switch access {
        case .anyCaller:
            break
        case .permission(let permission):
            try tenantRequest.require(permission)
        case .owned(let prefix, let requiring):
            tenantRequest.ownership = try Ownership.settle(prefix: prefix, requiring: requiring, principal: tenantRequest.requirePrincipal())
        }
        return tenantRequest
    }

    private func register<Output: Codable & Sendable>(
        _ method: HTTPRequest.Method, _ path: String, summary: String, access: RouteAccess, query: [QueryParameter],
        body: JSONSchema?, bodyName: String? = nil, idempotent: Bool, response: Output.Type, status: HTTPResponse.Status,
        handler: @escaping @Sendable (TenantRequest) async throws -> Output
    ) {
        let trimmed = path.split(separator: "/").joined(separator: "/")
        var record = OperationRecord(
            method: method, path: openAPIPrefix + (trimmed.isEmpty ? "" : "/" + trimmed), summary: summary, tag: tag,
            permission: access.documentedPermission, authenticated: authenticated, query: query, requestBody: body,
            response: Output.self == NoContent.self || Output.self == Redirect.self ? nil : SchemaReflector.schema(for: Output.self),
            successStatus: Int(status.code))
        record.access = access
        record.idempotent = idempotent
        record.requestBodyName = bodyName
        record.responseName = record.response == nil ? nil : SchemaReflector.componentName(for: Output.self)
        collector.add(record)
        let services = self.services
        group.on(RouterPath(Self.routerPath(trimmed)), method: method) { request, context -> Response in
            let tenantRequest = try Self.tenantRequest(request, context: context, services: services, access: access)
            let output = try await handler(tenantRequest)
            if output is NoContent { return Response(status: .noContent) }
            if let redirect = output as? Redirect { return Response(status: .found, headers: [.location: redirect.location]) }
            var response = try context.responseEncoder.encode(output, from: request, context: context)
            response.status = status
            return response
        }
    }
}

/// The response of routes that answer 204 with no body.
public struct NoContent: Codable, Sendable {
    public init() {}
}
