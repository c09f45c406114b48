import ArgumentParser
import AtriumCore
import Foundation
import HTTPTypes
import Logging

struct UsageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usage", abstract: "Report metered usage.", subcommands: [Report.self])

    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A tenant's usage by meter for one month, priced by its plan.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var mode: RemoteModeOptions
        @Option(help: "The tenant (this machine's database; a login's own tenant otherwise).") var tenant: String?
        @Option(help: "The month, YYYY-MM (default: this month, UTC).") var period: String?
        @Option(help: "The plan catalog.") var plans: String = "tenants/plans.yaml"
        @Flag(help: "Print JSON.") var json = false

        /// The month's usage as the server reports it to the logged-in admin (prices are
        /// on the invoice: `atrium invoices list`).
        struct RemoteReport: Codable {
            var period: String
            var data: [Metering.MeterUsage]
        }

        func run() async throws {
            if var client = try mode.client(global) {
                try RemoteModeOptions.check(tenant, against: client)
                var query = URLComponents()
                query.queryItems = period.map { [URLQueryItem(name: "period", value: $0)] }
                let path = "billing/usage" + (query.percentEncodedQuery.map { "?\($0)" } ?? "")
                let report = try await client.json(.get, path, as: RemoteReport.self)
                if json { return try Console.json(report.data) }
                Console.line("\(client.context.tenant)  \(report.period)")
                return Console.table(["meter", "aggregation", "value", "unit", "events"], report.data.map {
                    [$0.meter, $0.aggregation, String($0.value), $0.unit, String($0.events)]
                })
            }
            let tenant = try RemoteModeOptions.localTenant(tenant)
            let logger = global.logger(defaultLevel: .warning)
            let registry = try ModulesCommand.registry()
            let catalog = try TenantsCommand.catalog(plans, registry: registry)
            let metering = Metering(registry: registry, catalog: catalog, logger: logger)
            let month = try CommandErrors.mappedSync { try Metering.period(period) }
            let (usage, planID) = try await InvoicesCommand.inTenant(global, slug: tenant, logger: logger) { connection, tenant, _ in
                (try await metering.usage(period: month, on: connection), tenant.plan)
            }
            if json { return try Console.json(usage) }
            let plan = catalog?.plan(planID)
            Console.line("\(tenant)  \(InvoiceCalculation.label(month))  plan \(planID)")
            Console.table(["meter", "aggregation", "value", "unit", "events", "amount"], usage.map { meter in
                let price = plan?.meters[meter.meter]
                let amount = price.map { Money(minorUnits: $0.model.amount(for: meter.value, freeUnits: $0.freeUnits), currency: plan?.currency ?? "USD").description }
                return [meter.meter, meter.aggregation, String(meter.value), meter.unit, String(meter.events), amount ?? "included"]
            })
        }
    }
}
