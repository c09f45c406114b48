public import ArgumentParser

/// A feature module: everything it adds to the platform, declared in one place.
///
/// The kernel reads these declarations at start-up, validates the whole set (see
/// ``ModuleRegistry``), applies the migrations, mounts the routes under
/// `/v1/tenants/{tenant}/{id}/` behind authentication, enablement and permission
/// checks, and runs the jobs and schedules. A module talks to the kernel only
/// through `AtriumCore`'s public API.
public protocol AtriumModule: Sendable {
    /// Lowercase identifier; also the URL segment and the prefix of its permissions and meters.
    var id: String { get }
    var version: String { get }
    /// The kernel major.minor this module was written against (for example "0.1").
    var requiredKernelVersion: String { get }
    /// Ids of modules that must be installed alongside this one.
    var dependencies: [String] { get }
    /// Permissions this module checks, each named `<id>.<...>`.
    var permissions: [PermissionDefinition] { get }
    /// Permissions granted to roles by default: built-in roles (`owner`, `admin`,
    /// `member`) or roles the module introduces.
    var roleGrants: [String: [String]] { get }
    /// Usage meters this module records, each named `<id>.<...>`.
    var meters: [MeterDefinition] { get }
    /// Realtime channels this module notifies and streams (`transaction.notify`,
    /// `request.eventStream`), each named `<id>.<...>`: a channel no installed module
    /// declares is refused when used, and a misnamed one when the server starts.
    var channels: [String] { get }
    /// The module's SQL migrations, normally `Migration.fromFiles(EmbeddedMigrations.files, owner: id)`.
    func migrations() throws -> [Migration]
    /// Routes mounted at `/v1/tenants/{tenant}/{id}/`, reached by authenticated principals.
    func routes(_ routes: ModuleRoutes)
    /// Unauthenticated tenant-scoped routes (for example a public booking form), mounted at
    /// `/v1/public/{tenant}/{id}/`.
    func publicRoutes(_ routes: ModuleRoutes)
    /// Job kinds this module handles, each named `<id>.<...>`.
    var jobs: [JobDefinition] { get }
    /// Recurring schedules; per-tenant schedules fan out only to tenants with the module enabled.
    var schedules: [ScheduleDefinition] { get }
    /// Re-wraps the module's sealed values of one tenant under `sealer`'s current key
    /// (`sealer.rewrap` returns nil for a value already there), in `transaction`, which
    /// sees every owner's rows; returns how many it changed. `atrium keys rotate-master`
    /// calls it for every tenant; it must be safe to run again.
    func rewrapSecrets(_ sealer: Sealer, on transaction: TenantTransaction) async throws -> Int
    /// Called when the tenant moves to another plan, in the plan change's transaction,
    /// for each installed module the tenant keeps enabled: the tenant's plan (and its
    /// quotas, `plan_quotas`) are the new ones already, and `transaction` sees every
    /// owner's rows. For data the plan limits, so that a downgrade takes effect with the
    /// change rather than at the next scheduled job (pausing connections beyond a new
    /// count; an upgrade resuming them). A thrown error rolls the plan change back.
    func planChanged(to plan: String, on transaction: TenantTransaction) async throws
    /// The module's operator commands: at most one, named after the module, which
    /// `atrium` mounts as `atrium <id> …` (its subcommands take `GlobalOptions`).
    var commands: [any ParsableCommand.Type] { get }
    /// Reads every setting the module will read (`settings.url("llm_url")`, …) and throws
    /// on a malformed one: `atrium serve` (and every command that builds the application)
    /// refuses to start naming the variable, rather than fail at the first request or
    /// fall back to a default the operator did not choose.
    func checkSettings(_ settings: ModuleSettings) throws
}

extension AtriumModule {
    public var dependencies: [String] { [] }
    public var permissions: [PermissionDefinition] { [] }
    public var roleGrants: [String: [String]] { [:] }
    public var meters: [MeterDefinition] { [] }
    public var channels: [String] { [] }
    public func migrations() throws -> [Migration] { [] }
    public func publicRoutes(_ routes: ModuleRoutes) {}
    public var jobs: [JobDefinition] { [] }
    public var schedules: [ScheduleDefinition] { [] }
    public var commands: [any ParsableCommand.Type] { [] }
    public func checkSettings(_ settings: ModuleSettings) throws {}
    public func rewrapSecrets(_ sealer: Sealer, on transaction: TenantTransaction) async throws -> Int { 0 }
    public func planChanged(to plan: String, on transaction: TenantTransaction) async throws {}
}

/// A permission in the catalog that tenant admins build roles from.
public struct PermissionDefinition: Sendable, Equatable, Codable {
    public var name: String
    public var description: String
    public init(_ name: String, description: String) {
        self.name = name
        self.description = description
    }
}

/// A usage meter a module records against.
public struct MeterDefinition: Sendable, Equatable, Codable {
    public enum Aggregation: String, Sendable, Codable {
        case count, sum, max
        case uniqueCount = "unique_count"
        case latest
    }

    public var name: String
    public var aggregation: Aggregation
    public var unit: String
    public init(_ name: String, aggregation: Aggregation, unit: String) {
        self.name = name
        self.aggregation = aggregation
        self.unit = unit
    }
}
