public import Foundation
public import Logging
public import PostgresNIO

/// Invoices of one tenant: closing a month, the draft → finalized → paid | void
/// lifecycle, and reads. Every method runs in a transaction already scoped to the
/// tenant (a request's, a job's or the CLI's), so it commits with the caller's work.
public struct Invoices: Sendable {
    public struct Invoice: Sendable, Codable, Equatable {
        public enum Status: String, Sendable, Codable {
            case draft, finalized, paid, void
        }
        public var id: UUID
        public var number: String
        public var period: String
        public var plan: String
        public var currency: String
        public var status: Status
        public var total: Int64
        public var createdAt: Date
        public var finalizedAt: Date?
        public var paidAt: Date?
        public var voidedAt: Date?
        public var lines: [InvoiceCalculation.Line]?
    }

    /// What closing a month did.
    public struct Closing: Sendable {
        public var invoice: Invoice
        /// False when the month already had an invoice (closing is idempotent).
        public var created: Bool
    }

    /// Days a finalized invoice may stay unpaid before the subscription is past due.
    public static let paymentTermDays = 14

    let calculation: InvoiceCalculation
    let metering: Metering
    let logger: Logger

    public init(catalog: PlanCatalog, metering: Metering, logger: Logger) {
        self.calculation = InvoiceCalculation(catalog: catalog)
        self.metering = metering
        self.logger = logger
    }

    /// Creates the invoice of the month starting `period` as a draft, unless the month
    /// has one already. Only a month that has ended can be closed, and a month that
    /// ended before the subscription began has nothing to bill (nil). Two closers at
    /// once produce one invoice: the second waits on the unique (tenant, period) row and
    /// then finds it.
    public func close(period: Date, tenantID: UUID, now: Date = Date(), on connection: PostgresConnection) async throws -> Closing? {
        guard InvoiceCalculation.periodEnd(period) <= now else {
            throw AtriumError.validation(field: "period", "\(InvoiceCalculation.label(period)) has not ended yet")
        }
        let spans = try await planSpans(tenantID: tenantID, on: connection)
        guard let first = spans.first, first.start < InvoiceCalculation.periodEnd(period) else { return nil }
        guard let plan = calculation.billingPlan(spans: spans, period: period) else {
            throw ConfigurationError("the tenant's plan is not in the plan catalog")
        }
        let slug = try await connection.query("SELECT slug FROM tenants WHERE id = \(tenantID)", logger: logger).collect().first?.decode(String.self) ?? "T"
        let number = "\(slug.uppercased())-\(InvoiceCalculation.label(period).replacingOccurrences(of: "-", with: ""))"
        let inserted = try await connection.query(
            """
            INSERT INTO invoices (tenant_id, number, period, plan, currency)
            VALUES (\(tenantID), \(number), (\(period)::timestamptz AT TIME ZONE 'UTC')::date, \(plan.id), \(plan.currency))
            ON CONFLICT (tenant_id, period) DO NOTHING
            RETURNING id
            """, logger: logger
        ).collect().first?.decode(UUID.self)
        if let id = inserted {
            try await writeLines(invoiceID: id, period: period, tenantID: tenantID, spans: spans, plan: plan, on: connection)
            logger.info("invoice drafted", metadata: ["invoice.number": "\(number)"])
        }
        let found = if let inserted { try await find(inserted, on: connection) } else { try await find(period: period, on: connection) }
        guard let invoice = found else { throw AtriumError.notFound("No invoice for \(InvoiceCalculation.label(period)).") }
        return Closing(invoice: invoice, created: inserted != nil)
    }

    /// Finalizes a draft: its lines are computed afresh from the usage now recorded,
    /// then frozen. Returns the invoice and whether this call finalized it (finalizing
    /// a finalized invoice changes nothing).
    public func finalize(_ id: UUID, tenantID: UUID, on connection: PostgresConnection) async throws -> (Invoice, changed: Bool) {
        let invoice = try await lock(id, on: connection)
        switch invoice.status {
        case .finalized: return (invoice, false)
        case .paid, .void: throw AtriumError.conflict(code: "invoice_not_draft", "Invoice \(invoice.number) is \(invoice.status.rawValue).")
        case .draft: break
        }
        // Months are finalized in order, so late usage is adjusted on exactly one invoice.
        let earlier = try await connection.query(
            "SELECT number FROM invoices WHERE status = 'draft' AND period < \(invoice.period + "-01")::date ORDER BY period LIMIT 1", logger: logger
        ).collect().first?.decode(String.self)
        if let earlier {
            throw AtriumError.conflict(code: "earlier_draft_open", "Finalize or void \(earlier) before \(invoice.number).")
        }
        let period = try Metering.period(invoice.period)
        let spans = try await planSpans(tenantID: tenantID, on: connection)
        guard let plan = calculation.catalog.plan(invoice.plan) else { throw ConfigurationError("plan '\(invoice.plan)' is not in the plan catalog") }
        try await connection.query("DELETE FROM invoice_lines WHERE invoice_id = \(id)", logger: logger)
        try await writeLines(invoiceID: id, period: period, tenantID: tenantID, spans: spans, plan: plan, on: connection)
        try await connection.query("UPDATE invoices SET status = 'finalized', finalized_at = now() WHERE id = \(id)", logger: logger)
        guard let finalized = try await find(id, on: connection) else { throw AtriumError.notFound() }
        let data = try JSONValue(encoding: finalized)
        try await Webhooks(masterKey: nil, logger: logger).enqueue("invoice.finalized", data: data, tenantID: tenantID, on: connection)
        return (finalized, true)
    }

