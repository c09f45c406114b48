import AtriumCore
import Foundation

/// Field rules shared by the API and the importer, so a row is valid or not the same
/// way whichever door it came through.
enum Validation {
    static func isEmail(_ text: String) -> Bool {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !parts[1].hasPrefix("."), !parts[1].hasSuffix("."),
            text.count <= 254, !text.contains(where: \.isWhitespace)
        else { return false }
        return true
    }

    static func isDomain(_ text: String) -> Bool {
        text.count <= 253 && text.range(of: "^[a-z0-9.-]+\\.[a-z]{2,}$", options: .regularExpression) != nil
    }

    static func tagsProblem(_ tags: [String]) -> String? {
        if tags.count > 20 { return "at most 20 tags" }
        if tags.contains(where: { $0.isEmpty || $0.count > 50 }) { return "tags are 1 to 50 characters" }
        return nil
    }

    static func isCurrency(_ text: String) -> Bool {
        text.count == 3 && text.allSatisfy { $0.isASCII && $0.isUppercase }
    }

    static func uuid(_ text: String, field: String) throws -> UUID {
        guard let id = UUID(uuidString: text) else { throw AtriumError.validation(field: field, "is not an id") }
        return id
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

    init(_ request: TenantRequest, sortKeyCount: Int) throws {
        limit = try request.limit()
        owner = try request.query("owner").map { try Validation.uuid($0, field: "owner") }
        updatedSince = try request.query("updated_since").map { text in
            guard let date = try? Date(text, strategy: .iso8601) else { throw AtriumError.validation(field: "updated_since", "must be an RFC 3339 time") }
            return date
        }
        search = request.query("q").flatMap { $0.isEmpty ? nil : String($0.prefix(100)) }
        if let cursor = try PageCursor.decode(request.query("cursor"), count: sortKeyCount) {
            guard let seconds = Double(cursor.values[0]), let id = UUID(uuidString: cursor.values[1]) else {
                throw AtriumError.validation(field: "cursor", "is not a cursor this list issued")
            }
            afterTime = Date(timeIntervalSince1970: seconds)
            afterID = id
        }
    }

    /// The cursor of the next page, when there is one (`fetched` counts the extra row).
    func next(fetched: Int, lastTime: Date?, lastID: UUID?) -> String? {
        guard fetched > limit, let lastTime, let lastID else { return nil }
        return PageCursor([String(lastTime.timeIntervalSince1970), lastID.uuidString]).encoded
    }
}
