/// How a meter's usage in one period becomes an amount.
///
/// Every model charges in integer minor units. Free units are taken off the quantity
/// before pricing. Rounding: a per-unit price given in fractions of a minor unit
/// (`unit_amount_decimal`) is multiplied out exactly and the line rounded once, half up,
/// at the end — never per unit.
public enum PriceModel: Sendable, Equatable {
    /// `quantity × unitAmount`.
    case perUnit(unitAmount: Int64)
    /// `quantity × unitAmountMillis / 1000`, rounded half up once per line.
    case perUnitDecimal(unitAmountMillis: Int64)
    /// Each tier prices the units that fall inside it (plus its flat amount when reached).
    case graduated([Tier])
    /// The tier the whole quantity falls in prices every unit (plus its flat amount).
    case volume([Tier])
    /// `ceil(quantity / size) × amount`.
    case package(size: Int64, amount: Int64)

    /// One tier; `upTo` nil means unbounded (only the last tier may be).
    public struct Tier: Sendable, Equatable {
        public var upTo: Int64?
        public var unitAmount: Int64
        public var flatAmount: Int64
        public init(upTo: Int64?, unitAmount: Int64, flatAmount: Int64 = 0) {
            self.upTo = upTo
            self.unitAmount = unitAmount
            self.flatAmount = flatAmount
        }
    }

    /// The amount for `quantity` units after `freeUnits` are taken off.
    ///
    /// Arithmetic saturates at `Int64.max` rather than trapping: an absurd quantity
    /// priced by a large unit amount must not take the billing job (and the process
    /// running it) down; such an amount is far beyond anything payable and shows as such.
    public func amount(for quantity: Int64, freeUnits: Int64 = 0) -> Int64 {
        let billable = max(0, quantity - max(0, freeUnits))
        switch self {
        case .perUnit(let unit):
            return Self.times(billable, unit)
        case .perUnitDecimal(let millis):
            let product = Self.times(billable, millis)
            return product == .max ? .max : (product + 500) / 1000
        case .graduated(let tiers):
            guard billable > 0 else { return 0 }
            var total: Int64 = 0
            var lower: Int64 = 0
            for tier in tiers {
                let upper = tier.upTo ?? Int64.max
                guard billable > lower else { break }
                let unitsHere = min(billable, upper) - lower
                total = Self.plus(total, Self.plus(Self.times(unitsHere, tier.unitAmount), tier.flatAmount))
                lower = upper
            }
            return total
        case .volume(let tiers):
            guard billable > 0, let tier = tiers.first(where: { billable <= ($0.upTo ?? Int64.max) }) ?? tiers.last else { return 0 }
            return Self.plus(Self.times(billable, tier.unitAmount), tier.flatAmount)
        case .package(let size, let amount):
            guard size > 0 else { return 0 }
            return Self.times(billable / size + (billable % size == 0 ? 0 : 1), amount)
        }
    }

    private static func times(_ a: Int64, _ b: Int64) -> Int64 {
        let (product, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? .max : product
    }

    private static func plus(_ a: Int64, _ b: Int64) -> Int64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : sum
    }

    /// Problems with the model's numbers, for the catalog's validation.
    public var problems: [String] {
        var problems: [String] = []
        switch self {
        case .perUnit(let unit) where unit < 0, .perUnitDecimal(let unit) where unit < 0:
            problems.append("unit amount is negative")
        case .graduated(let tiers), .volume(let tiers):
            if tiers.isEmpty { problems.append("has no tiers") }
            var previous: Int64 = 0
            for (index, tier) in tiers.enumerated() {
                if tier.unitAmount < 0 || tier.flatAmount < 0 { problems.append("tier \(index + 1) has a negative amount") }
                if let upTo = tier.upTo {
                    if upTo <= previous { problems.append("tier \(index + 1) overlaps the previous one (up_to \(upTo) is not above \(previous))") }
                    previous = upTo
                } else if index != tiers.count - 1 {
                    problems.append("tier \(index + 1) is unbounded but is not the last")
                }
            }
            if let last = tiers.last?.upTo {
                problems.append("the last tier must be unbounded (leave out up_to): usage past \(last) would have no price")
            }
        case .package(let size, let amount):
            if size <= 0 { problems.append("package size must be positive") }
            if amount < 0 { problems.append("package amount is negative") }
        default:
            break
        }
        return problems
    }
}
