import AtriumCore
import Crypto
import Foundation
import HTTPTypes
import Logging

/// Binance spot REST (binance-spot-api-docs): SIGNED endpoints take the key in
/// `X-MBX-APIKEY` and `signature`, the hex HMAC-SHA256 of the exact query string under
/// the secret, with `timestamp` (ours, corrected by the offset measured from
/// `GET /api/v3/time`) and `recvWindow=5000`. The base URL is the operator's
/// (`ATRIUM_CRYPTO_BINANCE_URL`), never a tenant's: a tenant-chosen URL would let
/// requests be aimed at internal addresses.
struct BinanceSpot: ExchangeAdapter {
    let baseURL: URL
    let http: OutboundHTTP
    let clock: BinanceClock
    let logger: Logger
    /// The request weight every tenant's syncs share per host (Binance counts weight per
    /// IP address), with its per-minute allowance; nil spends none (a connection's check).
    var weights: (limits: SharedLimits, perMinute: Int64)? = nil
    /// What this adapter's calls spent (an adapter is made per sync run).
    let tally = WeightTally()
    /// How long one call may take before it counts as failed.
    var timeout: Duration = .seconds(10)
    /// The first retry's wait after a 5xx, timeout or reset; each next doubles, plus jitter.
    var backoff: Duration = .milliseconds(500)
    /// Tries of one call before the exchange counts as unavailable.
    static let tries = 4

    func weightSpent() async -> Int64 { await tally.spent }

    var exchange: String { "binance" }

    static let receiveWindow = 5_000
    /// Beyond this the offset is not a clock to correct but a broken one.
    static let maximumSkew: Int64 = 60_000

    /// The hex HMAC-SHA256 of `query` under `secret`: what `signature` carries.
    static func signature(of query: String, secret: String) -> String {
        HMAC<SHA256>.authenticationCode(for: Data(query.utf8), using: SymmetricKey(data: Data(secret.utf8)))
            .map { String(format: "%02x", $0) }.joined()
    }

    func permissions(of credentials: ExchangeCredentials) async throws(ExchangeFailure) -> KeyPermissions {
        let answer = try await signedGET("/sapi/v1/account/apiRestrictions", credentials: credentials)
        guard let object = answer as? [String: Any], let reading = object["enableReading"] as? Bool else {
            throw .badResponse("apiRestrictions without enableReading")
        }
        return KeyPermissions(
            reading: reading, spotTrading: object["enableSpotAndMarginTrading"] as? Bool ?? false,
            withdrawals: object["enableWithdrawals"] as? Bool ?? false)
    }

    var pageSize: Int { 1000 }

    func balances(of credentials: ExchangeCredentials) async throws(ExchangeFailure) -> [ExchangeBalance] {
        let answer = try await signedGET("/api/v3/account", credentials: credentials)
        guard let balances = (answer as? [String: Any])?["balances"] as? [[String: Any]] else { throw .badResponse("account without balances") }
        return try balances.map { (balance) throws(ExchangeFailure) -> ExchangeBalance in
            guard let asset = balance["asset"] as? String, let free = Self.decimal(balance["free"]), let locked = Self.decimal(balance["locked"]) else {
                throw .badResponse("a balance without its asset, free or locked amount")
            }
            return ExchangeBalance(asset: asset, free: free, locked: locked)
        }
    }

    func markets() async throws(ExchangeFailure) -> [ExchangeMarket] {
        let answer = try await call("/api/v3/exchangeInfo", query: nil, apiKey: nil)
        guard let symbols = (answer as? [String: Any])?["symbols"] as? [[String: Any]] else { throw .badResponse("exchangeInfo without symbols") }
        return symbols.compactMap { symbol in
            guard let name = symbol["symbol"] as? String, let base = symbol["baseAsset"] as? String, let quote = symbol["quoteAsset"] as? String else {
                return nil
            }
            return ExchangeMarket(symbol: name, base: base, quote: quote)
        }
    }

