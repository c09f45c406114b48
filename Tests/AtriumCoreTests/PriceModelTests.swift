import AtriumCore
import Testing

@Suite("Pricing models")
struct PriceModelTests {
    let tiers: [PriceModel.Tier] = [
        .init(upTo: 100, unitAmount: 10),
        .init(upTo: 1000, unitAmount: 8, flatAmount: 500),
        .init(upTo: nil, unitAmount: 5),
    ]

    @Test func perUnitAndFreeUnits() {
        // The stock consultant: 5.00 INR per analysis.
        #expect(PriceModel.perUnit(unitAmount: 500).amount(for: 7) == 3500)
        #expect(PriceModel.perUnit(unitAmount: 500).amount(for: 7, freeUnits: 3) == 2000)
        #expect(PriceModel.perUnit(unitAmount: 500).amount(for: 2, freeUnits: 3) == 0)
    }

    @Test func decimalUnitPricesRoundOncePerLineHalfUp() {
        // 0.125 of a cent per call: 3 calls are 0.375 → 0; 4 are 0.5 → 1; 1000 are exactly 125.
        #expect(PriceModel.perUnitDecimal(unitAmountMillis: 125).amount(for: 3) == 0)
        #expect(PriceModel.perUnitDecimal(unitAmountMillis: 125).amount(for: 4) == 1)
        #expect(PriceModel.perUnitDecimal(unitAmountMillis: 125).amount(for: 1000) == 125)
    }

    @Test func graduatedPricesEachTierAtTheBoundaries() {
        let model = PriceModel.graduated(tiers)
        #expect(model.amount(for: 0) == 0)
        #expect(model.amount(for: 100) == 1000)
        #expect(model.amount(for: 101) == 1000 + 8 + 500)
        #expect(model.amount(for: 1000) == 1000 + 900 * 8 + 500)
        #expect(model.amount(for: 1001) == 1000 + 900 * 8 + 500 + 5)
    }

    @Test func graduatedEqualsTheSumOfItsTiers() {
        let model = PriceModel.graduated(tiers)
        for quantity in Int64(0)...2500 {
            let first = min(quantity, 100) * 10
            let second = quantity > 100 ? (min(quantity, 1000) - 100) * 8 + 500 : 0
            let third = max(0, quantity - 1000) * 5
            #expect(model.amount(for: quantity) == first + second + third, "quantity \(quantity)")
        }
    }

    @Test func volumePricesEveryUnitAtTheReachedTier() {
        let model = PriceModel.volume(tiers)
        #expect(model.amount(for: 100) == 1000)
        #expect(model.amount(for: 101) == 101 * 8 + 500)
        #expect(model.amount(for: 5000) == 5000 * 5)
    }

    @Test func packagesRoundUp() {
        let model = PriceModel.package(size: 1000, amount: 200)
        #expect(model.amount(for: 1) == 200)
        #expect(model.amount(for: 1000) == 200)
        #expect(model.amount(for: 1001) == 400)
        #expect(model.amount(for: 2500, freeUnits: 500) == 400)
    }

    @Test func validationNamesBadTiers() {
        #expect(PriceModel.graduated([.init(upTo: 100, unitAmount: 1), .init(upTo: 50, unitAmount: 1), .init(upTo: nil, unitAmount: 1)]).problems
            == ["tier 2 overlaps the previous one (up_to 50 is not above 100)"])
        // Usage past a bounded last tier would be billed nothing: such tiers are refused.
        #expect(PriceModel.graduated([.init(upTo: 100, unitAmount: 1)]).problems
            == ["the last tier must be unbounded (leave out up_to): usage past 100 would have no price"])
        #expect(!PriceModel.volume([.init(upTo: 10, unitAmount: 1)]).problems.isEmpty)
        #expect(PriceModel.volume([.init(upTo: nil, unitAmount: 1), .init(upTo: 10, unitAmount: 1)]).problems.contains("tier 1 is unbounded but is not the last"))
        #expect(PriceModel.perUnit(unitAmount: -1).problems == ["unit amount is negative"])
        #expect(PriceModel.package(size: 0, amount: 1).problems == ["package size must be positive"])
        #expect(Money(minorUnits: 1999, currency: "USD").description == "19.99 USD")
        #expect(Money.isCurrencyCode("INR"))
        #expect(!Money.isCurrencyCode("usd"))
    }

    @Test func amountsSaturateInsteadOfTrapping() {
        #expect(PriceModel.perUnit(unitAmount: 1_000_000).amount(for: Int64.max / 2) == Int64.max)
        #expect(PriceModel.graduated(tiers).amount(for: Int64.max) == Int64.max)
        #expect(PriceModel.package(size: 10, amount: Int64.max).amount(for: 11) == Int64.max)
        #expect(PriceModel.perUnitDecimal(unitAmountMillis: 1_000).amount(for: Int64.max) == Int64.max)
    }
}
