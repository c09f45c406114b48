import Crypto
import Foundation

/// SHA-256 of everything a report was computed from, in a fixed text form: the report
/// and its version, the method, the date, every ledger entry as stored and every split on
/// or before the date, and the prices and rates it used. Two reports with the same hash were made from the same
/// inputs, and are byte for byte the same.
enum InputsHash {
    static func of(
        report: String, method: CostMethod, asOf: String, entries: [Ledger.Entry], splits: [Ledger.Split], quotes: [String: MarketReader.Quote] = [:],
        rates: [String: Decimal] = [:]
    ) -> String {
        var text = "\(report)\nmethod \(method.rawValue)\nas_of \(asOf)\n"
        for entry in entries where entry.date <= asOf {
            text += "entry \(entry.id.uuidString.lowercased()) \(entry.kind.rawValue) \(entry.date) \(entry.symbol ?? "-") \(entry.quantity) \(entry.price) "
            text += "\(entry.amount) \(entry.currency) \(entry.fee) \(entry.fxRate) \(entry.lots.map { $0.uuidString.lowercased() }.joined(separator: ","))\n"
        }
        for split in splits where split.date <= asOf { text += "split \(split.symbol) \(split.date) \(split.ratio)\n" }
        for (symbol, quote) in quotes.sorted(by: { $0.key < $1.key }) { text += "quote \(symbol) \(quote.date) \(quote.price) \(quote.source)\n" }
        for (currency, rate) in rates.sorted(by: { $0.key < $1.key }) { text += "rate \(currency) \(rate)\n" }
        return SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