    func trades(of credentials: ExchangeCredentials, symbol: String, from: Int64, limit: Int) async throws(ExchangeFailure) -> [ExchangeTrade] {
        let answer = try await signedGET(
            "/api/v3/myTrades", parameters: [("symbol", symbol), ("fromId", String(from)), ("limit", String(limit))], credentials: credentials)
        guard let trades = answer as? [[String: Any]] else { throw .badResponse("myTrades answered what is not a list") }
        return try trades.map { (trade) throws(ExchangeFailure) -> ExchangeTrade in
            guard trade["symbol"] as? String == symbol, let id = (trade["id"] as? NSNumber)?.int64Value,
                let order = (trade["orderId"] as? NSNumber)?.int64Value, let price = Self.decimal(trade["price"]),
                let quantity = Self.decimal(trade["qty"]), let quote = Self.decimal(trade["quoteQty"]),
                let commission = Self.decimal(trade["commission"]), let asset = trade["commissionAsset"] as? String,
                let time = (trade["time"] as? NSNumber)?.int64Value, let isBuyer = trade["isBuyer"] as? Bool, let isMaker = trade["isMaker"] as? Bool
            else { throw .badResponse("a trade of \(symbol) without one of its fields") }
            return ExchangeTrade(
                symbol: symbol, id: id, orderId: order, price: price, quantity: quantity, quoteQuantity: quote, commission: commission,
                commissionAsset: asset, time: time, isBuyer: isBuyer, isMaker: isMaker)
        }
    }

    func prices() async throws(ExchangeFailure) -> [String: Decimal] {
        let answer = try await call("/api/v3/ticker/price", query: nil, apiKey: nil)
        guard let tickers = answer as? [[String: Any]] else { throw .badResponse("ticker/price answered what is not a list") }
        var prices: [String: Decimal] = [:]
        for ticker in tickers {
            guard let symbol = ticker["symbol"] as? String, let price = Self.decimal(ticker["price"]).flatMap(DecimalString.init) else {
                throw .badResponse("a ticker without its symbol or price")
            }
            prices[symbol] = price.value
        }
        return prices
    }

    func dailyCloses(of symbol: String, from: Date, to: Date) async throws(ExchangeFailure) -> [Int64: Decimal] {
        let day: Int64 = 86_400_000
        let start = Int64(from.timeIntervalSince1970 * 1000) / day * day
        let end = Int64(to.timeIntervalSince1970 * 1000)
        var closes: [Int64: Decimal] = [:]
        var next = start
        while next <= end {
            let query = "symbol=\(Self.escaped(symbol))&interval=1d&startTime=\(next)&endTime=\(end)&limit=1000"
            let answer = try await call("/api/v3/klines", query: query, apiKey: nil)
            guard let candles = answer as? [[Any]] else { throw .badResponse("klines answered what is not a list of candles") }
            for candle in candles {
                guard candle.count > 4, let opened = (candle[0] as? NSNumber)?.int64Value, let close = Self.decimal(candle[4]).flatMap(DecimalString.init) else {
                    throw .badResponse("a candle of \(symbol) without its open time or close")
                }
                closes[opened] = close.value
            }
            guard candles.count == 1000, let last = closes.keys.max() else { break }
            next = last + day
        }
        return closes
    }

    /// Decimal text as the exchange writes it, refused when it is not plain decimal notation.
    static func decimal(_ value: Any?) -> String? {
        guard let text = value as? String, DecimalString(text) != nil else { return nil }
        return text
    }

    /// A SIGNED GET of `path`: on `-1021` (our timestamp outside the window) the offset is
    /// measured again and the call made once more.
    func signedGET(_ path: String, parameters: [(String, String)] = [], credentials: ExchangeCredentials) async throws(ExchangeFailure) -> Any {
        do {
            return try await signedGETOnce(path, parameters: parameters, credentials: credentials, remeasure: false)
        } catch .rejectedCredentials(code: -1021, _) {
            do {
                return try await signedGETOnce(path, parameters: parameters, credentials: credentials, remeasure: true)
            } catch .rejectedCredentials(code: -1021, _) {
                throw .clockSkew(milliseconds: await clock.lastOffset ?? 0)
            }
        }
    }

