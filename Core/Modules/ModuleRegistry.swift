import ArgumentParser
/// The validated set of installed modules.
///
/// Validation happens once at start-up and refuses to start on any conflict, with a
/// message naming the module and the problem, because a half-consistent plugin set
/// fails later in ways that are far harder to read.
public struct ModuleRegistry: Sendable {
    public let modules: [any AtriumModule]

    /// Ids the kernel keeps for its own routes and meters.
    static let reservedIDs: Set<String> = ["kernel", "auth", "admin", "billing", "jobs", "modules", "tenants", "public"]

    /// The kernel's CLI commands, beside which a module's `atrium <id>` is mounted.
    static let kernelCommands: Set<String> = [
        "serve", "worker", "migrate", "doctor", "db", "tenants", "users", "roles", "api-keys", "audit", "modules", "oidc", "jobs", "keys",
        "invoices", "billing", "usage", "bench", "help", "login", "logout", "whoami", "context", "api", "sessions",
    ]

    /// Validates `modules` and orders them so every module follows its dependencies.
    public init(_ modules: [any AtriumModule], kernelVersion: String = AtriumVersion.kernel) throws(ConfigurationError) {
        var problems: [String] = []
        var byID: [String: any AtriumModule] = [:]
        for module in modules {
            if byID[module.id] != nil {
                problems.append("module id '\(module.id)' is registered twice")
            }
            byID[module.id] = module
        }
        for module in modules {
            let id = module.id
            if !Self.isIdentifier(id) {
                problems.append("module id '\(id)' must be lowercase letters, digits and underscores, starting with a letter")
            }
            if Self.reservedIDs.contains(id) {
                problems.append("module id '\(id)' is reserved by the kernel")
            }
            if !Self.kernelVersion(kernelVersion, satisfies: module.requiredKernelVersion) {
                problems.append("module '\(id)' needs kernel \(module.requiredKernelVersion), this kernel is \(kernelVersion)")
            }
            for dependency in module.dependencies where byID[dependency] == nil {
                problems.append("module '\(id)' depends on '\(dependency)', which is not installed")
            }
            let prefix = id + "."
            var seen: Set<String> = []
            for permission in module.permissions.map(\.name) {
                if !permission.hasPrefix(prefix) { problems.append("permission '\(permission)' of module '\(id)' must start with '\(prefix)'") }
                if !seen.insert(permission).inserted { problems.append("permission '\(permission)' of module '\(id)' is declared twice") }
            }
            for (role, granted) in module.roleGrants {
                for permission in granted where !seen.contains(permission) {
                    problems.append("module '\(id)' grants undeclared permission '\(permission)' to role '\(role)'")
                }
            }
            for meter in module.meters.map(\.name) where !meter.hasPrefix(prefix) {
                problems.append("meter '\(meter)' of module '\(id)' must start with '\(prefix)'")
            }
            for channel in module.channels where !channel.hasPrefix(prefix) || !TenantTransaction.isChannel(channel) {
                problems.append("realtime channel '\(channel)' of module '\(id)' must be '\(prefix)<name>' (lowercase letters, digits, '_' and '.')")
            }
            for job in module.jobs.map(\.kind) where !job.hasPrefix(prefix) {
                problems.append("job kind '\(job)' of module '\(id)' must start with '\(prefix)'")
            }
            for command in module.commands where command._commandName != id {
                problems.append("command '\(command._commandName)' of module '\(id)' must be named '\(id)'")
            }
            if !module.commands.isEmpty, Self.kernelCommands.contains(id) {
                problems.append("module '\(id)' cannot add the command 'atrium \(id)': the kernel has one of that name")
            }
            if module.commands.count > 1 { problems.append("module '\(id)' declares \(module.commands.count) commands; one group named '\(id)' holds them all") }
            let kinds = Set(module.jobs.map(\.kind))
            for schedule in module.schedules {
                if !schedule.name.hasPrefix(prefix) { problems.append("schedule '\(schedule.name)' of module '\(id)' must start with '\(prefix)'") }
                if !kinds.contains(schedule.kind) { problems.append("schedule '\(schedule.name)' of module '\(id)' runs unknown job kind '\(schedule.kind)'") }
            }
        }
        var ordered: [any AtriumModule] = []
        if problems.isEmpty {
            switch Self.dependencyOrder(byID) {
            case .success(let order): ordered = order
            case .failure(let cycle): problems.append("modules depend on each other in a cycle: \(cycle.joined(separator: " -> "))")
            }
        }
        guard problems.isEmpty else {
            throw ConfigurationError("invalid module set: " + problems.joined(separator: "; "))
        }
        self.modules = ordered
    }

    public func module(_ id: String) -> (any AtriumModule)? {
        modules.first { $0.id == id }
    }

    /// Every migration: the kernel's first, then each module's in dependency order.
    /// Every realtime channel the installed modules declare.
    public var channels: Set<String> { Set(modules.flatMap(\.channels)) }

    public func allMigrations() throws -> [Migration] {
        var all = try Migration.kernel()
        for module in modules {
            let migrations = try module.migrations()
            if let stray = migrations.first(where: { $0.owner != module.id }) {
                throw ConfigurationError("module '\(module.id)' returned migration \(stray.fileName) owned by '\(stray.owner)'")
            }
            all += migrations
        }
        return all
    }

    /// Every job kind of every module.
    public var jobDefinitions: [JobDefinition] { modules.flatMap(\.jobs) }
    public var scheduleDefinitions: [ScheduleDefinition] { modules.flatMap(\.schedules) }

    // MARK: - Rules

    static func isIdentifier(_ id: String) -> Bool {
        guard let first = id.first, first.isASCII, first.isLowercase, id.count <= 40 else { return false }
        return id.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") }
    }

    /// A module written for kernel "0.1" runs on any 0.1.x; from 1.0 on, on any 1.x at or above.
    static func kernelVersion(_ kernel: String, satisfies required: String) -> Bool {
        let have = kernel.split(separator: ".").compactMap { Int($0) }
        let need = required.split(separator: ".").compactMap { Int($0) }
        guard have.count >= 2, need.count >= 2 else { return false }
        if need[0] == 0 { return have[0] == 0 && have[1] == need[1] }
        return have[0] == need[0] && have[1] >= need[1]
    }

    private static func dependencyOrder(_ byID: [String: any AtriumModule]) -> Result<[any AtriumModule], CycleError> {
        var ordered: [any AtriumModule] = []
        var state: [String: Bool] = [:]  // false: visiting, true: done
        func visit(_ id: String, _ path: [String]) -> [String]? {
            if state[id] == true { return nil }
            if state[id] == false { return path + [id] }
            state[id] = false
            guard let module = byID[id] else { return nil }
            for dependency in module.dependencies.sorted() {
                if let cycle = visit(dependency, path + [id]) { return cycle }
            }
            state[id] = true
            ordered.append(module)
            return nil
        }
        for id in byID.keys.sorted() {
            if let cycle = visit(id, []) { return .failure(CycleError(cycle)) }
        }
        return .success(ordered)
    }

    private struct CycleError: Error {
        var path: [String]
        init(_ path: [String]) { self.path = path }
        func joined(separator: String) -> String { path.joined(separator: separator) }
    }
}
