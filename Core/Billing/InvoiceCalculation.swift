public import Foundation

/// Turns one month of a subscription and its usage into invoice lines. Pure: the
/// database work is `Invoices`', so every rule here is tested against hand-computed
/// invoices.
///
/// Rules:
/// - The flat fee is charged in arrears for the time each plan was in force in the
///   month, excluding trial time and time after cancellation: `fee × seconds on the
///   plan / seconds in the month`, rounded half up to a minor unit once per line.
///   A plan change on the 16th of November (30 days) bills 15/30 of the old fee and
///   15/30 of the new one.
/// - Usage is priced by the plan in force at the end of the month (the last one the
///   month saw). Every meter with usage gets a line, unpriced meters at 0.
/// - Usage of an earlier, already invoiced month that arrived after its invoice was
///   finalized becomes an adjustment line citing that month, priced by that month's
///   plan as the difference between the amount now due and the amount billed.
public struct InvoiceCalculation: Sendable {
    /// One stretch of time on one plan.
    public struct PlanSpan: Sendable, Equatable {
        public var plan: String
        public var start: Date
        public var end: Date?
        public init(plan: String, start: Date, end: Date?) {
            self.plan = plan
            self.start = start
            self.end = end
        }
    }

    public struct Line: Sendable, Equatable, Codable {
        public enum Kind: String, Sendable, Codable {
            case subscription
            case usage
            case adjustment
        }
        public var kind: Kind
        public var description: String
        public var meter: String?
        public var quantity: Int64?
        public var amount: Int64
        public var usagePeriod: Date?
    }

    /// Usage of an invoiced month: the value now, and what invoices have billed so far.
    public struct LateUsage: Sendable, Equatable {
        public var period: Date
        public var plan: String
        public var meter: String
        public var current: Int64
        public var billed: Int64
        public init(period: Date, plan: String, meter: String, current: Int64, billed: Int64) {
            self.period = period
            self.plan = plan
            self.meter = meter
            self.current = current
            self.billed = billed
        }
    }

    public let catalog: PlanCatalog

    public init(catalog: PlanCatalog) {
        self.catalog = catalog
    }

    /// The month after `period` (both first days, UTC).
    public static func periodEnd(_ period: Date) -> Date {
        Self.calendar.date(byAdding: .month, value: 1, to: period) ?? period.addingTimeInterval(31 * 86_400)
    }

    static var calendar: Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        return calendar
    }

    /// `YYYY-MM` of a period.
    public static func label(_ period: Date) -> String {
        let parts = calendar.dateComponents([.year, .month], from: period)
        let month = parts.month ?? 1
        return "\(parts.year ?? 0)-\(month < 10 ? "0" : "")\(month)"
    }

    static func day(_ date: Date) -> String {
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        let (month, day) = (parts.month ?? 1, parts.day ?? 1)
        return "\(parts.year ?? 0)-\(month < 10 ? "0" : "")\(month)-\(day < 10 ? "0" : "")\(day)"
    }

    /// The plan whose prices and currency the month's invoice uses: the last one in force.
    public func billingPlan(spans: [PlanSpan], period: Date) -> Plan? {
        let end = Self.periodEnd(period)
        let inMonth = spans.filter { $0.start < end && ($0.end ?? end) > period }.sorted { $0.start < $1.start }
        return (inMonth.last ?? spans.last).flatMap { catalog.plan($0.plan) }
    }

    /// The flat-fee lines of `period`.
    public func subscriptionLines(spans: [PlanSpan], period: Date, trialEndsAt: Date?, canceledAt: Date?) throws -> [Line] {
        let end = Self.periodEnd(period)
        let monthSeconds = end.timeIntervalSince(period)
        var lines: [Line] = []
        for span in spans.sorted(by: { $0.start < $1.start }) {
            guard let plan = catalog.plan(span.plan) else {
                throw ConfigurationError("plan '\(span.plan)' was in force in \(Self.label(period)) but is not in the plan catalog")
            }
            var from = max(span.start, period)
            if let trialEndsAt { from = max(from, trialEndsAt) }
            var to = min(span.end ?? end, end)
            if let canceledAt { to = min(to, canceledAt) }
            guard to > from else { continue }
            let seconds = to.timeIntervalSince(from)
            let amount = Self.prorate(plan.monthlyFee, seconds: seconds, of: monthSeconds)
            let whole = from == period && to == end
            let days = (seconds / 86_400 * 10).rounded() / 10
            let description = whole
                ? "\(plan.name) plan, \(Self.label(period))"
                : "\(plan.name) plan, \(Self.day(from)) to \(Self.day(to)) (\(days) of \(Int((monthSeconds / 86_400).rounded())) days)"
            lines.append(Line(kind: .subscription, description: description, meter: nil, quantity: nil, amount: amount, usagePeriod: nil))
        }
        return lines
    }

    /// `amount × part / whole`, rounded half up (amounts are never negative).
    public static func prorate(_ amount: Int64, seconds part: TimeInterval, of whole: TimeInterval) -> Int64 {
        guard whole > 0, part < whole else { return amount }
        // Whole seconds keep the arithmetic exact in integers.
        let numerator = amount * Int64(part.rounded()), denominator = Int64(whole.rounded())
        return (numerator * 2 + denominator) / (denominator * 2)
    }

    /// The usage lines of `period`, priced by `plan`: one per meter with usage.
    public func usageLines(usage: [Metering.MeterUsage], plan: Plan, period: Date) -> [Line] {
        usage.filter { $0.value != 0 }.map { meter in
            let amount = plan.meters[meter.meter].map { $0.model.amount(for: meter.value, freeUnits: $0.freeUnits) } ?? 0
            return Line(
                kind: .usage, description: "\(meter.meter): \(meter.value) \(meter.unit)\(meter.value == 1 ? "" : "s")", meter: meter.meter,
                quantity: meter.value, amount: amount, usagePeriod: period)
        }
    }

    /// Adjustment lines for usage that arrived after its month was invoiced.
    public func adjustmentLines(_ late: [LateUsage]) -> [Line] {
        late.filter { $0.current != $0.billed }.sorted { ($0.period, $0.meter) < ($1.period, $1.meter) }.map { entry in
            let price = catalog.plan(entry.plan)?.meters[entry.meter]
            let due = price.map { $0.model.amount(for: entry.current, freeUnits: $0.freeUnits) } ?? 0
            let billed = price.map { $0.model.amount(for: entry.billed, freeUnits: $0.freeUnits) } ?? 0
            let delta = entry.current - entry.billed
            return Line(
                kind: .adjustment,
                description: "\(entry.meter): \(delta > 0 ? "+" : "")\(delta) late usage for \(Self.label(entry.period))",
                meter: entry.meter, quantity: delta, amount: due - billed, usagePeriod: entry.period)
        }
    }
}
