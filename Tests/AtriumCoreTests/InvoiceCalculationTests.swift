import AtriumCore
import Foundation
import Testing

/// Invoices computed by hand, line by line, for every pricing model and proration rule.
@Suite("Invoice calculation")
struct InvoiceCalculationTests {
    static let catalog = """
        plans:
          free:
            name: Free
            price: 0
          pro:
            name: Pro
            price: 1999
          metered:
            name: Metered
            price: 1000
            meters:
              x.calls: { per_unit: 3, free_units: 100 }
              x.rows: { graduated: [ { up_to: 1000, unit: 0 }, { up_to: 5000, unit: 2, flat: 500 }, { unit: 1 } ] }
              x.seats: { volume: [ { up_to: 10, unit: 700 }, { up_to: 50, unit: 500 }, { unit: 300 } ] }
              x.gigabytes: { package: { size: 10, amount: 250 } }
              x.tokens: { per_unit_millis: 15 }
          consultant:
            name: Stock consultant
            currency: INR
            price: 0
            meters:
              advisory.portfolio_analyses: { per_unit: 500 }
              advisory.advice_generated: { per_unit: 200 }
        """

    let calculation: InvoiceCalculation
    let november: Date

    init() throws {
        calculation = InvoiceCalculation(catalog: try PlanCatalog.parse(Self.catalog, path: "plans.yaml"))
        november = try Metering.period("2026-11")
    }

    func day(_ day: Int, hour: Int = 0) -> Date {
        november.addingTimeInterval(Double(day - 1) * 86_400 + Double(hour) * 3600)
    }

    func usage(_ values: [String: Int64]) -> [Metering.MeterUsage] {
        values.sorted { $0.key < $1.key }.map { .init(meter: $0.key, aggregation: "sum", unit: "unit", value: $0.value, events: 1) }
    }

    @Test func aWholeMonthOnOnePlanBillsTheFlatFee() throws {
        let lines = try calculation.subscriptionLines(
            spans: [.init(plan: "pro", start: day(1).addingTimeInterval(-86_400 * 40), end: nil)], period: november, trialEndsAt: nil, canceledAt: nil)
        #expect(lines.map(\.amount) == [1999])
        #expect(lines.first?.description == "Pro plan, 2026-11")
    }

    @Test func aMidMonthUpgradeProratesBothPlans() throws {
        // Free until 16 November 00:00, then Pro: 15 of 30 days each. 1999 × 15/30 = 999.5 → 1000 (half up).
        let spans: [InvoiceCalculation.PlanSpan] = [
            .init(plan: "free", start: day(1).addingTimeInterval(-86_400), end: day(16)), .init(plan: "pro", start: day(16), end: nil),
        ]
        let lines = try calculation.subscriptionLines(spans: spans, period: november, trialEndsAt: nil, canceledAt: nil)
        #expect(lines.map(\.amount) == [0, 1000])
        #expect(lines.last?.description == "Pro plan, 2026-11-16 to 2026-12-01 (15.0 of 30 days)")
        // A downgrade at noon on the 10th: 9.5 days of Pro = 1999 × 9.5/30 = 633.02 → 633.
        let down: [InvoiceCalculation.PlanSpan] = [
            .init(plan: "pro", start: day(1), end: day(10, hour: 12)), .init(plan: "free", start: day(10, hour: 12), end: nil),
        ]
        #expect(try calculation.subscriptionLines(spans: down, period: november, trialEndsAt: nil, canceledAt: nil).map(\.amount) == [633, 0])
    }

    @Test func trialAndCancellationStopTheFee() throws {
        let spans: [InvoiceCalculation.PlanSpan] = [.init(plan: "pro", start: day(1), end: nil)]
        // Trial until the 11th: 20 days billed, 1999 × 20/30 = 1332.67 → 1333.
        #expect(try calculation.subscriptionLines(spans: spans, period: november, trialEndsAt: day(11), canceledAt: nil).map(\.amount) == [1333])
        // Canceled on the 7th: 6 days, 1999 × 6/30 = 399.8 → 400.
        #expect(try calculation.subscriptionLines(spans: spans, period: november, trialEndsAt: nil, canceledAt: day(7)).map(\.amount) == [400])
        // A trial that outlasts the month bills nothing.
        #expect(try calculation.subscriptionLines(spans: spans, period: november, trialEndsAt: day(1).addingTimeInterval(86_400 * 40), canceledAt: nil).isEmpty)
    }