    private func signedGETOnce(
        _ path: String, parameters: [(String, String)], credentials: ExchangeCredentials, remeasure: Bool
    ) async throws(ExchangeFailure) -> Any {
        let offset = try await clock.offset(remeasure: remeasure) { () throws(ExchangeFailure) in try await serverTime() }
        guard abs(offset) <= Self.maximumSkew else { throw .clockSkew(milliseconds: offset) }
        let timestamp = Int64(Date().timeIntervalSince1970 * 1000) + offset
        let query = (parameters + [("recvWindow", String(Self.receiveWindow)), ("timestamp", String(timestamp))])
            .map { "\($0.0)=\(Self.escaped($0.1))" }.joined(separator: "&")
        let signed = query + "&signature=" + Self.signature(of: query, secret: credentials.apiSecret)
        return try await call(path, query: signed, apiKey: credentials.apiKey)
    }

    /// The exchange's clock in milliseconds since 1970.
    func serverTime() async throws(ExchangeFailure) -> Int64 {
        let answer = try await call("/api/v3/time", query: nil, apiKey: nil)
        guard let object = answer as? [String: Any], let time = (object["serverTime"] as? NSNumber)?.int64Value else {
            throw .badResponse("time without serverTime")
        }
        return time
    }

    /// Binance's weight of each endpoint the module calls.
    static func weight(of path: String) -> Int64 {
        switch path {
        case "/api/v3/account", "/api/v3/myTrades", "/api/v3/exchangeInfo": 20
        case "/api/v3/ticker/price": 4
        case "/api/v3/klines": 2
        default: 1
        }
    }

    /// The shared budget's policy and key for this host.
    private func budget(_ weights: (limits: SharedLimits, perMinute: Int64)) -> (Plan.RateLimit, String) {
        (Plan.RateLimit(name: "weight", limit: weights.perMinute, windowSeconds: 60), "crypto-host:\(baseURL.host() ?? "exchange")")
    }

    /// No worker of any process calls this host before `until` (the exchange's
    /// Retry-After, or the minute's end when its used-weight header passes the budget).
    private func holdHost(until: Date) async {
        guard let weights else { return }
        let (policy, key) = budget(weights)
        do {
            try await weights.limits.hold(policy, key: key, until: until)
        } catch {
            logger.warning("could not record the exchange's hold", metadata: ["exchange": "binance", "error": "\(error)"])
        }
    }

    /// Takes `path`'s weight from the shared budget; an exhausted budget is an exchange
    /// that cannot be called now (the run ends, its job tries again after `retryAfter`).
    private func spendWeight(of path: String) async throws(ExchangeFailure) {
        guard let weights else { return }
        let (policy, key) = budget(weights)
        let decision: RateLimitDecision
        do {
            decision = try await weights.limits.spend(Self.weight(of: path), of: policy, key: key)
        } catch {
            throw .unavailable(reason: "the weight budget could not be read", retryAfter: nil)
        }
        guard decision.allowed else {
            throw .unavailable(reason: "the exchange's request weight for this minute is spent", retryAfter: decision.retryAfter.map(Int.init))
        }
        await tally.add(Self.weight(of: path))
    }