    /// Voids a draft or finalized invoice: nothing is owed, its usage is not billed again.
    public func void(_ id: UUID, on connection: PostgresConnection) async throws -> Invoice {
        let invoice = try await lock(id, on: connection)
        guard invoice.status == .draft || invoice.status == .finalized else {
            throw AtriumError.conflict(code: "invoice_not_open", "Invoice \(invoice.number) is \(invoice.status.rawValue).")
        }
        try await connection.query("UPDATE invoices SET status = 'void', voided_at = now() WHERE id = \(id)", logger: logger)
        return try await reread(id, on: connection)
    }

    /// Records payment of a finalized invoice; a past-due subscription with nothing else
    /// overdue becomes active again.
    public func markPaid(_ id: UUID, tenantID: UUID, on connection: PostgresConnection) async throws -> Invoice {
        let invoice = try await lock(id, on: connection)
        guard invoice.status == .finalized else {
            throw AtriumError.conflict(code: "invoice_not_finalized", "Invoice \(invoice.number) is \(invoice.status.rawValue); only a finalized invoice is paid.")
        }
        try await connection.query("UPDATE invoices SET status = 'paid', paid_at = now() WHERE id = \(id)", logger: logger)
        try await Subscriptions(logger: logger).refreshStatus(tenantID: tenantID, on: connection)
        return try await reread(id, on: connection)
    }

    /// The tenant's invoices, newest month first, without lines.
    public func list(limit: Int = 100, on connection: PostgresConnection) async throws -> [Invoice] {
        let rows = try await connection.query(
            "\(unescaped: Self.columns) FROM invoices ORDER BY period DESC LIMIT \(limit)", logger: logger)
        var invoices: [Invoice] = []
        for try await row in rows { invoices.append(try Self.invoice(row)) }
        return invoices
    }

    /// One invoice with its lines, or nil (another tenant's id is nil as well).
    public func find(_ id: UUID, on connection: PostgresConnection) async throws -> Invoice? {
        guard let row = try await connection.query("\(unescaped: Self.columns) FROM invoices WHERE id = \(id)", logger: logger).collect().first else {
            return nil
        }
        var invoice = try Self.invoice(row)
        var lines: [InvoiceCalculation.Line] = []
        let rows = try await connection.query(
            """
            SELECT kind, description, meter, quantity, amount, usage_period::timestamptz FROM invoice_lines
            WHERE invoice_id = \(id) ORDER BY position
            """, logger: logger)
        for try await (kind, description, meter, quantity, amount, usagePeriod) in rows.decode((String, String, String?, Int64?, Int64, Date?).self) {
            lines.append(.init(kind: .init(rawValue: kind) ?? .usage, description: description, meter: meter, quantity: quantity, amount: amount, usagePeriod: usagePeriod))
        }
        invoice.lines = lines
        return invoice
    }

    /// The invoice of the month starting `period`, if it has one.
    public func find(period: Date, on connection: PostgresConnection) async throws -> Invoice? {
        let id = try await connection.query(
            "SELECT id FROM invoices WHERE period = (\(period)::timestamptz AT TIME ZONE 'UTC')::date", logger: logger
        ).collect().first?.decode(UUID.self)
        guard let id else { return nil }
        return try await find(id, on: connection)
    }

    // MARK: - Internals

    static let columns = """
        SELECT id, number, to_char(period, 'YYYY-MM'), plan, currency, status, total, created_at, finalized_at, paid_at, voided_at
        """

