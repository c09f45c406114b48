import Foundation
import HTTPTypes

/// `/v1/tenants/{tenant}/billing/…`: the subscription, usage, invoices and the billing
/// webhook of the tenant, and the batch route outside services report usage through.
struct BillingRoutes {
    struct UsageReport: Codable, Sendable {
        var period: String
        var data: [Metering.MeterUsage]
    }

    struct UsageBatch: Codable, Sendable {
        var events: [Metering.IncomingEvent]
    }

    struct InvoiceList: Codable, Sendable {
        var data: [Invoices.Invoice]
    }

    struct WebhookInput: Codable, Sendable {
        var url: String
    }

    struct WebhookView: Codable, Sendable {
        var url: String
        var updatedAt: Date?
        /// Present only in the answer that set it.
        var secret: String?
    }

    let plans: PlanCatalog?

    func register(_ routes: ModuleRoutes) {
        routes.on(.get, "billing/usage", summary: "Usage by meter for a month", permission: "kernel.billing.read",
                  query: [.init("period", "The month, YYYY-MM (default: this month, UTC).")], response: UsageReport.self) { request in
            let period = try Metering.period(request.query("period"))
            let usage = try await request.transaction { transaction in
                try await transaction.metering.usage(period: period, on: transaction.connection)
            }
            return UsageReport(period: InvoiceCalculation.label(period), data: usage)
        }

        routes.on(.post, "billing/usage/events", summary: "Record usage events from an outside service (at most 1,000; idempotent per event)",
                  permission: "kernel.usage.write", body: UsageBatch.self, response: Metering.BatchOutcome.self) { request, batch in
            try await request.transaction { transaction in
                try await transaction.metering.recordBatch(batch.events, tenantID: transaction.tenantID, on: transaction.connection)
            }
        }

        routes.on(.get, "billing/subscription", summary: "The tenant's plan, subscription status and current period",
                  permission: "kernel.billing.read", response: SubscriptionView.self) { request in
            let subscription = try await request.transaction { transaction in
                try await Subscriptions(logger: transaction.logger).find(on: transaction.connection)
            }
            guard let subscription else { throw AtriumError.notFound("This tenant has no subscription.") }
            let plan = plans?.plan(subscription.plan)
            return SubscriptionView(
                plan: subscription.plan, planName: plan?.name, status: subscription.status.rawValue, currency: plan?.currency,
                monthlyFee: plan?.monthlyFee, quotas: plan?.quotas ?? [:], trialEndsAt: subscription.trialEndsAt, startedAt: subscription.startedAt,
                canceledAt: subscription.canceledAt, currentPeriodStart: subscription.currentPeriodStart, currentPeriodEnd: subscription.currentPeriodEnd)
        }

        routes.on(.get, "billing/invoices", summary: "The tenant's invoices, newest month first", permission: "kernel.billing.read",
                  query: [.init("limit", "At most this many (1-200, default 50).")], response: InvoiceList.self) { request in
            let invoices = try invoices(request)
            let limit = try request.limit()
            return InvoiceList(data: try await request.transaction { transaction in
                try await invoices.list(limit: limit, on: transaction.connection)
            })
        }

        routes.on(.get, "billing/invoices/{id}", summary: "One invoice with its lines", permission: "kernel.billing.read",
                  response: Invoices.Invoice.self) { request in
            let invoices = try invoices(request)
            let id = try request.uuidParameter("id")
            let invoice = try await request.transaction { transaction in try await invoices.find(id, on: transaction.connection) }
            guard let invoice else { throw AtriumError.notFound("No such invoice.") }
            return invoice
        }

        routes.on(.get, "billing/webhook", summary: "Where billing events (invoice.finalized) are sent", permission: "kernel.billing.manage",
                  response: WebhookView.self) { request in
            let endpoint = try await request.transaction { transaction in
                try await Webhooks(masterKey: nil, logger: transaction.logger).endpoint(on: transaction.connection)
            }
            guard let endpoint else { throw AtriumError.notFound("No webhook endpoint is set.") }
            return WebhookView(url: endpoint.url, updatedAt: endpoint.updatedAt, secret: nil)
        }

        routes.on(.put, "billing/webhook", summary: "Set the billing webhook URL; answers its new signing secret, shown only here",
                  permission: "kernel.billing.manage", body: WebhookInput.self, response: WebhookView.self) { request, input in
            guard let masterKey = request.services.identity?.masterKey else { throw AtriumError.internalError() }
            let secret = try await request.transaction { transaction in
                let secret = try await Webhooks(masterKey: masterKey, logger: transaction.logger)
                    .setEndpoint(url: input.url, tenantID: transaction.tenantID, on: transaction.connection)
                try await AuditLog(logger: transaction.logger).record(
                    "billing.webhook_set", tenantID: transaction.tenantID, actor: AuthRoutes.actor(try request.requirePrincipal(), request), details: ["url": .string(input.url)],
                    on: transaction.connection)
                return secret
            }
            return WebhookView(url: input.url, updatedAt: Date(), secret: secret)
        }

        routes.on(.delete, "billing/webhook", summary: "Stop sending billing events", permission: "kernel.billing.manage",
                  response: NoContent.self, status: .noContent) { request in
            try await request.transaction { transaction in
                try await Webhooks(masterKey: nil, logger: transaction.logger).removeEndpoint(on: transaction.connection)
                try await AuditLog(logger: transaction.logger).record(
                    "billing.webhook_removed", tenantID: transaction.tenantID, actor: AuthRoutes.actor(try request.requirePrincipal(), request), on: transaction.connection)
            }
            return NoContent()
        }
    }

    private func invoices(_ request: TenantRequest) throws -> Invoices {
        guard let plans else { throw AtriumError.notFound("Billing is not configured (no plan catalog).") }
        return Invoices(catalog: plans, metering: request.services.metering, logger: request.logger)
    }
}
