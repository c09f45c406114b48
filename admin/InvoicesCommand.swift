import ArgumentParser
import AtriumCore
import Foundation
import HTTPTypes
import Logging
import PostgresNIO

struct InvoicesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "invoices", abstract: "Close billing months into invoices; list, show, finalize, void and mark them paid.",
        subcommands: [Close.self, List.self, Show.self, Finalize.self, VoidInvoice.self, Pay.self])

    /// What every invoices subcommand needs: the owner connection, the catalog and the tenant.
    struct Context: Sendable {
        var invoices: Invoices
        var metering: Metering
        var catalog: PlanCatalog
    }

    static func context(plans: String, logger: Logger) throws -> Context {
        let registry = try ModulesCommand.registry()
        guard let catalog = try TenantsCommand.catalog(plans, registry: registry) else { throw ValidationFailure("no plan catalog at \(plans)") }
        let metering = Metering(registry: registry, catalog: catalog, logger: logger)
        return Context(invoices: Invoices(catalog: catalog, metering: metering, logger: logger), metering: metering, catalog: catalog)
    }

    /// Runs `body` in a transaction scoped to the tenant named `slug`.
    static func inTenant<Result: Sendable>(
        _ global: GlobalOptions, slug: String, logger: Logger,
        _ body: @escaping @Sendable (PostgresConnection, Tenant, DatabaseLocation) async throws -> Result
    ) async throws -> Result {
        try await TenantsCommand.withOwner(global, logger: logger) { connection, location in
            guard let tenant = try await TenantStore(logger: logger).find(slug: slug, on: connection) else {
                throw ValidationFailure("no tenant named '\(slug)'")
            }
            return try await connection.withTenantTransaction(tenant.id, logger: logger) { connection in try await body(connection, tenant, location) }
        }
    }

    /// An invoice named by id or number (ACME-202611).
    static func resolve(_ reference: String, invoices: Invoices, on connection: PostgresConnection) async throws -> Invoices.Invoice {
        if let id = UUID(uuidString: reference), let invoice = try await invoices.find(id, on: connection) { return invoice }
        let id = try await connection.query("SELECT id FROM invoices WHERE number = \(reference.uppercased())", logger: Logger(label: "atrium"))
            .collect().first?.decode(UUID.self)
        guard let id, let invoice = try await invoices.find(id, on: connection) else { throw ValidationFailure("no invoice '\(reference)' in this tenant") }
        return invoice
    }

    static func printInvoice(_ invoice: Invoices.Invoice) {
        Console.line("\(invoice.number)  \(invoice.period)  plan \(invoice.plan)  \(invoice.status.rawValue)")
        Console.table(["kind", "description", "quantity", "amount"], (invoice.lines ?? []).map { line in
            [line.kind.rawValue, line.description, line.quantity.map(String.init) ?? "", Money(minorUnits: line.amount, currency: invoice.currency).description]
        })
        Console.line("total \(Money(minorUnits: invoice.total, currency: invoice.currency))")
    }

    struct Close: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Draft the invoice of an ended month for one tenant or every active tenant (closing twice yields one invoice).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The month, YYYY-MM.") var period: String
        @Option(help: "Only this tenant (default: every active tenant).") var tenant: String?
        @Flag(help: "Finalize the drafts as well.") var finalize = false
        @Option(help: "The plan catalog.") var plans: String = "tenants/plans.yaml"

        func run() async throws {
            let logger = global.logger(defaultLevel: .warning)
            let context = try InvoicesCommand.context(plans: plans, logger: logger)
            let month = try CommandErrors.mappedSync { try Metering.period(period) }
            let (only, finalize) = (tenant, self.finalize)
            let results = try await TenantsCommand.withOwner(global, logger: logger) { connection, _ in
                let tenants = try await TenantStore(logger: logger).list(on: connection).filter { tenant in
                    only.map { $0 == tenant.slug } ?? (tenant.status == .active)
                }
                if let only, tenants.isEmpty { throw ValidationFailure("no tenant named '\(only)'") }
                var results: [[String]] = []
                for tenant in tenants {
                    let row = try await connection.withTenantTransaction(tenant.id, logger: logger) { connection -> [String] in
                        guard let closing = try await context.invoices.close(period: month, tenantID: tenant.id, on: connection) else {
                            return [tenant.slug, "-", "skipped: not subscribed that month", "-", "-"]
                        }
                        var invoice = closing.invoice
                        if finalize, invoice.status == .draft {
                            invoice = try await context.invoices.finalize(invoice.id, tenantID: tenant.id, on: connection).0
                        }
                        return [tenant.slug, invoice.number, closing.created ? "created" : "existed", invoice.status.rawValue,
                                Money(minorUnits: invoice.total, currency: invoice.currency).description]
                    }
                    results.append(row)
                }
                return results
            }
            Console.table(["tenant", "invoice", "close", "status", "total"], results)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A tenant's invoices, newest month first.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var mode: RemoteModeOptions
        @Option(help: "The tenant (this machine's database; a login's own tenant otherwise).") var tenant: String?
        @Option(help: "The plan catalog.") var plans: String = "tenants/plans.yaml"
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let invoices: [Invoices.Invoice]
            if var client = try mode.client(global) {
                try RemoteModeOptions.check(tenant, against: client)
                invoices = try await client.json(.get, "billing/invoices?limit=200", as: Page<Invoices.Invoice>.self).data
            } else {
                let logger = global.logger(defaultLevel: .warning)
                let context = try InvoicesCommand.context(plans: plans, logger: logger)
                invoices = try await InvoicesCommand.inTenant(global, slug: try RemoteModeOptions.localTenant(tenant), logger: logger) { connection, _, _ in
                    try await context.invoices.list(on: connection)
                }
            }
            if json { return try Console.json(invoices) }
            Console.table(["number", "period", "plan", "status", "total", "id"], invoices.map {
                [$0.number, $0.period, $0.plan, $0.status.rawValue, Money(minorUnits: $0.total, currency: $0.currency).description, $0.id.uuidString.lowercased()]
            })
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One invoice with its lines (--json: the whole invoice, to keep or pass on).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var mode: RemoteModeOptions
        @Option(help: "The tenant (this machine's database; a login's own tenant otherwise).") var tenant: String?
        @Argument(help: "Invoice number or id.") var invoice: String
        @Option(help: "The plan catalog.") var plans: String = "tenants/plans.yaml"
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            if var client = try mode.client(global) {
                try RemoteModeOptions.check(tenant, against: client)
                var id = UUID(uuidString: invoice)
                if id == nil {
                    let all = try await client.json(.get, "billing/invoices?limit=200", as: Page<Invoices.Invoice>.self).data
                    id = all.first { $0.number == invoice }?.id
                }
                guard let id else { throw RemoteFailure.usage("no invoice \(invoice) in tenant \(client.context.tenant)") }
                let found = try await client.json(.get, "billing/invoices/\(id.lowercasedString)", as: Invoices.Invoice.self)
                if json { return try Console.json(found) }
                return InvoicesCommand.printInvoice(found)
            }
            let tenant = try RemoteModeOptions.localTenant(tenant)
            let logger = global.logger(defaultLevel: .warning)
            let context = try InvoicesCommand.context(plans: plans, logger: logger)
            let reference = invoice
            let found = try await InvoicesCommand.inTenant(global, slug: tenant, logger: logger) { connection, _, _ in
                try await InvoicesCommand.resolve(reference, invoices: context.invoices, on: connection)
            }
            if json { return try Console.json(found) }
            InvoicesCommand.printInvoice(found)
        }
    }

    /// finalize, void and pay: one transition on one invoice, audited.
    enum Transition: String, Sendable {
        case finalize, void, pay

        func run(global: GlobalOptions, tenant: String, reference: String, plans: String) async throws {
            let logger = global.logger(defaultLevel: .warning)
            let context = try InvoicesCommand.context(plans: plans, logger: logger)
            let transition = self
            let invoice = try await CommandErrors.mapped {
                try await InvoicesCommand.inTenant(global, slug: tenant, logger: logger) { connection, tenant, _ in
                    let invoice = try await InvoicesCommand.resolve(reference, invoices: context.invoices, on: connection)
                    let result: Invoices.Invoice
                    switch transition {
                    case .finalize: result = try await context.invoices.finalize(invoice.id, tenantID: tenant.id, on: connection).0
                    case .void: result = try await context.invoices.void(invoice.id, on: connection)
                    case .pay: result = try await context.invoices.markPaid(invoice.id, tenantID: tenant.id, on: connection)
                    }
                    try await AuditLog(logger: logger).record(
                        "invoice.\(transition == .pay ? "paid" : transition == .void ? "voided" : "finalized")", tenantID: tenant.id,
                        actor: .init(type: .operator, id: Operator.name), subject: result.number, on: connection)
                    return result
                }
            }
            InvoicesCommand.printInvoice(invoice)
        }
    }

    struct Finalize: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Finalize a draft: its lines are recomputed from the usage now recorded and frozen; sends invoice.finalized.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The tenant.") var tenant: String
        @Argument(help: "Invoice number or id.") var invoice: String
        @Option(help: "The plan catalog.") var plans: String = "tenants/plans.yaml"
        func run() async throws { try await Transition.finalize.run(global: global, tenant: tenant, reference: invoice, plans: plans) }
    }

    struct VoidInvoice: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "void", abstract: "Void a draft or finalized invoice (nothing is owed; its usage is not billed again).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The tenant.") var tenant: String
        @Argument(help: "Invoice number or id.") var invoice: String
        @Option(help: "The plan catalog.") var plans: String = "tenants/plans.yaml"
        func run() async throws { try await Transition.void.run(global: global, tenant: tenant, reference: invoice, plans: plans) }
    }

    struct Pay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Record payment of a finalized invoice.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The tenant.") var tenant: String
        @Argument(help: "Invoice number or id.") var invoice: String
        @Option(help: "The plan catalog.") var plans: String = "tenants/plans.yaml"
        func run() async throws { try await Transition.pay.run(global: global, tenant: tenant, reference: invoice, plans: plans) }
    }
}
