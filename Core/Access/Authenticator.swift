public import Hummingbird
public import Logging
public import PostgresNIO

/// Turns a request's credentials into a principal of the path's tenant.
///
/// The kernel asks the configured authenticator on every authenticated tenant route,
/// inside the request's one transaction (already begun on `connection`). Returning
/// `nil` means "no valid credentials" and is answered 401. On success the authenticator
/// must leave that transaction scoped to the tenant and the principal (`app.tenant_id`,
/// `app.principal_id`, transaction-locally), ideally in the same statement that checks
/// the credentials — `PostgresConnection.scopeTransaction(toTenant:principal:logger:)`
/// does it on its own. An authenticator that forgets fails closed: row-level security
/// shows nothing without a tenant. The identity layer provides the real implementation
/// (access tokens and API keys).
public protocol Authenticator: Sendable {
    func authenticate(_ request: Request, tenant: Tenant, on connection: PostgresConnection, logger: Logger) async throws -> Principal?
}

/// The authenticator used when no identity provider is installed: nobody gets in.
///
/// Shipping this as the default means there is no unauthenticated back door into
/// tenant routes.
public struct DenyAllAuthenticator: Authenticator {
    public init() {}
    public func authenticate(_ request: Request, tenant: Tenant, on connection: PostgresConnection, logger: Logger) async throws -> Principal? { nil }
}
