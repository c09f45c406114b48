import AtriumCore
import Foundation

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

    /// `text` lowercased and trimmed of spaces, without allocating when it already is.
    static func normalizedKey(_ text: String) -> String {
        let bytes = text.utf8
        let needsWork = bytes.first == UInt8(ascii: " ") || bytes.last == UInt8(ascii: " ")
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

    static func isCurrency(_ text: String) -> Bool {
        text.utf8.count == 3 && text.utf8.allSatisfy { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }
    }

}

/// The query parameters every list shares: `limit`, `cursor` (keyset on updated_at, id:
/// the row named by the cursor's id gives the exact position; its time is the fallback
/// when that row is gone),
/// `owner`, `updated_since` and `q`.
struct ListFilter: Sendable {
    var limit: Int
    var owner: UUID?
    var updatedSince: Date?
    var search: String?
    var afterTime: Date?
    var afterID: UUID?

    /// `%q%` for ILIKE, with the wildcard characters of `q` escaped.
    var pattern: String? {
        search.map { "%" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_") + "%" }
    }

    init(_ request: TenantRequest) throws {
        limit = try request.limit()
        owner = try request.uuidQuery("owner")
        updatedSince = try request.timeQuery("updated_since")
        search = request.query("q").flatMap { $0.isEmpty ? nil : String($0.prefix(100)) }
        let cursor = try request.keysetCursor()
        afterTime = cursor?.time
        afterID = cursor?.id
    }

    /// The page of `fetched` (which holds one row more than the limit when there is a
    /// next page) and the cursor of the next page.
    func page<Record: KeysetRecord>(_ fetched: [Record]) -> (rows: [Record], next: String?) {
        let rows = Array(fetched.prefix(limit))
        return (rows, next(fetched: fetched.count, lastTime: rows.last?.updatedAt, lastID: rows.last?.id))
    }

    /// The cursor of the next page, when there is one (`fetched` counts the extra row).
    private func next(fetched: Int, lastTime: Date?, lastID: UUID?) -> String? {
        guard fetched > limit, let lastTime, let lastID else { return nil }
        return KeysetCursor(time: lastTime, id: lastID).encoded
    }
}

/// A record listed in (updated_at, id) order.
protocol KeysetRecord {
    var id: UUID { get }
    var updatedAt: Date { get }
}