    /// One call: its weight taken from the shared budget first; a 5xx, a timeout or a
    /// reset tried again (four tries, doubling waits with jitter), then `unavailable`;
    /// 429 or 418 holds the host for every worker until its `Retry-After`.
    private func call(_ path: String, query: String?, apiKey: String?) async throws(ExchangeFailure) -> Any {
        guard var components = URLComponents(url: baseURL.appending(path: path), resolvingAgainstBaseURL: false) else {
            throw .badResponse("the base URL does not take a path")
        }
        components.percentEncodedQuery = query
        guard let url = components.url else { throw .badResponse("the request URL could not be made") }
        var attempt = 1
        while true {
            try await spendWeight(of: path)
            let response: OutboundResponse
            do {
                response = try await http.send(OutboundRequest(.get, url, headers: apiKey.map { [("X-MBX-APIKEY", $0)] } ?? [], timeout: timeout))
            } catch {
                // The error names host and path, never the query (which carries the signature).
                logger.warning("exchange call failed", metadata: ["exchange": "binance", "path": "\(path)", "attempt": "\(attempt)", "error": "\(error)"])
                if error is CancellationError { throw .unavailable(reason: "the run was cancelled", retryAfter: nil) }
                guard attempt < Self.tries else { throw .unavailable(reason: "the exchange could not be reached (\(Self.tries) tries)", retryAfter: nil) }
                attempt += 1
                try await wait(before: attempt)
                continue
            }
            await noteUsedWeight(response)
            switch response.status {
            case 200..<300:
                guard let body = try? JSONSerialization.jsonObject(with: response.body) else { throw .badResponse("\(path) answered what is not JSON") }
                return body
            case 418, 429:
                // Binance: 429 warns, 418 bans the address for a while; either way nobody
                // calls before Retry-After (a minute when it does not say).
                let seconds = response.header("Retry-After").flatMap { Int($0) }.map { max(1, $0) } ?? 60
                await holdHost(until: Date().addingTimeInterval(Double(seconds)))
                logger.warning("exchange asked to back off", metadata: ["exchange": "binance", "path": "\(path)", "status": "\(response.status)", "retry_after": "\(seconds)"])
                throw .unavailable(reason: "the exchange answered \(response.status) (too many requests)", retryAfter: seconds)
            case 500...:
                guard attempt < Self.tries else { throw .unavailable(reason: "the exchange answered \(response.status) (\(Self.tries) tries)", retryAfter: nil) }
                attempt += 1
                try await wait(before: attempt)
            default:
                let object = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any]
                let code = (object?["code"] as? NSNumber)?.intValue ?? 0
                let message = object?["msg"] as? String ?? "HTTP \(response.status)"
                throw .rejectedCredentials(code: code, message: message)
            }
        }
    }

    /// The wait before try `attempt` (2, 3, 4): the backoff doubled each time, plus up to
    /// as much again at random, so workers that failed together do not retry together.
    private func wait(before attempt: Int) async throws(ExchangeFailure) {
        let base = backoff * (1 << (attempt - 2))
        let jitter = Double.random(in: 0..<1)
        do {
            try await Task.sleep(for: base + base * jitter)
        } catch {
            throw .unavailable(reason: "the run was cancelled", retryAfter: nil)
        }
    }

    /// `X-MBX-USED-WEIGHT-1M` is what the exchange counted for this address in the current
    /// minute, whoever spent it: at or past the budget, nobody calls until the minute ends.
    private func noteUsedWeight(_ response: OutboundResponse) async {
        guard let weights, let used = response.header("X-MBX-USED-WEIGHT-1M").flatMap({ Int64($0) }), used >= weights.perMinute else { return }
        let now = Date().timeIntervalSince1970
        await holdHost(until: Date(timeIntervalSince1970: (now / 60).rounded(.down) * 60 + 60))
    }

    /// A query value as Binance reads it: unreserved characters as they are, the rest
    /// percent-encoded (the signature covers the encoded text).
    static func escaped(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_.~"))) ?? value
    }
}

/// The offset between our clock and the exchange's, measured once per host from the
/// round trip's midpoint and again when the exchange refuses a timestamp.
actor BinanceClock {
    private var measured: Int64?
    var lastOffset: Int64? { measured }

    func offset(remeasure: Bool, serverTime: @Sendable () async throws(ExchangeFailure) -> Int64) async throws(ExchangeFailure) -> Int64 {
        if let measured, !remeasure { return measured }
        let sent = Int64(Date().timeIntervalSince1970 * 1000)
        let server = try await serverTime()
        let received = Int64(Date().timeIntervalSince1970 * 1000)
        let offset = server - (sent + received) / 2
        measured = offset
        return offset
    }
}
