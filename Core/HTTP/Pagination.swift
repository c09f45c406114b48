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
