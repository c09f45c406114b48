import Crypto
import HTTPTypes
public import Foundation
import JWTKit
public import Logging
public import PostgresNIO

/// Claims Atrium reads from an OpenID Connect ID token.
struct IDTokenClaims: JWTPayload {
    var iss: IssuerClaim
    var sub: SubjectClaim
    var aud: AudienceClaim
    var exp: ExpirationClaim
    var nonce: String?
    var email: String?
    var emailVerified: Bool?

    enum CodingKeys: String, CodingKey {
        case iss, sub, aud, exp, nonce, email
        case emailVerified = "email_verified"
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        iss = try container.decode(IssuerClaim.self, forKey: .iss)
        sub = try container.decode(SubjectClaim.self, forKey: .sub)
        aud = try container.decode(AudienceClaim.self, forKey: .aud)
        exp = try container.decode(ExpirationClaim.self, forKey: .exp)
        nonce = try container.decodeIfPresent(String.self, forKey: .nonce)
        email = try container.decodeIfPresent(String.self, forKey: .email)
        // Some providers send "true" as a string.
        if let flag = try? container.decodeIfPresent(Bool.self, forKey: .emailVerified) {
            emailVerified = flag
        } else {
            emailVerified = (try? container.decodeIfPresent(String.self, forKey: .emailVerified)).flatMap { $0 }.map { $0 == "true" }
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(iss, forKey: .iss)
        try container.encode(sub, forKey: .sub)
        try container.encode(aud, forKey: .aud)
        try container.encode(exp, forKey: .exp)
        try container.encodeIfPresent(nonce, forKey: .nonce)
        try container.encodeIfPresent(email, forKey: .email)
        try container.encodeIfPresent(emailVerified, forKey: .emailVerified)
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
    }
}

/// OpenID Connect login (authorization code with PKCE S256, state and nonce) against the
/// providers a tenant configures: Google, or any issuer with discovery.
public struct OIDCLogin: Sendable {
    /// A configured provider, secret sealed at rest with the master key.
    public struct Provider: Sendable, Codable, Equatable {
        public var name: String
        public var issuer: String
        public var clientID: String
        public var scopes: String
    }

    struct Discovery: Decodable, Sendable {
        var issuer: String
        var authorizationEndpoint: String
        var tokenEndpoint: String
        var jwksUri: String
    }

    /// The user an ID token names, verified.
    public struct VerifiedIdentity: Sendable {
        public var subject: String
        public var email: String?
        public var emailVerified: Bool
    }

    public static let googleIssuer = "https://accounts.google.com"
    static let stateLifetime: TimeInterval = 600

    let masterKey: MasterKey
    let logger: Logger
    let http: CurlHTTP

    /// `outbound` says which addresses issuers may have (`ATRIUM_OUTBOUND_ALLOW`): an
    /// issuer URL comes from a tenant admin, and its discovery document names further URLs.
    public init(masterKey: MasterKey, outbound: OutboundAddressPolicy = .publicInternet, logger: Logger) {
        self.masterKey = masterKey
        self.logger = logger
        http = CurlHTTP(policy: outbound)
    }

    // MARK: - Configuration

    public func save(
        tenantID: UUID, name: String, issuer: String, clientID: String, clientSecret: String, scopes: String = "openid email profile",
        on connection: PostgresConnection
    ) async throws -> Provider {
        guard name.range(of: "^[a-z][a-z0-9_-]{1,39}$", options: .regularExpression) != nil else {
            throw AtriumError.validation(field: "name", "must be 2-40 lowercase letters, digits, '-' or '_'")
        }
        guard let url = URL(string: issuer), url.scheme == "https" || url.host() == "127.0.0.1" || url.host() == "localhost" else {
            throw AtriumError.validation(field: "issuer", "must be an https URL")
        }
        guard !clientID.isEmpty else { throw AtriumError.validation(field: "client_id", "is required") }
        let sealed = try masterKey.seal(Data(clientSecret.utf8), context: Self.sealContext(tenantID: tenantID, provider: name))
        try await connection.query(
            """
            INSERT INTO oidc_providers (tenant_id, name, issuer, client_id, client_secret_sealed, scopes)
            VALUES (\(tenantID), \(name), \(issuer), \(clientID), \(sealed), \(scopes))
            ON CONFLICT (tenant_id, name) DO UPDATE SET issuer = excluded.issuer, client_id = excluded.client_id,
                client_secret_sealed = excluded.client_secret_sealed, scopes = excluded.scopes
            """, logger: logger)
        return Provider(name: name, issuer: issuer, clientID: clientID, scopes: scopes)
    }

