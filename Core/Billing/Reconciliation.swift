public import Foundation
public import Logging
public import PostgresNIO

/// Proves, for one tenant and month, that the usage events, the running counters and
/// the invoiced quantities agree, and names every difference.
public struct Reconciliation: Sendable {
    public struct Difference: Sendable, Codable, Equatable {
        public enum Kind: String, Sendable, Codable {
            /// A counter disagrees with the events it should sum: a bug or a manual edit.
            case counterMismatch = "counter_mismatch"
            /// Invoices billed a different quantity than the events now say, and no later
            /// invoice is finalized yet to carry the adjustment: expected after late usage.
            case awaitingAdjustment = "awaiting_adjustment"
            /// Invoices billed a different quantity and a later finalized invoice should
            /// have adjusted it: a real discrepancy.
            case invoiceMismatch = "invoice_mismatch"
        }
        public var kind: Kind
        public var meter: String
        public var expected: Int64
        public var found: Int64
        public var detail: String
    }

    public struct Report: Sendable, Codable, Equatable {
        public var period: String
        public var meters: Int
        public var events: Int64
        public var invoice: String?
        public var differences: [Difference]
        public var consistent: Bool { differences.allSatisfy { $0.kind == .awaitingAdjustment } }
    }

    let metering: Metering
    let logger: Logger

    public init(metering: Metering, logger: Logger) {
        self.metering = metering
        self.logger = logger
    }

    /// Runs in a transaction scoped to the tenant.
    public func run(period: Date, on connection: PostgresConnection) async throws -> Report {
        let day = InvoiceCalculation.label(period) + "-01"
        var differences: [Difference] = []
        var totalEvents: Int64 = 0
        // 1. Counters against events, each with the events still pending (which the fold
        //    moves into both at once).
        let rows = try await connection.query(
            """
            SELECT coalesce(e.meter, c.meter), coalesce(e.quantity, 0)::int8, coalesce(e.events, 0)::int8, coalesce(e.maximum, 0)::int8,
                   coalesce(c.quantity, 0)::int8, coalesce(c.events, 0)::int8, coalesce(c.max_quantity, 0)::int8
            FROM (SELECT meter, sum(quantity) AS quantity, count(*) AS events, max(quantity) AS maximum
                  FROM usage_records WHERE period = \(day)::date GROUP BY meter) e
            FULL JOIN (SELECT meter, quantity, events, max_quantity FROM usage_totals WHERE period = \(day)::date) c ON c.meter = e.meter
            ORDER BY 1
            """, logger: logger)
        var meterCount = 0
        for try await (meter, sum, count, maximum, counterSum, counterCount, counterMax) in rows.decode((String, Int64, Int64, Int64, Int64, Int64, Int64).self) {
            meterCount += 1
            totalEvents += count
            for (what, events, counter) in [("events", count, counterCount), ("quantity", sum, counterSum), ("max", maximum, counterMax)] where events != counter {
                differences.append(.init(
                    kind: .counterMismatch, meter: meter, expected: events, found: counter,
                    detail: "the counter's \(what) is \(counter) but the events give \(events)"))
            }
        }
        // 2. Invoiced quantities against the usage the events give.
        let invoice = try await connection.query(
            "SELECT number, status FROM invoices WHERE period = \(day)::date", logger: logger
        ).collect().first?.decode((String, String).self)
        if let (number, status) = invoice, status != "draft" {
            var billed: [String: Int64] = [:]
            let lines = try await connection.query(
                """
                SELECT l.meter, sum(l.quantity)::int8 FROM invoice_lines l JOIN invoices i ON i.tenant_id = l.tenant_id AND i.id = l.invoice_id
                WHERE l.usage_period = \(day)::date AND l.meter IS NOT NULL AND i.status <> 'draft' GROUP BY l.meter
                """, logger: logger)
            for try await (meter, quantity) in lines.decode((String, Int64).self) { billed[meter] = quantity }
            let laterFinalized = try await connection.query(
                "SELECT EXISTS (SELECT 1 FROM invoices WHERE period > \(day)::date AND status <> 'draft')", logger: logger
            ).collect().first?.decode(Bool.self) ?? false
            for usage in try await metering.usageFromEvents(period: period, on: connection) where usage.value != (billed[usage.meter] ?? 0) {
                let found = billed[usage.meter] ?? 0
                differences.append(.init(
                    kind: laterFinalized ? .invoiceMismatch : .awaitingAdjustment, meter: usage.meter, expected: usage.value, found: found,
                    detail: laterFinalized
                        ? "invoices billed \(found) but the events give \(usage.value), and a later invoice is already finalized"
                        : "invoice \(number) billed \(found); \(usage.value - found) more arrived late and goes on the next invoice"))
            }
        }
        return Report(period: InvoiceCalculation.label(period), meters: meterCount, events: totalEvents, invoice: invoice?.0, differences: differences)
    }
}

extension Metering {
    /// Every declared meter's value in the month, computed from the events alone (not the
    /// counters), for reconciliation.
    public func usageFromEvents(period: Date, on connection: PostgresConnection) async throws -> [MeterUsage] {
        let day = InvoiceCalculation.label(period) + "-01"
        var values: [String: (Int64, Int64)] = [:]
        let rows = try await connection.query(
            """
            SELECT e.meter, count(*)::int8, coalesce(sum(quantity), 0)::int8, coalesce(max(quantity), 0)::int8,
                   count(DISTINCT properties->>'unique_key')::int8,
                   (array_agg(quantity ORDER BY occurred_at DESC, recorded_at DESC))[1]::int8,
                   m.aggregation
            FROM usage_records e JOIN meters m ON m.name = e.meter
            WHERE e.period = \(day)::date GROUP BY e.meter, m.aggregation
            """, logger: logger)
        for try await (meter, count, sum, maximum, unique, latest, aggregation) in rows.decode((String, Int64, Int64, Int64, Int64, Int64, String).self) {
            let value: Int64 = switch aggregation {
            case "count": count
            case "sum": sum
            case "max": maximum
            case "unique_count": unique
            default: latest
            }
            values[meter] = (value, count)
        }
        return definitions.map { meter in
            let (value, events) = values[meter.name] ?? (0, 0)
            return MeterUsage(meter: meter.name, aggregation: meter.aggregation.rawValue, unit: meter.unit, value: value, events: events)
        }
    }
}
