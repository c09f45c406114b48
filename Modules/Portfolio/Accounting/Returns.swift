import Foundation

/// Returns of a series of daily values and external flows.
///
/// - **Time-weighted (TWR)**, linked daily: each day's return is
///   `(end value + outflows) / (previous end value + inflows) − 1` (money paid in counts
///   from the day's start, money taken out at its end), and the period's is the product
///   of `1 + r` less one. Flows do not move it: it measures the investments, not the
///   timing of deposits. A day that starts with nothing invested is skipped.
/// - **Money-weighted (XIRR)**: the yearly rate at which the investor's flows (paid in
///   negative, taken out positive, the end value positive on the last day) are worth
///   zero, with years of 365 days. Found by bisection to 1e-12 (the one place this
///   module uses binary floating point: a rate is a root, not an amount), reported to
///   six places; `nil` with a reason when no rate solves it.
enum Returns {
    struct Day: Sendable {
        var day: Int
        var value: Decimal
        var inflow: Decimal
        var outflow: Decimal
    }

    static func timeWeighted(_ days: [Day], startValue: Decimal) -> Decimal {
        var growth: Decimal = 1
        var previous = startValue
        for day in days {
            let base = previous + day.inflow
            if base > 0 { growth *= (day.value + day.outflow) / base }
            previous = day.value
        }
        return growth - 1
    }

    enum Unsolved: Error, Equatable {
        case oneSigned
        case noRoot
    }

    /// `flows` are (day number, amount from the investor's side).
    static func xirr(_ flows: [(day: Int, amount: Decimal)]) -> Result<Double, Unsolved> {
        let amounts = flows.map { (Double($0.day - (flows.first?.day ?? 0)) / 365, NSDecimalNumber(decimal: $0.amount).doubleValue) }
        guard amounts.contains(where: { $0.1 > 0 }), amounts.contains(where: { $0.1 < 0 }) else { return .failure(.oneSigned) }
        func value(_ rate: Double) -> Double { amounts.reduce(0) { $0 + $1.1 / pow(1 + rate, $1.0) } }
        var (low, high) = (-0.999_999, 1.0)
        while value(low).sign == value(high).sign, high < 1e6 { high *= 10 }
        guard value(low).sign != value(high).sign else { return .failure(.noRoot) }
        for _ in 0..<200 where high - low > 1e-12 {
            let middle = (low + high) / 2
            if value(low).sign == value(middle).sign { low = middle } else { high = middle }
        }
        return .success((low + high) / 2)
    }
}