    /// The tenant's providers; reading them needs no secrets.
    public static func list(on connection: PostgresConnection, logger: Logger) async throws -> [Provider] {
        var providers: [Provider] = []
        let rows = try await connection.query("SELECT name, issuer, client_id, scopes FROM oidc_providers ORDER BY name", logger: logger)
        for try await (name, issuer, clientID, scopes) in rows.decode((String, String, String, String).self) {
            providers.append(Provider(name: name, issuer: issuer, clientID: clientID, scopes: scopes))
        }
        return providers
    }

    /// Removes the provider `name`; false when the tenant has none of that name.
    static func remove(_ name: String, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        try await !connection.query("DELETE FROM oidc_providers WHERE name = \(name) RETURNING 1", logger: logger).collect().isEmpty
    }

    // MARK: - The flow

    /// Records a new authorization and returns the provider URL to send the browser to.
    func start(provider name: String, tenantID: UUID, redirectURI: String, on connection: PostgresConnection) async throws -> String {
        let (provider, _) = try await load(name, tenantID: tenantID, on: connection)
        let discovery = try await discover(provider.issuer)
        let state = SecureRandom.base64URL(bytes: 32)
        let nonce = SecureRandom.base64URL(bytes: 32)
        let verifier = SecureRandom.base64URL(bytes: 32)
        let challenge = Data(SHA256.hash(data: Data(verifier.utf8))).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        try await connection.query(
            """
            INSERT INTO oauth_states (tenant_id, provider, state_hash, nonce, code_verifier_sealed, expires_at)
            VALUES (\(tenantID), \(name), \(masterKey.tokenHash(state, purpose: "oauth-state")), \(nonce),
                    \(try masterKey.seal(Data(verifier.utf8), context: "pkce:\(tenantID)")), now() + make_interval(secs => \(Self.stateLifetime)))
            """, logger: logger)
        guard var components = URLComponents(string: discovery.authorizationEndpoint) else {
            throw OutboundError("the provider's authorization endpoint is not a URL")
        }
        components.queryItems = (components.queryItems ?? []) + [
            URLQueryItem(name: "response_type", value: "code"), URLQueryItem(name: "client_id", value: provider.clientID),
            URLQueryItem(name: "redirect_uri", value: redirectURI), URLQueryItem(name: "scope", value: provider.scopes),
            URLQueryItem(name: "state", value: state), URLQueryItem(name: "nonce", value: nonce),
            URLQueryItem(name: "code_challenge", value: challenge), URLQueryItem(name: "code_challenge_method", value: "S256"),
        ]
        guard let url = components.string else { throw OutboundError("cannot build the authorization URL") }
        return url
    }

