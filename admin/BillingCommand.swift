import ArgumentParser
import AtriumCore
import Foundation
import HTTPTypes
import Logging
import PostgresNIO

struct BillingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "billing", abstract: "Check billing data and set where tenants' billing webhooks go.",
        subcommands: [Reconcile.self, Subscription.self, Webhook.self])

    struct Reconcile: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Prove that usage events, counters and invoiced quantities agree, per tenant and month; name every difference.",
            discussion: "Exits 1 when a counter or a finalized invoice disagrees with the events. Late usage awaiting its adjustment is listed but is not a failure.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only this tenant (default: all).") var tenant: String?
        @Option(help: "The month, YYYY-MM (default: every month with usage or an invoice).") var period: String?
        @Option(help: "The plan catalog.") var plans: String = "tenants/plans.yaml"
        @Flag(help: "Print JSON.") var json = false

        struct TenantReport: Encodable {
            var tenant: String
            var report: Reconciliation.Report
        }

        func run() async throws {
            let logger = global.logger(defaultLevel: .warning)
            let registry = try ModulesCommand.registry()
            let catalog = try TenantsCommand.catalog(plans, registry: registry)
            let reconciliation = Reconciliation(metering: Metering(registry: registry, catalog: catalog, logger: logger), logger: logger)
            let month = try period.map { text in try CommandErrors.mappedSync { try Metering.period(text) } }
            let only = tenant
            let reports = try await TenantsCommand.withOwner(global, logger: logger) { connection, _ in
                let tenants = try await TenantStore(logger: logger).list(on: connection).filter { only == nil || $0.slug == only }
                if let only, tenants.isEmpty { throw ValidationFailure("no tenant named '\(only)'") }
                var reports: [TenantReport] = []
                for tenant in tenants {
                    try await connection.withTenantTransaction(tenant.id, logger: logger) { connection in
                        var months: [Date] = []
                        if let month {
                            months = [month]
                        } else {
                            let rows = try await connection.query(
                                "SELECT period::timestamptz FROM usage_totals UNION SELECT period::timestamptz FROM invoices ORDER BY 1", logger: logger)
                            for try await period in rows.decode(Date.self) { months.append(period) }
                        }
                        for period in months {
                            reports.append(TenantReport(tenant: tenant.slug, report: try await reconciliation.run(period: period, on: connection)))
                        }
                    }
                }
                return reports
            }
            if json {
                try Console.json(reports)
            } else {
                Console.table(["tenant", "period", "meters", "events", "invoice", "result"], reports.map { entry in
                    [entry.tenant, entry.report.period, String(entry.report.meters), String(entry.report.events), entry.report.invoice ?? "-",
                     entry.report.differences.isEmpty ? "agree" : entry.report.consistent ? "late usage pending" : "DIFFERENCES"]
                })
                for entry in reports {
                    for difference in entry.report.differences {
                        Console.line("\(entry.tenant) \(entry.report.period) \(difference.meter): \(difference.kind.rawValue): \(difference.detail)")
                    }
                }
            }
            if reports.contains(where: { !$0.report.consistent }) { throw ExitCode(1) }
        }
    }

    struct Subscription: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The tenant's plan, subscription status, quotas and current period (remote, as the logged-in admin).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var mode: RemoteModeOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            guard var client = try mode.client(global) else {
                throw RemoteFailure.usage("this reads a tenant's subscription through a server: log in first; on this machine, `atrium tenants show SLUG`")
            }
            let view = try await client.json(.get, "billing/subscription", as: SubscriptionView.self)
            if json { return try Console.json(view) }
            let fee = view.monthlyFee.map { Money(minorUnits: $0, currency: view.currency ?? "USD").description } ?? "-"
            Console.line("plan:    \(view.plan)\(view.planName.map { " (\($0))" } ?? "")  \(fee) a month")
            Console.line("status:  \(view.status)\(view.trialEndsAt.map { ", trial ends \(Console.timestamp($0))" } ?? "")")
            Console.line("period:  \(Console.timestamp(view.currentPeriodStart)) to \(Console.timestamp(view.currentPeriodEnd))")
            for (quota, limit) in view.quotas.sorted(by: { $0.key < $1.key }) { Console.line("quota:   \(quota) \(limit)") }
        }
    }

    struct Webhook: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set, show or remove the URL a tenant's billing events (invoice.finalized) go to.",
            discussion: "Setting prints the endpoint's signing secret once; see the README for verifying the Atrium-Signature header.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var mode: RemoteModeOptions
        @Option(help: "The tenant (this machine's database; a login's own tenant otherwise).") var tenant: String?
        @Option(help: "The URL to send events to (http or https).") var url: String?
        @Flag(help: "Stop sending events.") var remove = false

        struct Endpoint: Codable {
            var url: String
            var updatedAt: Date?
            var secret: String?
        }

        /// The endpoint the server has, nil when it has none (404).
        static func endpoint(_ client: inout RemoteClient) async throws -> Endpoint? {
            var found: Endpoint?
            do {
                found = try await client.json(.get, "billing/webhook", as: Endpoint.self)
            } catch {
                guard error.status == 404 else { throw error }
            }
            return found
        }

        func run() async throws {
            if var client = try mode.client(global) {
                try RemoteModeOptions.check(tenant, against: client)
                let slug = client.context.tenant
                if remove {
                    _ = try await client.send(.delete, "billing/webhook")
                    return Console.line("\(slug): webhook removed")
                }
                if let url {
                    let set = try await client.json(.put, "billing/webhook", body: ["url": url], as: Endpoint.self)
                    return Console.line("\(slug): events go to \(set.url)\nsigning secret (shown once): \(set.secret ?? "-")")
                }
                guard let endpoint = try await Self.endpoint(&client) else { return Console.line("\(slug): no webhook endpoint") }
                return Console.line("\(slug): events go to \(endpoint.url) (set \(Console.timestamp(endpoint.updatedAt)))")
            }
            let tenant = try RemoteModeOptions.localTenant(tenant)
            let logger = global.logger(defaultLevel: .warning)
            let (url, remove) = (url, remove)
            let message = try await CommandErrors.mapped {
                try await InvoicesCommand.inTenant(global, slug: tenant, logger: logger) { connection, tenant, location -> String in
                    let masterKey = try await MasterKey.load(environment: ProcessInfo.processInfo.environment, location: location, logger: logger)
                    let webhooks = Webhooks(masterKey: masterKey, logger: logger)
                    let actor = AuditLog.Actor(type: .operator, id: Operator.name)
                    if remove {
                        try await webhooks.removeEndpoint(on: connection)
                        try await AuditLog(logger: logger).record("billing.webhook_removed", tenantID: tenant.id, actor: actor, on: connection)
                        return "\(tenant.slug): webhook removed"
                    }
                    if let url {
                        let secret = try await webhooks.setEndpoint(url: url, tenantID: tenant.id, on: connection)
                        try await AuditLog(logger: logger).record(
                            "billing.webhook_set", tenantID: tenant.id, actor: actor, details: ["url": .string(url)], on: connection)
                        return "\(tenant.slug): events go to \(url)\nsigning secret (shown once): \(secret)"
                    }
                    guard let endpoint = try await webhooks.endpoint(on: connection) else { return "\(tenant.slug): no webhook endpoint" }
                    return "\(tenant.slug): events go to \(endpoint.url) (set \(Console.timestamp(endpoint.updatedAt)))"
                }
            }
            Console.line(message)
        }
    }
}
