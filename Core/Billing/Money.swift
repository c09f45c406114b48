/// An amount of money: integer minor units (cents, paise) and an ISO 4217 currency, so
/// no amount is ever a binary fraction.
public struct Money: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    public var minorUnits: Int64
    public var currency: String

    public init(minorUnits: Int64, currency: String) {
        self.minorUnits = minorUnits
        self.currency = currency
    }

    /// Three uppercase letters, as ISO 4217 codes are.
    public static func isCurrencyCode(_ code: String) -> Bool {
        code.count == 3 && code.allSatisfy { $0.isASCII && $0.isUppercase }
    }

    public var description: String {
        let sign = minorUnits < 0 ? "-" : ""
        let absolute = minorUnits.magnitude
        let fraction = absolute % 100
        return "\(sign)\(absolute / 100).\(fraction < 10 ? "0" : "")\(fraction) \(currency)"
    }
}
