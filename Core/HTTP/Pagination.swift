public import Foundation

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

    /// The values as a JSON array of strings, base64url-encoded (written by hand: one
    /// `JSONEncoder` per page was a visible share of a list's CPU).
    public var encoded: String {
        var json: [UInt8] = [UInt8(ascii: "[")]
        for (index, value) in values.enumerated() {
            if index > 0 { json.append(UInt8(ascii: ",")) }
            JSONText.writeString(value, to: &json)
        }
        json.append(UInt8(ascii: "]"))
        return Base64URL.encode(Data(json))
    }

    /// Decodes `?cursor=`; 422 when it was not issued by us or has `count` values.
    public static func decode(_ text: String?, count: Int) throws(AtriumError) -> PageCursor? {
        guard let text else { return nil }
        // Cursors we issue are short; anything long is junk not worth decoding.
        guard text.utf8.count <= 512 else { throw .validation(field: "cursor", "is not a cursor this list issued") }
        guard let data = Base64URL.decode(text), let values = try? JSONDecoder().decode([String].self, from: data), values.count == count else {
            throw .validation(field: "cursor", "is not a cursor this list issued")
        }
        return PageCursor(values)
    }
}

/// The cursor of lists ordered by (time, id), such as `updated_at, id`: the position
/// after the last row of a page. Its time is checked to be one PostgreSQL can store
/// before it goes anywhere near the driver, which traps on a `Date` out of range.
public struct KeysetCursor: Sendable, Equatable {
    public var time: Date
    public var id: UUID

    public init(time: Date, id: UUID) {
        self.time = time
        self.id = id
    }

    public var encoded: String {
        PageCursor([String(time.timeIntervalSince1970), id.lowercasedString]).encoded
    }

    /// Decodes `?cursor=`; 422 `validation_failed` (field `cursor`) for anything this
    /// list could not have issued, including a time outside years 1 to 9999.
    public static func decode(_ text: String?) throws(AtriumError) -> KeysetCursor? {
        guard let cursor = try PageCursor.decode(text, count: 2) else { return nil }
        guard let seconds = Double(cursor.values[0]), let id = UUID.parsing(cursor.values[1]),
            InputDomain.isStorable(Date(timeIntervalSince1970: seconds))
        else { throw .validation(field: "cursor", "is not a cursor this list issued") }
        return KeysetCursor(time: Date(timeIntervalSince1970: seconds), id: id)
    }
}
