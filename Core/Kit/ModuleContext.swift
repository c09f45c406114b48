public import Foundation
public import Logging

/// What the kernel gives a module to work with beyond its own tables: sealing for
/// secrets, outbound HTTP, signed links, a clock and its settings. Modules receive it at
/// registration (`routes.context`) and in every job (`JobContext.module`); mail and
/// realtime events go through the transaction (`sendMail`, `notify`) so they commit with
/// the writes that caused them.
///
/// Everything in it is scoped to the one module: its sealer's keys and its links' keys
/// are derived for its id, and a module never sees the master key.
public struct ModuleContext: Sendable {
    public let moduleID: String
    /// Envelope encryption under this module's key (`module:<id>`).
    public let sealer: Sealer
    /// Public addresses only, unless `ATRIUM_<MODULE>_OUTBOUND_ALLOW` allows more
    /// (`OutboundAddressPolicy`).
    public let http: OutboundHTTP
    public let links: SignedLinks
    public let clock: any AtriumClock
    /// `ATRIUM_<MODULE>_<NAME>` variables.
    public let settings: ModuleSettings
    /// Where this server is reached from outside (`ATRIUM_PUBLIC_URL`), for links in mail.
    public let publicURL: URL
    public let logger: Logger
}

/// What the kernel builds every module's context from: one per process.
public struct ModuleKit: Sendable {
    let masterKey: MasterKey
    public let publicURL: URL
    public let clock: any AtriumClock
    let environment: [String: String]
    let logger: Logger

    public init(
        masterKey: MasterKey, publicURL: URL, clock: any AtriumClock = SystemClock(), environment: [String: String] = [:], logger: Logger
    ) {
        self.masterKey = masterKey
        self.publicURL = publicURL
        self.clock = clock
        self.environment = environment
        self.logger = logger
    }

    /// A kit under a fresh random master key, for tests and tools whose sealed values
    /// need not outlive the process.
    public static func ephemeral(
        masterKey: MasterKey = .generate(), clock: any AtriumClock = SystemClock(), environment: [String: String] = [:], logger: Logger
    ) -> ModuleKit {
        ModuleKit(masterKey: masterKey, publicURL: Identity.defaultAppURL, clock: clock, environment: environment, logger: logger)
    }

    /// The context of module `moduleID`.
    public func context(for moduleID: String) -> ModuleContext {
        var logger = logger
        logger[metadataKey: "module"] = .string(moduleID)
        let settings = ModuleSettings(moduleID: moduleID, environment: environment)
        // A malformed value stopped start-up already (`AtriumConfiguration`); here it can
        // only fail closed.
        let policy = (try? OutboundAddressPolicy(setting: settings.variable("outbound_allow"), value: settings.string("outbound_allow"))) ?? .publicInternet
        return ModuleContext(
            moduleID: moduleID, sealer: masterKey.sealer(scope: "module:\(moduleID)"), http: OutboundHTTP(logger: logger, policy: policy),
            links: SignedLinks(moduleID: moduleID, masterKey: masterKey, publicURL: publicURL, clock: clock), clock: clock,
            settings: settings, publicURL: publicURL, logger: logger)
    }
}
