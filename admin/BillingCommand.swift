import ArgumentParser
import AtriumCore
import Foundation
import Logging
import PostgresNIO

struct BillingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "billing", abstract: "Check billing data and set where tenants' billing webhooks go.",
        subcommands: [Reconcile.self, Webhook.self])

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
                                "SELECT period::timestamptz FROM usage_counters UNION SELECT period::timestamptz FROM invoices ORDER BY 1", logger: logger)
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

    struct Webhook: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set, show or remove the URL a tenant's billing events (invoice.finalized) go to.",
            discussion: "Setting prints the endpoint's signing secret once; see the README for verifying the Atrium-Signature header.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The tenant.") var tenant: String
        @Option(help: "The URL to send events to (http or https).") var url: String?
        @Flag(help: "Stop sending events.") var remove = false

        func run() async throws {
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