    static func invoice(_ row: PostgresRow) throws -> Invoice {
        let (id, number, period, plan, currency, status, total, created, finalized, paid, voided) = try row.decode(
            (UUID, String, String, String, String, String, Int64, Date, Date?, Date?, Date?).self)
        return Invoice(
            id: id, number: number, period: period, plan: plan, currency: currency, status: .init(rawValue: status) ?? .draft, total: total,
            createdAt: created, finalizedAt: finalized, paidAt: paid, voidedAt: voided, lines: nil)
    }

    private func lock(_ id: UUID, on connection: PostgresConnection) async throws -> Invoice {
        guard let row = try await connection.query("\(unescaped: Self.columns) FROM invoices WHERE id = \(id) FOR UPDATE", logger: logger).collect().first else {
            throw AtriumError.notFound("No such invoice.")
        }
        return try Self.invoice(row)
    }

    private func reread(_ id: UUID, on connection: PostgresConnection) async throws -> Invoice {
        guard let invoice = try await find(id, on: connection) else { throw AtriumError.notFound("No such invoice.") }
        return invoice
    }

    func planSpans(tenantID: UUID, on connection: PostgresConnection) async throws -> [InvoiceCalculation.PlanSpan] {
        let rows = try await connection.query("SELECT plan, started_at, ended_at FROM plan_periods ORDER BY started_at", logger: logger)
        var spans: [InvoiceCalculation.PlanSpan] = []
        for try await (plan, start, end) in rows.decode((String, Date, Date?).self) { spans.append(.init(plan: plan, start: start, end: end)) }
        return spans
    }

    /// Computes and inserts the lines of a draft and sets its total.
    private func writeLines(
        invoiceID: UUID, period: Date, tenantID: UUID, spans: [InvoiceCalculation.PlanSpan], plan: Plan, on connection: PostgresConnection
    ) async throws {
        let subscription = try await Subscriptions(logger: logger).find(on: connection)
        var lines = try calculation.subscriptionLines(
            spans: spans, period: period, trialEndsAt: subscription?.trialEndsAt, canceledAt: subscription?.canceledAt)
        lines += calculation.usageLines(usage: try await metering.usage(period: period, on: connection), plan: plan, period: period)
        lines += calculation.adjustmentLines(try await lateUsage(before: period, excluding: invoiceID, on: connection))
        for (position, line) in lines.enumerated() {
            try await connection.query(
                """
                INSERT INTO invoice_lines (tenant_id, invoice_id, position, kind, description, meter, quantity, amount, usage_period)
                VALUES (\(tenantID), \(invoiceID), \(position + 1), \(line.kind.rawValue), \(line.description), \(line.meter), \(line.quantity), \(line.amount),
                        (\(line.usagePeriod)::timestamptz AT TIME ZONE 'UTC')::date)
                """, logger: logger)
        }
        try await connection.query(
            "UPDATE invoices SET total = \(lines.reduce(0) { $0 + $1.amount }) WHERE id = \(invoiceID)", logger: logger)
    }

    /// For every earlier month whose invoice is no longer a draft: each meter's value now
    /// against what the invoices (other than `excluding`) have billed for it.
    func lateUsage(before period: Date, excluding invoiceID: UUID?, on connection: PostgresConnection) async throws -> [InvoiceCalculation.LateUsage] {
        let closed = try await connection.query(
            """
            SELECT period::timestamptz, plan FROM invoices
            WHERE status <> 'draft' AND period < (\(period)::timestamptz AT TIME ZONE 'UTC')::date
              AND period >= (\(period)::timestamptz AT TIME ZONE 'UTC')::date - interval '12 months'
            ORDER BY period
            """, logger: logger
        ).collect()
        var late: [InvoiceCalculation.LateUsage] = []
        for row in closed {
            let (closedPeriod, plan) = try row.decode((Date, String).self)
            var billed: [String: Int64] = [:]
            let rows = try await connection.query(
                """
                SELECT l.meter, sum(l.quantity)::int8 FROM invoice_lines l JOIN invoices i ON i.tenant_id = l.tenant_id AND i.id = l.invoice_id
                WHERE l.usage_period = (\(closedPeriod)::timestamptz AT TIME ZONE 'UTC')::date AND l.meter IS NOT NULL
                  AND i.id IS DISTINCT FROM \(invoiceID) AND i.status <> 'draft'
                GROUP BY l.meter
                """, logger: logger)
            for try await (meter, quantity) in rows.decode((String, Int64).self) { billed[meter] = quantity }
            for usage in try await metering.usage(period: closedPeriod, on: connection) where usage.value != (billed[usage.meter] ?? 0) {
                late.append(.init(period: closedPeriod, plan: plan, meter: usage.meter, current: usage.value, billed: billed[usage.meter] ?? 0))
            }
        }
        return late
    }
}
