public import Foundation

/// How an Atrium process is configured, read once from the environment (and the
/// command line's overrides), so that `serve`, `worker` and the tests build their
/// process from one value through `AtriumRuntime.prepare`.
///
/// | variable | default |
/// | --- | --- |
/// | `ATRIUM_HOST`, `ATRIUM_PORT`, `ATRIUM_MAX_BODY_BYTES` | 127.0.0.1, 8080, 1048576 |
/// | `ATRIUM_CORS_ORIGINS`, `ATRIUM_TRUSTED_PROXIES` | none (comma-separated lists) |
/// | `ATRIUM_DB_CONNECTIONS` | 29 on two cores (see `ConnectionBudget`) |
/// | `ATRIUM_PUBLIC_URL`, `ATRIUM_APP_URL` | the listening address, `Identity.defaultAppURL` |
/// | `ATRIUM_RATE_LIMIT_STORE` | `memory` (per process) or `postgres` (shared) |
/// | `ATRIUM_OPERATOR_TOKEN` | unset: `/v1/operator` is not served |
/// | `ATRIUM_ARGON2_MEMORY_KIB`, `ATRIUM_ARGON2_ITERATIONS`, `ATRIUM_ARGON2_PARALLELISM` | 19456, 2, 1 |
/// | `ATRIUM_ACCESS_TOKEN_TTL` | 900 s |
/// | `ATRIUM_OUTBOUND_ALLOW`, `ATRIUM_<MODULE>_OUTBOUND_ALLOW` | none: public addresses only (`OutboundAddressPolicy`) |
/// | `ATRIUM_OUTBOUND_CONCURRENCY` | 16 outbound calls in flight per process |
/// | `ATRIUM_REFRESH_INACTIVITY` / `ATRIUM_SESSION_LIFETIME` / `ATRIUM_REFRESH_GRACE` | 7 days / 30 days / 10 s |
/// | `ATRIUM_VERIFY_TOKEN_TTL` / `ATRIUM_RESET_TOKEN_TTL` / `ATRIUM_INVITE_TOKEN_TTL` | 24 h / 30 min / 7 days |
///
/// Every malformed value is refused at start with the variable's name, never defaulted.
public struct AtriumConfiguration: Sendable {
    public var server: ServerConfiguration
    /// The connections this process opens in all (`ConnectionBudget` splits them among
    /// its pools). An authenticated request holds one of its loop's from its credential
    /// check to its commit, so they bound the requests in the database at once; a few per
    /// core keep PostgreSQL busy without queueing.
    public var connections: Int
    /// Where this server is reached from outside: OIDC callbacks, signed links.
    public var publicURL: URL
    /// The web application, for the links of account emails.
    public var appURL: URL
    public var hashing: PasswordHasher.Parameters
    public var sessions: SessionSettings
    public var emailTokenLifetimes: [EmailTokens.Purpose: TimeInterval]
    /// Rate-limit state in PostgreSQL, shared by every process, instead of in memory.
    public var sharedRateLimits: Bool
    public var operatorToken: String?
    /// Which addresses the kernel's own outbound calls (OIDC providers, billing webhooks)
    /// may reach; modules have their own setting (`ModuleKit`).
    public var outbound: OutboundAddressPolicy
    /// The plan catalog (`plans.yaml` of the tenants folder, or the one built into the
    /// binary where that folder has none); nil only where no plans file was asked for (tests).
    public var plans: PlanCatalog?
    /// Where `plans` came from: the file's path, or `PlanCatalog.builtInSource`.
    public var plansSource: String?
    /// The wall clock modules read (`context.clock`): the system's, or one a test moves.
    public var clock: any AtriumClock = SystemClock()
    /// Where the embedded database and the mail directory live.
    public var dataDirectory: URL
    /// Module settings (`ATRIUM_<MODULE>_<NAME>`), SMTP and master keys are read from it.
    public var environment: [String: String]

