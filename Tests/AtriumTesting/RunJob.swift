public import AtriumCore
public import Foundation

/// Runs one job of `module` as a worker would run it (its declared handler, a `JobContext`
/// for `tenantID` with the module's context), without a worker, a queue row or a poll:
/// a module's job tested as a function. The handler's errors are thrown as they are.
///
/// `clock` and `environment` are what the module's context reads (`context.module.clock`,
/// `context.module.settings`), as `withTestApplication` gives them to routes; `masterKey`
/// is the one its sealer derives from (`db.masterKey` opens what the test application sealed).
public func runJob(
    _ kind: String, of module: any AtriumModule, tenantID: UUID?, payload: some Encodable, database: Database,
    clock: any AtriumClock = SystemClock(), environment: [String: String] = [:], masterKey: MasterKey = .generate()
) async throws {
    // As `transaction.enqueue(kind, payload:)` stores it: the API's JSON conventions.
    try await runJob(kind, of: module, tenantID: tenantID, payload: try AtriumJSON.encoder.encode(payload), database: database, clock: clock,
                     environment: environment, masterKey: masterKey)
}

private func runJob(
    _ kind: String, of module: any AtriumModule, tenantID: UUID?, payload: Data, database: Database, clock: any AtriumClock,
    environment: [String: String], masterKey: MasterKey
) async throws {
    guard let definition = module.jobs.first(where: { $0.kind == kind }) else {
        throw ConfigurationError("module '\(module.id)' declares no job '\(kind)'; it declares \(module.jobs.map(\.kind))")
    }
    try await definition.handler(
        try jobContext(kind, of: module, tenantID: tenantID, payload: payload, database: database, clock: clock, environment: environment, masterKey: masterKey))
}

/// A job's context as a worker builds it, for code that takes one (a module's operator
/// routines, `GlobalOptions.withJobContext` in a command) run from a test.
public func jobContext(
    _ kind: String, of module: any AtriumModule, tenantID: UUID?, payload: Data = Data("{}".utf8), database: Database,
    clock: any AtriumClock = SystemClock(), environment: [String: String] = [:], masterKey: MasterKey
) throws -> JobContext {
    let kit = ModuleKit(
        masterKey: masterKey, publicURL: Identity.defaultAppURL, clock: clock, environment: environment, logger: TestDatabase.logger)
    return JobContext(
        kind: kind, tenantID: tenantID, payload: payload, logger: TestDatabase.logger, database: database,
        metering: Metering(registry: try ModuleRegistry([module]), logger: TestDatabase.logger), channels: Set(module.channels),
        module: kit.context(for: module.id))
}

/// Runs a typed job (`JobKind`) of `module` with `payload`, as `runJob(_:of:…)` does.
public func runJob<Payload>(
    _ kind: JobKind<Payload>, of module: any AtriumModule, tenantID: UUID?, payload: Payload, database: Database,
    clock: any AtriumClock = SystemClock(), environment: [String: String] = [:], masterKey: MasterKey = .generate()
) async throws {
    // As `transaction.enqueue(kind, payload)` stores it: Swift's own key names.
    try await runJob(kind.name, of: module, tenantID: tenantID, payload: try JSONEncoder().encode(payload), database: database, clock: clock,
                     environment: environment, masterKey: masterKey)
}
