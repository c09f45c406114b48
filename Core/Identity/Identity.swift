public import Foundation
public import Logging

/// The identity layer's services, built once at start-up and shared by routes,
/// the authenticator and the CLI.
public struct Identity: Sendable {
    public let keyring: SigningKeyring
    public let masterKey: MasterKey
    public let hasher: PasswordHasher
    public let sessions: SessionService
    public let catalog: PermissionCatalog
    public let totp: TOTPService
    public let throttle: LoginThrottle
    public let emailTokens: EmailTokens
    /// The application's web address, for the links in emails.
    public let appURL: URL
    /// This server's own external address, for OIDC callback URLs.
    public let publicURL: URL
    /// Which addresses calls to OIDC providers may reach (`ATRIUM_OUTBOUND_ALLOW`).
    public let outbound: OutboundAddressPolicy
    /// A hash of a random password with the current parameters: verified against when an
    /// email is unknown, so that case takes as long as a wrong password.
    let decoyHash: String

    /// Where links in emails point when `ATRIUM_APP_URL` is not set.
    public static let defaultAppURL = URL(string: "http://127.0.0.1:8080") ?? URL(fileURLWithPath: "/")

    /// Builds the services; the signing keys load (and the first is created) on first use.
    public static func prepare(
        database: Database, registry: ModuleRegistry, masterKey: MasterKey, hasher: PasswordHasher = PasswordHasher(),
        settings: SessionSettings = SessionSettings(), throttle: LoginThrottle.Policy = LoginThrottle.Policy(),
        appURL: URL = Identity.defaultAppURL, publicURL: URL = Identity.defaultAppURL,
        emailTokenLifetimes: [EmailTokens.Purpose: TimeInterval] = [:], outbound: OutboundAddressPolicy = .publicInternet, logger: Logger
    ) async throws -> Identity {
        let keyring = SigningKeyring(database: database, masterKey: masterKey, logger: logger)
        return Identity(
            keyring: keyring, masterKey: masterKey, hasher: hasher,
            sessions: SessionService(keyring: keyring, masterKey: masterKey, settings: settings, logger: logger),
            catalog: PermissionCatalog(registry: registry), totp: TOTPService(masterKey: masterKey, logger: logger),
            throttle: LoginThrottle(policy: throttle), emailTokens: EmailTokens(masterKey: masterKey, lifetimes: emailTokenLifetimes, logger: logger), appURL: appURL,
            publicURL: publicURL, outbound: outbound,
            decoyHash: try await hasher.hash(SecureRandom.hex(bytes: 16)))
    }
}