    @Test func everyPricingModelOnOneInvoice() throws {
        let plan = try #require(calculation.catalog.plan("metered"))
        let lines = calculation.usageLines(
            usage: usage(["x.calls": 250, "x.rows": 5001, "x.seats": 11, "x.gigabytes": 21, "x.tokens": 333, "x.unpriced": 7, "x.idle": 0]),
            plan: plan, period: november)
        let amounts = Dictionary(uniqueKeysWithValues: lines.compactMap { line in line.meter.map { ($0, line.amount) } })
        #expect(amounts["x.calls"] == 450)  // (250 - 100 free) × 3
        #expect(amounts["x.rows"] == 8501)  // 1000 × 0 + (4000 × 2 + 500) + 1 × 1
        #expect(amounts["x.seats"] == 5500)  // all 11 at the 11-50 tier: 11 × 500
        #expect(amounts["x.gigabytes"] == 750)  // ceil(21 / 10) = 3 packages × 250
        #expect(amounts["x.tokens"] == 5)  // 333 × 0.015 = 4.995 → 5, rounded once
        #expect(amounts["x.unpriced"] == 0)  // listed, included in the plan
        #expect(amounts["x.idle"] == nil)  // no usage, no line
        // Tier boundaries: exactly 1000 rows are free; 1001 reach the second tier and its flat fee.
        #expect(calculation.usageLines(usage: usage(["x.rows": 1000]), plan: plan, period: november).first?.amount == 0)
        #expect(calculation.usageLines(usage: usage(["x.rows": 1001]), plan: plan, period: november).first?.amount == 502)
        // Volume boundary: 10 seats stay in the first tier, 50 in the second.
        #expect(calculation.usageLines(usage: usage(["x.seats": 10]), plan: plan, period: november).first?.amount == 7000)
        #expect(calculation.usageLines(usage: usage(["x.seats": 50]), plan: plan, period: november).first?.amount == 25000)
    }

    @Test func theStockConsultantsPricingInRupees() throws {
        let plan = try #require(calculation.catalog.plan("consultant"))
        let lines = calculation.usageLines(
            usage: usage(["advisory.portfolio_analyses": 12, "advisory.advice_generated": 30]), plan: plan, period: november)
        // 12 × 5.00 + 30 × 2.00 = 120.00 INR.
        #expect(lines.reduce(0) { $0 + $1.amount } == 12000)
        #expect(plan.currency == "INR")
        #expect(Money(minorUnits: 12000, currency: "INR").description == "120.00 INR")
    }

    @Test func lateUsageBecomesAnAdjustmentPricedByItsMonthsPlan() throws {
        let october = try Metering.period("2026-10")
        let lines = calculation.adjustmentLines([
            .init(period: october, plan: "metered", meter: "x.rows", current: 1200, billed: 900),
            .init(period: october, plan: "metered", meter: "x.calls", current: 80, billed: 80),
        ])
        // 900 rows were free; 1200 cost 200 × 2 + 500 = 900. Unchanged meters get no line.
        #expect(lines.count == 1)
        #expect(lines.first?.amount == 900)
        #expect(lines.first?.quantity == 300)
        #expect(lines.first?.usagePeriod == october)
        #expect(lines.first?.description == "x.rows: +300 late usage for 2026-10")
    }

    @Test func prorationRoundsHalfUpInWholeSeconds() {
        #expect(InvoiceCalculation.prorate(1999, seconds: 15 * 86_400, of: 30 * 86_400) == 1000)
        #expect(InvoiceCalculation.prorate(1, seconds: 1, of: 3) == 0)
        #expect(InvoiceCalculation.prorate(3, seconds: 1, of: 2) == 2)
        #expect(InvoiceCalculation.prorate(1999, seconds: 30 * 86_400, of: 30 * 86_400) == 1999)
    }

    @Test(arguments: 0..<25) func graduatedPricingEqualsUnitByUnitPricingForRandomTiers(seed: Int) throws {
        var generator = SeededGenerator(seed: UInt64(seed + 1))
        var bound: Int64 = 0
        var tiers: [PriceModel.Tier] = []
        let count = Int.random(in: 1...5, using: &generator)
        for index in 0..<count {
            bound += Int64.random(in: 1...500, using: &generator)
            // The last tier is unbounded, as the catalog requires.
            tiers.append(.init(upTo: index == count - 1 ? nil : bound, unitAmount: .random(in: 0...50, using: &generator),
                               flatAmount: .random(in: 0...100, using: &generator)))
        }
        let model = PriceModel.graduated(tiers)
        #expect(model.problems.isEmpty)
        let quantity = Int64.random(in: 0...3000, using: &generator)
        // Independently of the implementation: price each unit by the tier it falls in,
        // and add the flat amount of every tier that at least one unit reaches.
        var expected: Int64 = 0
        var reached = Set<Int>()
        if quantity > 0 {
            for unit in 1...quantity {
                let index = tiers.firstIndex { unit <= ($0.upTo ?? .max) } ?? tiers.count - 1
                expected += tiers[index].unitAmount
                reached.insert(index)
            }
        }
        expected += reached.map { tiers[$0].flatAmount }.reduce(0, +)
        #expect(model.amount(for: quantity) == expected, "tiers \(tiers), quantity \(quantity)")
    }
}

/// A small deterministic generator so property tests replay the same cases.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
