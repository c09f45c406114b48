import Foundation

/// The list conventions: `?limit=` from 1 to 200, 50 by default.
public enum Pagination {
    public static let defaultLimit = 50
    public static let maximumLimit = 200

    /// Parses `limit`, answering 422 for anything but an integer in range.
    public static func limit(_ text: String?) throws(AtriumError) -> Int {
        guard let text else { return defaultLimit }
        guard let value = Int(text), (1...maximumLimit).contains(value) else {
            throw .validation(field: "limit", "must be an integer from 1 to \(maximumLimit)")
        }
        return value
    }
}

/// An opaque `next_cursor`: the sort key of the last row of a page (for keyset
/// pagination, which stays fast and stable while rows are added), as base64url JSON.
public struct PageCursor: Sendable, Equatable {
    public var values: [String]

    public init(_ values: [String]) {
        self.values = values
    }

    public var encoded: String {
        let data = (try? JSONEncoder().encode(values)) ?? Data()
        return data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Decodes `?cursor=`; 422 when it was not issued by us or has `count` values.
    public static func decode(_ text: String?, count: Int) throws(AtriumError) -> PageCursor? {
        guard let text else { return nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let values = try? JSONDecoder().decode([String].self, from: data), values.count == count else {
            throw .validation(field: "cursor", "is not a cursor this list issued")
        }
        return PageCursor(values)
    }
}