    /// Reads the environment; `host`, `port` and `maxBodyBytes` are the command line's
    /// overrides. `plansFile` is loaded when it exists, checked against `registry`.
    public init(
        environment: [String: String], registry: ModuleRegistry, dataDirectory: URL, plansFile: URL? = nil, host: String? = nil, port: Int? = nil,
        maxBodyBytes: Int? = nil
    ) throws {
        let reader = EnvironmentReader(environment)
        server = ServerConfiguration(
            host: host ?? environment["ATRIUM_HOST"] ?? "127.0.0.1",
            port: try port ?? reader.integer("ATRIUM_PORT", in: 0...65535) ?? 8080,
            maxBodySize: try maxBodyBytes ?? reader.integer("ATRIUM_MAX_BODY_BYTES", in: 1024...(1 << 34)) ?? 1 << 20,
            corsOrigins: Set(reader.list("ATRIUM_CORS_ORIGINS")),
            trustedProxies: TrustedProxies(reader.list("ATRIUM_TRUSTED_PROXIES")))
        if environment["ATRIUM_DB_POOL_SIZE"] != nil {
            throw ConfigurationError("ATRIUM_DB_POOL_SIZE is now ATRIUM_DB_CONNECTIONS: the connections a process opens in all (29 on two cores)")
        }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        connections = try reader.integer("ATRIUM_DB_CONNECTIONS", in: ConnectionBudget.minimum(loops: cores)...1000)
            ?? ConnectionBudget.defaultTotal(cores: cores, loops: cores)
        publicURL = try reader.url("ATRIUM_PUBLIC_URL") ?? URL(string: "http://\(server.host):\(server.port)") ?? Identity.defaultAppURL
        appURL = try reader.url("ATRIUM_APP_URL") ?? Identity.defaultAppURL
        hashing = try Self.hashing(environment)
        sessions = SessionSettings()
        if let value = try reader.seconds("ATRIUM_ACCESS_TOKEN_TTL", in: 60...86400) { sessions.accessTokenLifetime = value }
        if let value = try reader.seconds("ATRIUM_REFRESH_INACTIVITY", in: 300...31_536_000) { sessions.refreshInactivity = value }
        if let value = try reader.seconds("ATRIUM_SESSION_LIFETIME", in: 300...31_536_000) { sessions.sessionLifetime = value }
        if let value = try reader.seconds("ATRIUM_REFRESH_GRACE", in: 0...120) { sessions.refreshGrace = value }
        emailTokenLifetimes = [:]
        if let value = try reader.seconds("ATRIUM_VERIFY_TOKEN_TTL", in: 60...2_592_000) { emailTokenLifetimes[.verifyEmail] = value }
        if let value = try reader.seconds("ATRIUM_RESET_TOKEN_TTL", in: 60...86400) { emailTokenLifetimes[.resetPassword] = value }
        if let value = try reader.seconds("ATRIUM_INVITE_TOKEN_TTL", in: 60...2_592_000) { emailTokenLifetimes[.invitation] = value }
        switch environment["ATRIUM_RATE_LIMIT_STORE"] ?? "memory" {
        case "memory": sharedRateLimits = false
        case "postgres": sharedRateLimits = true
        case let other: throw ValidationFailure("ATRIUM_RATE_LIMIT_STORE must be memory or postgres, not '\(other)'")
        }
        operatorToken = environment["ATRIUM_OPERATOR_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        outbound = try OutboundAddressPolicy(setting: "ATRIUM_OUTBOUND_ALLOW", value: environment["ATRIUM_OUTBOUND_ALLOW"])
        for (name, value) in environment where name.hasPrefix("ATRIUM_") && name.hasSuffix("_OUTBOUND_ALLOW") {
            _ = try OutboundAddressPolicy(setting: name, value: value)
        }
        _ = try reader.integer("ATRIUM_OUTBOUND_CONCURRENCY", in: 1...256)
        // Fail closed: a server whose folder has no plans.yaml (started from another folder,
        // a file not deployed) serves the shipped catalog, with its limits and quotas, never
        // none at all.
        let knownModules = Set(registry.modules.map(\.id))
        if let plansFile {
            if FileManager.default.fileExists(atPath: plansFile.path()) {
                plans = try PlanCatalog.load(plansFile, knownModules: knownModules)
                plansSource = plansFile.path()
            } else {
                plans = try PlanCatalog.builtIn(knownModules: knownModules)
                plansSource = PlanCatalog.builtInSource
            }
            try plans?.requireDeclaredMeters(registry: registry, source: plansSource ?? plansFile.path())
        }
        self.dataDirectory = dataDirectory
        self.environment = environment
    }
}

extension AtriumConfiguration: CustomStringConvertible {
    /// A summary without the environment, which holds secrets (the master key, SMTP
    /// credentials, the operator token): a logged or printed configuration shows none.
    public var description: String {
        "AtriumConfiguration(\(server.host):\(server.port), connections \(connections), public \(publicURL.absoluteString), "
            + "plans \(plans == nil ? "none" : "loaded"), rate limits \(sharedRateLimits ? "postgres" : "memory"), "
            + "operator API \(operatorToken == nil ? "off" : "on"))"
    }

    /// The Argon2id parameters of the environment, for commands that hash a password
    /// (creating a user) without building a whole process.
    public static func hashing(_ environment: [String: String]) throws -> PasswordHasher.Parameters {
        let reader = EnvironmentReader(environment)
        var hashing = PasswordHasher.Parameters()
        if let memory = try reader.integer("ATRIUM_ARGON2_MEMORY_KIB", in: 8...4_194_304) { hashing.memoryKiB = UInt32(memory) }
        if let iterations = try reader.integer("ATRIUM_ARGON2_ITERATIONS", in: 1...100) { hashing.iterations = UInt32(iterations) }
        if let parallelism = try reader.integer("ATRIUM_ARGON2_PARALLELISM", in: 1...64) { hashing.parallelism = UInt32(parallelism) }
        return hashing
    }
}

/// Typed, range-checked reads of environment variables.
struct EnvironmentReader {
    let environment: [String: String]

    init(_ environment: [String: String]) {
        self.environment = environment
    }

    private func text(_ name: String) -> String? {
        environment[name].flatMap { $0.isEmpty ? nil : $0 }
    }

    func integer(_ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let text = text(name) else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw ValidationFailure("\(name) must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    func seconds(_ name: String, in range: ClosedRange<Double>) throws -> TimeInterval? {
        guard let text = text(name) else { return nil }
        guard let value = Double(text), range.contains(value) else {
            throw ValidationFailure("\(name) must be a number of seconds from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    func url(_ name: String) throws -> URL? {
        guard let text = text(name) else { return nil }
        guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https", url.host() != nil else {
            throw ValidationFailure("\(name) must be an http(s) URL")
        }
        return url
    }

    /// A comma-separated setting as a list.
    func list(_ name: String) -> [String] {
        (environment[name] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}
