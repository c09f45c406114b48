import AtriumCore
import Foundation
import PostgresNIO

/// Field rules shared by the API and the importer, so a row is valid or not the same
/// way whichever door it came through.
enum Validation {
    /// One `@`, something before it, a dot inside the domain, no whitespace: the
    /// checks that catch typos without rejecting valid rare addresses. Scans bytes once.
    static func isEmail(_ text: String) -> Bool {
        var at = -1
        var dotAfterAt = false
        var count = 0
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "@"):
                if at >= 0 { return false }
                at = count
            case UInt8(ascii: "."):
                if at >= 0 && count > at + 1 { dotAfterAt = true }
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"), 0x0B, 0x0C, 0:
                return false
            default:
                break
            }
            count += 1
        }
        let last = text.utf8.last
        return at > 0 && dotAfterAt && count <= 254 && last != UInt8(ascii: ".") && at < count - 1
    }

    /// `text` lowercased and trimmed of spaces, without allocating when it already is
    /// (Foundation's `trimmingCharacters` goes through `NSString`: 2% of a contact
    /// create's CPU).
    static func normalizedKey(_ text: String) -> String {
        let bytes = text.utf8
        let isBlank = { (byte: UInt8?) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        let needsWork = isBlank(bytes.first) || isBlank(bytes.last)
            || bytes.contains { ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z")) || $0 >= 0x80 }
        return needsWork ? text.trimmingCharacters(in: .whitespaces).lowercased() : text
    }

    /// Whether `text` has at most `limit` characters as PostgreSQL counts them (code
    /// points), counting only when it could not.
    static func fits(_ text: String?, _ limit: Int) -> Bool {
        guard let text else { return true }
        return text.utf8.count <= limit || InputDomain.length(text) <= limit
    }

    static func isDomain(_ text: String) -> Bool {
        text.utf8.count <= 253 && text.range(of: "^[a-z0-9.-]+\\.[a-z]{2,}\\z", options: .regularExpression) != nil
    }

    static func tagsProblem(_ tags: [String]) -> String? {
        if tags.count > 20 { return "at most 20 tags" }
        if tags.contains(where: { $0.isEmpty || InputDomain.length($0) > 50 }) { return "tags are 1 to 50 characters" }
        return nil
    }

    struct Problem: Error {
        var description: String
    }

    /// Tags written `a;b;c`: trimmed, empty ones dropped, checked as `tagsProblem` does.
    /// A list already in that form is returned as it is.
    static func normalizedTags(_ text: String) -> Result<String, Problem> {
        var segments = 1
        var length = 0
        var clean = true
        for byte in text.utf8 {
            if byte == UInt8(ascii: ";") {
                if length == 0 { clean = false }
                segments += 1
                length = 0
            } else {
                if byte == UInt8(ascii: " ") || byte >= 0x80 { clean = false }
                length += 1
                if length > 50 { clean = false }
            }
        }
        if length == 0 { clean = false }
        if clean && segments <= 20 { return .success(text) }
        let list = text.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if let problem = tagsProblem(list) { return .failure(Problem(description: problem)) }
        return .success(list.joined(separator: ";"))
    }

    /// An amount in minor units out of range, or nil.
    static func amountProblem(_ amount: Int64) -> String? {
        (0...InputDomain.maximumAmount).contains(amount) ? nil : "must be from 0 to \(InputDomain.maximumAmount) minor units"
    }

    /// A name (title, SKU) given empty or longer than `maximum`, or nil.
    static func nameProblem(_ name: String, maximum: Int) -> String? {
        name.isEmpty || InputDomain.length(name) > maximum ? "must be 1 to \(maximum) characters" : nil
    }

    static func currencyProblem(_ text: String) -> String? {
        isCurrency(text) ? nil : "must be an ISO 4217 code"
    }

    static func isCurrency(_ text: String) -> Bool {
        text.utf8.count == 3 && text.utf8.allSatisfy { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }
    }

}
