import Foundation

/// How the daily valuation multiplies what is held by its price and sums the products.
///
/// Five years of 500 instruments are 650,000 products and twice as many sums; in
/// `Decimal` (whose arithmetic allocates) they took most of a replay's time. `FixedWorth`
/// does the same exactly in 128-bit integers when every quantity and price has at most
/// ten decimal places and the sums fit; `ExactWorth` is `Decimal`, for the rest. Both
/// give the same figures wherever the fixed one applies (the tests hold them to it).
protocol PositionWorth: Sendable {
    associatedtype Held: Sendable
    associatedtype Price: Sendable
    associatedtype Amount: Sendable
    var zero: Amount { get }
    func held(_ quantity: Decimal) throws -> Held
    func price(_ value: Decimal) throws -> Price
    func worth(_ held: Held, at price: Price) throws -> Amount
    func adding(_ amount: Amount, to total: Amount) throws -> Amount
    func subtracting(_ amount: Amount, from total: Amount) throws -> Amount
    func isZero(_ amount: Amount) -> Bool
    func decimal(_ amount: Amount) throws -> Decimal
}

/// `Decimal` throughout: any figure the columns hold.
struct ExactWorth: PositionWorth {
    var zero: Decimal { 0 }
    func held(_ quantity: Decimal) -> Decimal { quantity }
    func price(_ value: Decimal) -> Decimal { value }
    func worth(_ held: Decimal, at price: Decimal) -> Decimal { held * price }
    func adding(_ amount: Decimal, to total: Decimal) -> Decimal { total + amount }
    func subtracting(_ amount: Decimal, from total: Decimal) -> Decimal { total - amount }
    func isZero(_ amount: Decimal) -> Bool { amount == 0 }
    func decimal(_ amount: Decimal) -> Decimal { amount }
}

/// Quantities and prices as integers of 10⁻¹⁰, their products and sums as integers of
/// 10⁻²⁰: exact, and `Inexact` (never a rounded figure) for what does not fit.
struct FixedWorth: PositionWorth {
    /// A figure with more than ten decimal places, or one too large: the valuation is
    /// done in `ExactWorth` instead.
    struct Inexact: Error {}

    static let scale = 10

    var zero: Int128 { 0 }

    func held(_ quantity: Decimal) throws -> Int128 {
        guard let fixed = Self.parse(quantity.description) else { throw Inexact() }
        return fixed
    }

    func price(_ value: Decimal) throws -> Int128 { try held(value) }

    func worth(_ held: Int128, at price: Int128) throws -> Int128 {
        let (product, overflow) = held.multipliedReportingOverflow(by: price)
        guard !overflow else { throw Inexact() }
        return product
    }

    func adding(_ amount: Int128, to total: Int128) throws -> Int128 {
        let (sum, overflow) = total.addingReportingOverflow(amount)
        guard !overflow else { throw Inexact() }
        return sum
    }

    func subtracting(_ amount: Int128, from total: Int128) throws -> Int128 {
        let (difference, overflow) = total.subtractingReportingOverflow(amount)
        guard !overflow else { throw Inexact() }
        return difference
    }

    func isZero(_ amount: Int128) -> Bool { amount == 0 }

    /// The sum as a `Decimal`, which holds 38 digits: more is `Inexact`.
    func decimal(_ amount: Int128) throws -> Decimal {
        let digits = String(amount.magnitude)
        guard digits.count <= 38, let significand = Decimal(string: digits) else { throw Inexact() }
        return Decimal(sign: amount < 0 ? .minus : .plus, exponent: -2 * Self.scale, significand: significand)
    }

    /// Plain decimal text (`-12.50`, as PostgreSQL and `Decimal` write them) as an
    /// integer of 10⁻¹⁰; nil for more than ten decimal places, an exponent, or a value of
    /// 10¹⁸ or more (whose products could pass what 128 bits hold).
    static func parse(_ text: some StringProtocol) -> Int128? {
        var value: Int128 = 0
        var negative = false
        var fractionDigits = 0
        var integerDigits = 0
        var digits = 0
        var seenPoint = false
        for (offset, byte) in text.utf8.enumerated() {
            switch byte {
            case UInt8(ascii: "-") where offset == 0:
                negative = true
            case UInt8(ascii: ".") where !seenPoint:
                seenPoint = true
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                digits += 1
                if seenPoint {
                    fractionDigits += 1
                    guard fractionDigits <= scale else { return nil }
                } else {
                    integerDigits += value == 0 && byte == UInt8(ascii: "0") ? 0 : 1
                    guard integerDigits <= 18 else { return nil }
                }
                value = value * 10 + Int128(byte - UInt8(ascii: "0"))
            default:
                return nil
            }
        }
        guard digits > 0 else { return nil }
        for _ in fractionDigits..<scale { value *= 10 }
        return negative ? -value : value
    }
}
