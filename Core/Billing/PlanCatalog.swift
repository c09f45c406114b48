public import Foundation
import Yams

/// One subscription plan: what a tenant may use, how fast, and what it pays.
public struct Plan: Sendable, Equatable {
    /// A named window of the rate limiter, as `RateLimit-Policy` reports it.
    public struct RateLimit: Sendable, Equatable {
        public var name: String
        public var limit: Int64
        public var windowSeconds: Int64
        public init(name: String, limit: Int64, windowSeconds: Int64) {
            self.name = name
            self.limit = limit
            self.windowSeconds = windowSeconds
        }
    }

    /// How one meter is priced on this plan.
    public struct MeterPrice: Sendable, Equatable {
        public var model: PriceModel
        public var freeUnits: Int64
    }

    public var id: String
    public var name: String
    public var currency: String
    /// The flat fee per month, in minor units.
    public var monthlyFee: Int64
    public var modules: Set<String>
    /// Limits by name (`seats`, `api_calls_per_month`, `crypto.exchanges`, …); a missing
    /// name is unlimited.
    public var quotas: [String: Int64]
    /// Limits on the whole tenant.
    public var rateLimits: [RateLimit]
    /// Limits on each user or API key of the tenant, on top of the tenant's.
    public var principalRateLimits: [RateLimit]
    public var meters: [String: MeterPrice]
}

/// The plan catalog, `tenants/plans.yaml`, validated as a whole with errors that name
/// the file and line of the offending entry.
public struct PlanCatalog: Sendable, Equatable {
    public var plans: [String: Plan]
    /// Meters declared by the catalog itself, for usage that outside services send
    /// through the batch ingestion route (modules declare their own in code).
    public var meters: [MeterDefinition] = []
    /// Limits on the sign-in routes, before anyone is authenticated: per client IP and
    /// per account (tenant and email).
    public var authRateLimits = AuthRateLimits()
    /// Limits per client IP on modules' public routes (`/v1/public/{tenant}/<module>/…`:
    /// booking forms, signed links), where no plan applies because nobody signed in.
    public var publicRateLimits: [Plan.RateLimit] = []

    public struct AuthRateLimits: Sendable, Equatable {
        public var perIP: [Plan.RateLimit] = []
        public var perAccount: [Plan.RateLimit] = []
        public init(perIP: [Plan.RateLimit] = [], perAccount: [Plan.RateLimit] = []) {
            self.perIP = perIP
            self.perAccount = perAccount
        }
    }

    public func plan(_ id: String) -> Plan? { plans[id] }

    /// Whether a tenant on `planID` may enable `module`; an unknown plan includes nothing.
    public func allows(_ module: String, on planID: String) -> Bool {
        plans[planID]?.modules.contains(module) ?? false
    }

    /// How logs and errors name the catalog built into the binary.
    public static let builtInSource = "the plan catalog built into this binary (the shipped tenants/plans.yaml)"

    /// The shipped `tenants/plans.yaml`, embedded at build time: what a server or a command
    /// uses where its tenants folder has no catalog, so that a missing file never means
    /// no limits.
    public static func builtIn(knownModules: Set<String>? = nil) throws -> PlanCatalog {
        try parse(EmbeddedPlanCatalog.yaml, path: "built-in plans.yaml", knownModules: knownModules)
    }

    /// Refuses a price for a meter nothing records: a plan's meter must be the kernel's, an
    /// installed module's (`AtriumModule.meters`) or declared at the catalog's top for
    /// outside services (`meters:`). A misspelt meter would otherwise bill nothing, silently.
    public func requireDeclaredMeters(registry: ModuleRegistry, source: String) throws(ConfigurationError) {
        let declared = Set((Metering.kernelMeters + registry.modules.flatMap(\.meters) + meters).map(\.name))
        let unknown = plans.values.flatMap { plan in plan.meters.keys.filter { !declared.contains($0) }.map { "\(plan.id): \($0)" } }.sorted()
        guard unknown.isEmpty else {
            throw ConfigurationError(
                "\(source) prices meters nothing records (\(unknown.joined(separator: "; "))): declare them in the module's meters "
                    + "or under `meters:` at the catalog's top")
        }
    }

    /// The quotas the kernel itself enforces.
    public static let kernelQuotas: Set<String> = ["seats", "api_calls_per_month"]