    /// Spends the state, exchanges the code and verifies the ID token; nil for a bad state.
    func finish(
        provider name: String, tenantID: UUID, code: String, state: String, redirectURI: String, on connection: PostgresConnection
    ) async throws -> VerifiedIdentity? {
        let rows = try await connection.query(
            """
            UPDATE oauth_states SET used_at = now()
            WHERE state_hash = \(masterKey.tokenHash(state, purpose: "oauth-state")) AND provider = \(name) AND used_at IS NULL AND expires_at > now()
            RETURNING nonce, code_verifier_sealed
            """, logger: logger
        ).collect()
        guard let (nonce, sealedVerifier) = try rows.first?.decode((String, Data).self) else { return nil }
        let verifier = String(decoding: try masterKey.open(sealedVerifier, context: "pkce:\(tenantID)"), as: UTF8.self)
        let (provider, secret) = try await load(name, tenantID: tenantID, on: connection)
        let discovery = try await discover(provider.issuer)
        guard let tokenURL = URL(string: discovery.tokenEndpoint), let jwksURL = URL(string: discovery.jwksUri) else {
            throw OutboundError("the provider's discovery document has invalid endpoints")
        }
        let exchange = try await http.postForm(tokenURL, fields: [
            ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirectURI), ("client_id", provider.clientID),
            ("client_secret", secret), ("code_verifier", verifier),
        ])
        struct TokenAnswer: Decodable { var idToken: String? }
        guard exchange.status == 200, let idToken = try AtriumJSON.decoder.decode(TokenAnswer.self, from: exchange.body).idToken else {
            throw AtriumError(status: .badGateway, code: "oidc_exchange_failed", title: "Login provider refused",
                              detail: "The provider did not exchange the authorization code (HTTP \(exchange.status)).")
        }
        let jwks = try await http.get(jwksURL)
        let keys = JWTKeyCollection()
        try await keys.add(jwksJSON: String(decoding: jwks.body, as: UTF8.self))
        let claims: IDTokenClaims
        do {
            claims = try await keys.verify(idToken, as: IDTokenClaims.self)
        } catch {
            throw AtriumError(status: .badGateway, code: "oidc_token_invalid", title: "Invalid ID token", detail: "The provider's ID token did not verify.")
        }
        guard claims.iss.value == discovery.issuer, claims.aud.value.contains(provider.clientID), claims.nonce == nonce else {
            throw AtriumError(status: .badGateway, code: "oidc_token_invalid", title: "Invalid ID token",
                              detail: "The ID token's issuer, audience or nonce does not match this login.")
        }
        return VerifiedIdentity(subject: claims.sub.value, email: claims.email, emailVerified: claims.emailVerified ?? false)
    }

    private func load(_ name: String, tenantID: UUID, on connection: PostgresConnection) async throws -> (Provider, String) {
        let rows = try await connection.query(
            "SELECT issuer, client_id, scopes, client_secret_sealed FROM oidc_providers WHERE name = \(name)", logger: logger
        ).collect()
        guard let (issuer, clientID, scopes, sealed) = try rows.first?.decode((String, String, String, Data).self) else {
            throw AtriumError.notFound("No login provider named '\(name)'.")
        }
        let secret = String(decoding: try masterKey.open(sealed, context: Self.sealContext(tenantID: tenantID, provider: name)), as: UTF8.self)
        return (Provider(name: name, issuer: issuer, clientID: clientID, scopes: scopes), secret)
    }

    private func discover(_ issuer: String) async throws -> Discovery {
        let trimmed = issuer.hasSuffix("/") ? String(issuer.dropLast()) : issuer
        guard let url = URL(string: trimmed + "/.well-known/openid-configuration") else { throw OutboundError("the issuer is not a URL") }
        let response = try await http.get(url)
        guard response.status == 200, let discovery = try? AtriumJSON.decoder.decode(Discovery.self, from: response.body) else {
            throw AtriumError(status: .badGateway, code: "oidc_discovery_failed", title: "Login provider unavailable",
                              detail: "The provider's discovery document could not be read (HTTP \(response.status)).")
        }
        guard discovery.issuer == issuer || discovery.issuer == trimmed else {
            throw AtriumError(status: .badGateway, code: "oidc_discovery_failed", title: "Login provider misconfigured",
                              detail: "The discovery document names another issuer.")
        }
        return discovery
    }
}

extension OIDCLogin {
    /// What a provider's sealed client secret is bound to.
    static func sealContext(tenantID: UUID, provider: String) -> String { "oidc-client-secret:\(tenantID):\(provider)" }
}
