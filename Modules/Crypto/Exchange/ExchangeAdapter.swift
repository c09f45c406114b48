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

/// One exchange's REST API, as the module needs it. A second exchange (Kraken: nonce and
/// HMAC-SHA512) is another conformance; nothing that calls this changes.
protocol ExchangeAdapter: Sendable {
    /// The exchange's name as stored (`binance`).
    var exchange: String { get }
    /// What `credentials` may do; `rejectedCredentials` when the exchange refuses them.
    func permissions(of credentials: ExchangeCredentials) async throws(ExchangeFailure) -> KeyPermissions
}
