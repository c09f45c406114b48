import Foundation

/// An API key and its secret, as the user pasted them. Lives only in the handler that
/// checks or stores them and in a sync run: never logged, returned or queued.
struct ExchangeCredentials: Sendable {
    var apiKey: String
    var apiSecret: String
}

/// What an exchange says a key may do.
struct KeyPermissions: Sendable, Codable, Equatable {
    var reading: Bool
    var spotTrading: Bool
    var withdrawals: Bool
}

/// Why an exchange call did not give an answer to use.
enum ExchangeFailure: Error, Sendable, Equatable {
    /// The exchange refused the key (unknown, revoked, bad signature): the user must
    /// give new credentials. `code` is the exchange's own (Binance `-2015`).
    case rejectedCredentials(code: Int, message: String)
    /// The exchange could not be reached or answered 5xx, 429 or 418: try again later
    /// (`retryAfter` seconds when it said).
    case unavailable(reason: String, retryAfter: Int?)
    /// Our clock and the exchange's disagree by more than it accepts, even after
    /// measuring the offset again.
    case clockSkew(milliseconds: Int64)
    /// An answer that is not what the exchange documents.
    case badResponse(String)
}

/// An asset's balance on the account (decimal text as the exchange wrote it).
struct ExchangeBalance: Sendable, Equatable {
    var asset: String
    var free: String
    var locked: String
}

/// A market the exchange lists: `BTCUSDT` trades `BTC` (base) against `USDT` (quote).
struct ExchangeMarket: Sendable, Equatable {
    var symbol: String
    var base: String
    var quote: String
}

/// One fill of the account's, as the exchange reports it (decimals as text).
struct ExchangeTrade: Sendable, Equatable {
    var symbol: String
    var id: Int64
    var orderId: Int64
    var price: String
    var quantity: String
    var quoteQuantity: String
    var commission: String
    var commissionAsset: String
    /// Milliseconds since 1970.
    var time: Int64
    var isBuyer: Bool
    var isMaker: Bool
}

/// One exchange's REST API, as the module needs it. A second exchange (Kraken: nonce and
/// HMAC-SHA512) is another conformance; nothing that calls this changes.
protocol ExchangeAdapter: Sendable {
    /// The exchange's name as stored (`binance`).
    var exchange: String { get }
    /// What `credentials` may do; `rejectedCredentials` when the exchange refuses them.
    func permissions(of credentials: ExchangeCredentials) async throws(ExchangeFailure) -> KeyPermissions
    /// The account's balances.
    func balances(of credentials: ExchangeCredentials) async throws(ExchangeFailure) -> [ExchangeBalance]
    /// The markets the exchange lists.
    func markets() async throws(ExchangeFailure) -> [ExchangeMarket]
    /// The account's trades in `symbol` whose id is `from` or above, in id order, at most `limit`.
    func trades(of credentials: ExchangeCredentials, symbol: String, from: Int64, limit: Int) async throws(ExchangeFailure) -> [ExchangeTrade]
    /// The most trades one `trades` call returns: a shorter page is the last.
    var pageSize: Int { get }
    /// The last price of every market, by symbol (one call).
    func prices() async throws(ExchangeFailure) -> [String: Decimal]
    /// A market's daily closes (UTC days, as the start of the day in milliseconds since
    /// 1970) from `from` through `to`.
    func dailyCloses(of symbol: String, from: Date, to: Date) async throws(ExchangeFailure) -> [Int64: Decimal]
    /// The request weight this adapter's calls have spent so far (what a run records).
    func weightSpent() async -> Int64
}

/// The request weight an adapter's calls spent: one per sync run.
actor WeightTally {
    private(set) var spent: Int64 = 0
    func add(_ weight: Int64) { spent += weight }
}