    public static func load(_ url: URL, knownModules: Set<String>? = nil) throws -> PlanCatalog {
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw ConfigurationError("cannot read the plan catalog \(url.path()): \(error.localizedDescription)")
        }
        return try parse(text, path: url.path(), knownModules: knownModules)
    }

    public static func parse(_ text: String, path: String, knownModules: Set<String>? = nil) throws -> PlanCatalog {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else { throw ConfigurationError("\(path): the plan catalog is empty") }
            root = node
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw ConfigurationError("\(path): not valid YAML: \(error)")
        }
        let reader = Reader(path: path)
        guard let plansNode = root.mapping?["plans"], let plansMapping = plansNode.mapping else {
            throw reader.error(root, "needs a `plans:` mapping")
        }
        let meters = try reader.meterDeclarations(root.mapping?["meters"], knownModules: knownModules)
        var plans: [String: Plan] = [:]
        for (key, node) in plansMapping {
            guard let id = key.string, id.range(of: "^[a-z][a-z0-9_-]{0,39}$", options: .regularExpression) != nil else {
                throw reader.error(key, "plan ids are lowercase letters, digits, '-' or '_'")
            }
            plans[id] = try reader.plan(id: id, node, knownModules: knownModules, declaredMeters: Set(meters.map(\.name)))
        }
        guard !plans.isEmpty else { throw reader.error(plansNode, "declares no plans") }
        let auth = root.mapping?["auth_rate_limits"]
        if let auth, auth.mapping == nil { throw reader.error(auth, "`auth_rate_limits:` has `per_ip:` and `per_account:` rate limits") }
        let authLimits = AuthRateLimits(
            perIP: try reader.rateLimits(auth?.mapping?["per_ip"]), perAccount: try reader.rateLimits(auth?.mapping?["per_account"]))
        let publicLimits = root.mapping?["public_rate_limits"]
        if let publicLimits, publicLimits.mapping == nil { throw reader.error(publicLimits, "`public_rate_limits:` has `per_ip:` rate limits") }
        return PlanCatalog(
            plans: plans, meters: meters, authRateLimits: authLimits, publicRateLimits: try reader.rateLimits(publicLimits?.mapping?["per_ip"]))
    }

    /// Reads nodes, failing with the file and line of the node at fault.
    struct Reader {
        let path: String

        func error(_ node: Node, _ message: String) -> ConfigurationError {
            ConfigurationError("\(path):\(node.mark.map { "\($0.line)" } ?? "?"): \(message)")
        }

        func integer(_ node: Node?, _ what: String, in parent: Node, minimum: Int64 = 0) throws -> Int64 {
            guard let node else { throw error(parent, "\(what) is required") }
            guard let text = node.scalar?.string, let value = Int64(text) else { throw error(node, "\(what) must be a whole number (minor units)") }
            guard value >= minimum else { throw error(node, "\(what) must be at least \(minimum), not \(value)") }
            return value
        }

        /// `meters: { name: { aggregation: sum, unit: analysis } }`: meters for outside
        /// services. Their names must not claim a module's or the kernel's prefix.
        func meterDeclarations(_ node: Node?, knownModules: Set<String>?) throws -> [MeterDefinition] {
            guard let node else { return [] }
            guard let mapping = node.mapping else { throw error(node, "`meters:` maps meter names to {aggregation, unit}") }
            var meters: [MeterDefinition] = []
            for (key, value) in mapping {
                guard let name = key.string, name.range(of: "^[a-z][a-z0-9_]*\\.[a-z0-9_.]+$", options: .regularExpression) != nil else {
                    throw error(key, "meter names are `<prefix>.<name>` in lowercase")
                }
                let prefix = String(name.prefix { $0 != "." })
                if prefix == "kernel" || knownModules?.contains(prefix) == true {
                    throw error(key, "meter '\(name)' uses the prefix of \(prefix == "kernel" ? "the kernel" : "module '\(prefix)'"), which declares its own meters")
                }
                guard let entry = value.mapping else { throw error(value, "meter '\(name)' needs {aggregation, unit}") }
                let aggregationText = entry["aggregation"]?.string ?? "sum"
                guard let aggregation = MeterDefinition.Aggregation(rawValue: aggregationText) else {
                    throw error(entry["aggregation"] ?? value, "aggregation must be count, sum, max, unique_count or latest, not '\(aggregationText)'")
                }
                meters.append(MeterDefinition(name, aggregation: aggregation, unit: entry["unit"]?.string ?? "unit"))
            }
            return meters.sorted { $0.name < $1.name }
        }

        func plan(id: String, _ node: Node, knownModules: Set<String>?, declaredMeters: Set<String>) throws -> Plan {
            guard let mapping = node.mapping else { throw error(node, "plan '\(id)' must be a mapping") }
            let currency = mapping["currency"]?.string ?? "USD"
            guard Money.isCurrencyCode(currency) else { throw error(mapping["currency"] ?? node, "currency must be an ISO 4217 code such as USD") }
            var modules: Set<String> = []
            for moduleNode in mapping["modules"]?.sequence ?? [] {
                guard let module = moduleNode.string else { throw error(moduleNode, "module ids are strings") }
                if let knownModules, !knownModules.contains(module) { throw error(moduleNode, "unknown module '\(module)'") }
                modules.insert(module)
            }
            var quotas: [String: Int64] = [:]
            for (key, value) in mapping["quotas"]?.mapping ?? [:] {
                guard let name = key.string else { throw error(key, "quota names are strings") }
                // A quota nothing enforces would promise a limit that does not hold: the
                // kernel's own, or `<module>.<name>` of a module this binary has.
                if let knownModules, !PlanCatalog.kernelQuotas.contains(name) {
                    let module = name.split(separator: ".", maxSplits: 1).first.map(String.init) ?? name
                    guard name.contains("."), knownModules.contains(module) else {
                        throw error(
                            key, "unknown quota '\(name)': the kernel's are \(PlanCatalog.kernelQuotas.sorted().joined(separator: ", ")), "
                                + "a module's are <module>.<name> of an installed module")
                    }
                }
                quotas[name] = try integer(value, "quota \(name)", in: key)
            }
            let limits = try rateLimits(mapping["rate_limits"])
            let principalLimits = try rateLimits(mapping["principal_rate_limits"])
            if let clash = principalLimits.first(where: { limit in limits.contains { $0.name == limit.name } }) {
                throw error(mapping["principal_rate_limits"] ?? node, "principal rate limit '\(clash.name)' has the name of a tenant rate limit; the headers need distinct names")
            }
            var meters: [String: Plan.MeterPrice] = [:]
            for (key, value) in mapping["meters"]?.mapping ?? [:] {
                guard let meter = key.string else { throw error(key, "meter names are strings") }
                if let module = meter.split(separator: ".").first.map(String.init), let knownModules, module != "kernel", !knownModules.contains(module),
                    !declaredMeters.contains(meter)
                {
                    throw error(key, "meter '\(meter)' belongs to unknown module '\(module)'")
                }
                meters[meter] = try price(value, meter: meter)
            }
            return Plan(
                id: id, name: mapping["name"]?.string ?? id, currency: currency,
                monthlyFee: try integer(mapping["price"] ?? Node("0"), "price", in: node), modules: modules, quotas: quotas,
                rateLimits: limits, principalRateLimits: principalLimits, meters: meters)
        }

        /// `name: {limit: N, window: SECONDS}` entries, shortest window first.
        func rateLimits(_ node: Node?) throws -> [Plan.RateLimit] {
            guard let node else { return [] }
            guard let mapping = node.mapping else { throw error(node, "rate limits map names to {limit: N, window: SECONDS}") }
            var limits: [Plan.RateLimit] = []
            for (key, value) in mapping {
                guard let name = key.string, name.range(of: "^[a-z][a-z0-9_-]*$", options: .regularExpression) != nil, let entry = value.mapping else {
                    throw error(key, "a rate limit is `name: {limit: N, window: SECONDS}` with a lowercase name")
                }
                limits.append(Plan.RateLimit(
                    name: name, limit: try integer(entry["limit"], "limit", in: value, minimum: 1),
                    windowSeconds: try integer(entry["window"], "window", in: value, minimum: 1)))
            }
            return limits.sorted { $0.windowSeconds < $1.windowSeconds }
        }

        func price(_ node: Node, meter: String) throws -> Plan.MeterPrice {
            guard let mapping = node.mapping else { throw error(node, "meter '\(meter)' needs a price model") }
            let free = try mapping["free_units"].map { try integer($0, "free_units", in: node) } ?? 0
            let model: PriceModel
            if let unit = mapping["per_unit"] {
                model = .perUnit(unitAmount: try integer(unit, "per_unit", in: node))
            } else if let millis = mapping["per_unit_millis"] {
                model = .perUnitDecimal(unitAmountMillis: try integer(millis, "per_unit_millis", in: node))
            } else if let tiers = mapping["graduated"] {
                model = .graduated(try self.tiers(tiers))
            } else if let tiers = mapping["volume"] {
                model = .volume(try self.tiers(tiers))
            } else if let package = mapping["package"]?.mapping {
                model = .package(size: try integer(package["size"], "package size", in: node, minimum: 1), amount: try integer(package["amount"], "package amount", in: node))
            } else {
                throw error(node, "meter '\(meter)' needs one of per_unit, per_unit_millis, graduated, volume or package")
            }
            if let problem = model.problems.first { throw error(node, "meter '\(meter)': \(problem)") }
            return Plan.MeterPrice(model: model, freeUnits: free)
        }

        func tiers(_ node: Node) throws -> [PriceModel.Tier] {
            guard let sequence = node.sequence else { throw error(node, "tiers are a list of {up_to, unit, flat}") }
            return try sequence.map { tier in
                guard let entry = tier.mapping else { throw error(tier, "a tier is {up_to, unit, flat}") }
                let upTo = try entry["up_to"].map { try integer($0, "up_to", in: tier, minimum: 1) }
                return PriceModel.Tier(
                    upTo: upTo, unitAmount: try integer(entry["unit"] ?? Node("0"), "unit", in: tier),
                    flatAmount: try integer(entry["flat"] ?? Node("0"), "flat", in: tier))
            }
        }
    }
}
