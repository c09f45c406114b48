import Foundation

/// Calendar dates as the API writes them, `YYYY-MM-DD`, checked to be real days of
/// the Gregorian calendar (no 2025-02-30) between 1900 and 2199.
enum TradeDate {
    /// What is wrong with `text` as a date, or nil.
    static func problem(_ text: String) -> String? {
        isValid(text) ? nil : "must be a date written YYYY-MM-DD (1900-01-01 to 2199-12-31)"
    }

    static func isValid(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 10, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-") else { return false }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for index in range {
                guard bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int(bytes[index] - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), (1900...2199).contains(year), (1...12).contains(month)
        else { return false }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        return (1...days).contains(day)
    }

    /// Today in UTC, for reports without `as_of`.
    static func today(_ now: Date) -> String {
        DayNumber.text(Int((now.timeIntervalSince1970 / 86_400).rounded(.down)))
    }

    /// Whole days from `earlier` to `later` (both valid dates).
    static func days(from earlier: String, to later: String) -> Int {
        guard let start = DayNumber.of(earlier), let end = DayNumber.of(later) else { return 0 }
        return end - start
    }
}
