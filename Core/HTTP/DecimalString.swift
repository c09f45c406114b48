public import Foundation

/// An exact decimal as JSON carries it in Atrium's API: a string (`"1234.50"`), never a
/// JSON number, which most clients parse into a binary double before it reaches the wire
/// (0.1 + 0.2 is not 0.3 there). A body that sends a number for one is refused with 422
/// naming the field, so no amount is ever rounded on its way in.
///
/// The text is kept as sent (after checking it is plain decimal notation: an optional
/// minus, digits, an optional point and digits; no exponent, no `+`, at most 38
/// significant digits, as `Decimal` holds them exactly). Bind it to SQL as text with a
/// cast, `\(amount.text)::numeric`, so PostgreSQL parses the same characters.
public struct DecimalString: Sendable, Hashable, Codable, CustomStringConvertible, JSONSchemaDescribable {
    /// The decimal as sent, e.g. `"-12.50"`.
    public let text: String
    /// The same value, exact.
    public let value: Decimal

    /// nil for text that is not plain decimal notation.
    public init?(_ text: String) {
        guard let value = Self.parse(text) else { return nil }
        self.text = text
        self.value = value
    }

    /// The value exactly, in as many digits as it has (a quantity after a split).
    public init(_ value: Decimal) {
        let text = value.description
        self.text = text == "-0" ? "0" : text
        self.value = value
    }

    /// The value written with exactly `scale` fraction digits, rounded half-even (banker's
    /// rounding, so a column of rounded figures does not drift upward).
    public init(_ value: Decimal, scale: Int) {
        let rounded = DecimalString.rounded(value, scale: scale)
        self.text = DecimalString.fixed(rounded, scale: scale)
        self.value = rounded
    }

    public var description: String { text }

    public static var jsonSchema: JSONSchema { .string(format: "decimal") }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            guard let parsed = DecimalString(text) else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "must be a decimal number written as a string, such as \"1234.50\" (no exponent, at most 38 digits)")
            }
            self = parsed
            return
        }
        throw DecodingError.dataCorruptedError(
            in: container, debugDescription: "must be a decimal number written as a string, such as \"1234.50\", not a JSON number (which clients round through binary floating point)")
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(text)
    }

    /// `value` rounded half-even to `scale` fraction digits.
    public static func rounded(_ value: Decimal, scale: Int) -> Decimal {
        var value = value
        var result = Decimal()
        NSDecimalRound(&result, &value, scale, .bankers)
        return result
    }

    /// `value` (already rounded to `scale`) with exactly `scale` fraction digits.
    static func fixed(_ value: Decimal, scale: Int) -> String {
        var text = value.description
        if text == "-0" { text = "0" }
        guard scale > 0 else { return text }
        let parts = text.split(separator: ".", maxSplits: 1)
        let fraction = parts.count == 2 ? String(parts[1]) : ""
        return String(parts[0]) + "." + fraction + String(repeating: "0", count: max(0, scale - fraction.count))
    }

    /// The value of plain decimal text, nil for anything else. Up to 19 significant
    /// digits (every price, quantity and amount in practice) are read straight into the
    /// mantissa, with no locale and no scanner: a report reads hundreds of thousands of
    /// closes as text, and `Decimal(string:)` cost a microsecond and more each. Longer
    /// text takes Foundation's parser, which is exact up to `Decimal`'s 38 digits.
    static func parse(_ text: String) -> Decimal? {
        var mantissa: UInt64 = 0
        var significant = 0
        var fractionDigits = 0
        var seenPoint = false
        var negative = false
        var digits = 0
        for (offset, byte) in text.utf8.enumerated() {
            switch byte {
            case UInt8(ascii: "-") where offset == 0:
                negative = true
            case UInt8(ascii: "."):
                guard !seenPoint, digits > 0 else { return nil }
                seenPoint = true
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                digits += 1
                if seenPoint { fractionDigits += 1 }
                if mantissa == 0 && byte == UInt8(ascii: "0") { continue }
                significant += 1
                guard significant <= 19 else {
                    guard isPlainDecimal(text) else { return nil }
                    return Decimal(string: text, locale: Locale(identifier: "en_US_POSIX"))
                }
                mantissa = mantissa * 10 + UInt64(byte - UInt8(ascii: "0"))
            default:
                return nil
            }
        }
        guard digits > 0, text.utf8.last != UInt8(ascii: ".") else { return nil }
        return Decimal(sign: negative && mantissa != 0 ? .minus : .plus, exponent: -fractionDigits, significand: Decimal(mantissa))
    }

    static func isPlainDecimal(_ text: String) -> Bool {
        var digits = 0
        var significant = 0
        var seenPoint = false
        var leadingZeros = true
        for (offset, byte) in text.utf8.enumerated() {
            switch byte {
            case UInt8(ascii: "-") where offset == 0:
                continue
            case UInt8(ascii: "."):
                guard !seenPoint, digits > 0 else { return false }
                seenPoint = true
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                digits += 1
                if byte != UInt8(ascii: "0") { leadingZeros = false }
                if !leadingZeros { significant += 1 }
            default:
                return false
            }
        }
        return digits > 0 && text.utf8.last != UInt8(ascii: ".") && significant <= 38
    }
}
