import Foundation

/// One page of a list: `data`, and `next_cursor` when more rows follow. Every list of
/// the API answers in this shape, so clients page through all of them the same way:
/// pass `?cursor=<next_cursor>` until it is absent.
public struct Page<Item: Sendable>: Sendable {
    public var data: [Item]
    /// Opaque; absent on the last page.
    public var nextCursor: String?

    public init(data: [Item], nextCursor: String? = nil) {
        self.data = data
        self.nextCursor = nextCursor
    }
}

extension Page: Encodable where Item: Encodable {}
extension Page: Decodable where Item: Decodable {}

/// The `?limit=` and `?cursor=` of a keyset-paginated list. Keyset (not offset)
/// pagination stays fast on the thousandth page and skips no row when rows are added
/// while a client pages.
public struct PageRequest: Sendable, Equatable {
    /// Rows per page, 1 to `Pagination.maximumLimit`.
    public var limit: Int
    /// Where the previous page ended; nil for the first page.
    public var after: KeysetCursor?

    public init(limit: Int = Pagination.defaultLimit, after: KeysetCursor? = nil) {
        self.limit = limit
        self.after = after
    }

    /// The page of `fetched`, a query's answer of up to `limit + 1` rows (the extra row
    /// only says that a next page exists), with the cursor after its last row.
    public func page<Item>(_ fetched: [Item], key: (Item) -> KeysetCursor) -> Page<Item> {
        let rows = Array(fetched.prefix(limit))
        guard fetched.count > limit, let last = rows.last else { return Page(data: rows) }
        return Page(data: rows, nextCursor: key(last).encoded)
    }
}

extension TenantRequest {
    /// The request's `?limit=` and `?cursor=`; 422 naming the parameter when either is
    /// not one this API issues.
    public func pageRequest() throws -> PageRequest {
        PageRequest(limit: try limit(), after: try keysetCursor())
    }
}
