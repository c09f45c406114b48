public import Foundation

/// The ranges every value must be in before it reaches SQL or the database driver.
///
/// Checking once where a value is decoded is what keeps hostile-but-plausible input
/// from becoming a 500 (PostgreSQL refusing it) or a crash (the driver trapping on a
/// `Date` whose microseconds do not fit an `Int64`). Bodies, query parameters,
/// cursors and imported rows all go through these rules, so a value is valid or not
/// the same way whichever door it came through.
public enum InputDomain {
    /// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z: the years PostgreSQL's
    /// `timestamptz` and `date` share with RFC 3339.
    public static let earliestTime = Date(timeIntervalSince1970: -62_135_596_800)
    public static let latestTime = Date(timeIntervalSince1970: 253_402_300_799.999_999)

    /// The largest amount of money, in minor units, a record may hold (10^15: ten
    /// trillion of a two-decimal currency). Sums of many such amounts are computed in
    /// `numeric`, never in `bigint`.
    public static let maximumAmount: Int64 = 1_000_000_000_000_000

    /// Whether `date` can be stored: finite and within years 1 to 9999.
    public static func isStorable(_ date: Date) -> Bool {
        let seconds = date.timeIntervalSince1970
        return seconds.isFinite && seconds >= earliestTime.timeIntervalSince1970 && seconds <= latestTime.timeIntervalSince1970
    }

    /// Length as PostgreSQL's `length()` and `varchar(n)` count it: in code points, not
    /// in the grapheme clusters `String.count` counts (a family emoji is one grapheme
    /// and seven code points).
    public static func length(_ text: String) -> Int {
        text.unicodeScalars.count
    }

    /// Whether `text` holds U+0000, which PostgreSQL's text types cannot store.
    public static func containsNUL(_ text: some StringProtocol) -> Bool {
        text.utf8.contains(0)
    }

    /// The first reason `text` cannot be stored in a text column of at most `maximum`
    /// code points (nil when it can).
    public static func textProblem(_ text: String, maximum: Int? = nil) -> String? {
        if containsNUL(text) { return "must not contain NUL characters" }
        if let maximum, length(text) > maximum { return "must be at most \(maximum) characters" }
        return nil
    }

    /// Parses an RFC 3339 date-time (`2024-05-01T12:30:00Z`, fractions and offsets
    /// allowed), refusing what is not a real calendar time in years 1 to 9999 — where
    /// Foundation's parser accepts `2024-02-30` and year 0.
    public static func parseTimestamp(_ text: some StringProtocol) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, bytes.count <= 40 else { return nil }
        guard let day = civilDay(bytes, at: 0), bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: "t") || bytes[10] == UInt8(ascii: " ")
        else { return nil }
        guard let hour = digits(bytes, 11, 2), bytes[13] == UInt8(ascii: ":"), let minute = digits(bytes, 14, 2), bytes[16] == UInt8(ascii: ":"),
            let second = digits(bytes, 17, 2), hour <= 23, minute <= 59, second <= 59
        else { return nil }
        var index = 19
        var fraction = 0.0
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            var scale = 0.1
            let start = index
            while index < bytes.count, let digit = digit(bytes[index]) {
                fraction += Double(digit) * scale
                scale /= 10
                index += 1
            }
            guard index > start, index - start <= 9 else { return nil }
        }
        guard index < bytes.count else { return nil }
        var offset = 0
        switch bytes[index] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            index += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            guard index + 6 == bytes.count, let hours = digits(bytes, index + 1, 2), bytes[index + 3] == UInt8(ascii: ":"),
                let minutes = digits(bytes, index + 4, 2), hours <= 23, minutes <= 59
            else { return nil }
            offset = (hours * 60 + minutes) * 60 * (bytes[index] == UInt8(ascii: "-") ? -1 : 1)
            index += 6
        default:
            return nil
        }
        guard index == bytes.count else { return nil }
        let seconds = Double(day * 86_400 + hour * 3_600 + minute * 60 + second - offset) + fraction
        let date = Date(timeIntervalSince1970: seconds)
        return isStorable(date) ? date : nil
    }

    /// Whether `text` is a calendar date `YYYY-MM-DD` in years 1 to 9999.
    public static func isDate(_ text: some StringProtocol) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.count == 10 && civilDay(bytes, at: 0) != nil
    }

    // MARK: - Parsing helpers

    /// Days since 1970-01-01 of the `YYYY-MM-DD` at `start`, or nil when it is no real date.
    private static func civilDay(_ bytes: [UInt8], at start: Int) -> Int? {
        guard bytes.count >= start + 10, let year = digits(bytes, start, 4), bytes[start + 4] == UInt8(ascii: "-"),
            let month = digits(bytes, start + 5, 2), bytes[start + 7] == UInt8(ascii: "-"), let day = digits(bytes, start + 8, 2),
            (1...9999).contains(year), (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year)
        else { return nil }
        // Howard Hinnant's days_from_civil.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    private static func digits(_ bytes: [UInt8], _ start: Int, _ count: Int) -> Int? {
        guard start + count <= bytes.count else { return nil }
        var value = 0
        for index in start..<(start + count) {
            guard let digit = digit(bytes[index]) else { return nil }
            value = value * 10 + digit
        }
        return value
    }

    private static func digit(_ byte: UInt8) -> Int? {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") ? Int(byte - UInt8(ascii: "0")) : nil
    }
}
