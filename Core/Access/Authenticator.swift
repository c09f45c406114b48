public import Hummingbird
public import Logging

/// Turns a request's credentials into a principal of the path's tenant.
///
/// The kernel asks the configured authenticator on every tenant route. Returning
/// `nil` means "no valid credentials" and is answered 401; the identity layer
/// provides the real implementation (access tokens and API keys).
public protocol Authenticator: Sendable {
    func authenticate(_ request: Request, tenant: Tenant, logger: Logger) async throws -> Principal?
}

/// The authenticator used when no identity provider is installed: nobody gets in.
///
/// Shipping this as the default means there is no unauthenticated back door into
/// tenant routes.
public struct DenyAllAuthenticator: Authenticator {
    public init() {}
    public func authenticate(_ request: Request, tenant: Tenant, logger: Logger) async throws -> Principal? { nil }
}
