import AtriumCore
import Foundation
import PostgresNIO

/// Prices as they arrive: NDJSON lines of `{"symbol", "price", "at" | "date"}` (price a
/// decimal string), from the push route (`market/ticks`), a polled directory, or the
/// simulator. The last tick of a day is that day's close, marked with its source
/// (`feed`, `file`, `simulated`); a line that cannot be read, or names no instrument of
/// the tenant, is rejected by its number and the rest land in one statement.
enum PriceFeed {
    struct Tick: Decodable {
        var symbol: String
        var price: DecimalString
        var at: String?
        var date: String?
    }

    struct Rejection: Codable, Sendable, Equatable {
        var line: Int
        var reason: String
    }

    struct Outcome: Codable, Sendable {
        var accepted: Int
        /// Closes inserted or changed.
        var written: Int
        /// The first 100 rejected lines.
        var rejected: [Rejection]
        var rejectedCount: Int
    }

    /// Ingests `lines` (NDJSON text) as `source`, in `transaction`.
    static func ingest(_ text: String, source: String, on transaction: TenantTransaction) async throws -> Outcome {
        var rejected: [Rejection] = []
        var latest: [String: (at: String, price: DecimalString, line: Int)] = [:]
        let decoder = JSONDecoder()
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !trimmed.isEmpty else { continue }
            guard let tick = try? decoder.decode(Tick.self, from: Data(trimmed.utf8)) else {
                rejected.append(.init(line: index + 1, reason: #"not a tick: {"symbol", "price" (a decimal string), "at" (RFC 3339) or "date"}"#))
                continue
            }
            let symbol = tick.symbol.uppercased()
            if let problem = PortfolioValidation.symbolProblem(symbol) {
                rejected.append(.init(line: index + 1, reason: "symbol \(problem)"))
                continue
            }
            guard tick.price.value >= 0 else {
                rejected.append(.init(line: index + 1, reason: "price must not be negative"))
                continue
            }
            let at = tick.at.flatMap { InputDomain.parseTimestamp($0) }.map { TradeDate.today($0) + "@" + String(Int($0.timeIntervalSince1970)) }
                ?? tick.date.flatMap { TradeDate.isValid($0) ? $0 + "@0" : nil }
            guard let at else {
                rejected.append(.init(line: index + 1, reason: "needs \"at\" (an RFC 3339 time) or \"date\" (YYYY-MM-DD)"))
                continue
            }
            let day = String(at.prefix(10))
            let key = symbol + " " + day
            // The latest tick of the day closes it; of two at once, the later line.
            if let seen = latest[key], seen.at > at { continue }
            latest[key] = (at, tick.price, index + 1)
        }
        let symbols = Array(Set(latest.keys.map { String($0.split(separator: " ")[0]) })).sorted()
        let known = Set(try await MarketStore.describe(symbols, on: transaction).keys)
        var closes: [(symbol: String, day: String, price: String)] = []
        for (key, tick) in latest.sorted(by: { $0.value.line < $1.value.line }) {
            let parts = key.split(separator: " ").map(String.init)
            guard known.contains(parts[0]) else {
                rejected.append(.init(line: tick.line, reason: "\(parts[0]) is not an instrument of this tenant"))
                continue
            }
            closes.append((parts[0], parts[1], tick.price.text))
        }
        var written = 0
        if !closes.isEmpty {
            let rows = try await transaction.query(
                """
                WITH written AS (
                    INSERT INTO portfolio_prices AS p (tenant_id, symbol, on_date, close, source)
                    SELECT \(transaction.tenantID), s, d::date, c::numeric, \(source)
                    FROM unnest(\(closes.map(\.symbol)), \(closes.map(\.day)), \(closes.map(\.price))) AS t (s, d, c)
                    ON CONFLICT (tenant_id, symbol, on_date) DO UPDATE SET close = excluded.close, source = excluded.source
                    WHERE (p.close, p.source) IS DISTINCT FROM (excluded.close, excluded.source)
                    RETURNING 1
                ) SELECT count(*)::int8 FROM written
                """)
            var columns = try RowReader(rows.first.unwrapped())
            let count: Int64 = try columns.next()
            written = Int(count)
            if let first = closes.map(\.day).min() { try await ValuationStore.invalidateAll(from: first, on: transaction) }
        }
        rejected.sort { $0.line < $1.line }
        return Outcome(accepted: closes.count, written: written, rejected: Array(rejected.prefix(100)), rejectedCount: rejected.count)
    }
}
