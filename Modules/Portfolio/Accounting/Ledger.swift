import Foundation

/// A portfolio's ledger booked up to a date: its open lots (in each instrument's currency
/// and, at trade-date FX, in the portfolio's base), each sell's disposals, and the cash it
/// holds per currency.
///
/// The lots are booked twice by the same `LotBook` rules, once with prices as traded and
/// once with prices turned into the base at the FX stored on each entry; both books match
/// the same quantities, so a disposal's gain in base is exact and splits into a price
/// effect and a currency effect.
///
/// Cash is derived, never typed: deposits, sells and dividends add to their currency,
/// buys, fees and withdrawals take from it. A buy (or fee) that cash cannot cover books
/// an implicit deposit of the shortfall, flagged, so a ledger of trades alone (the legacy
/// data) still has correct flows; a withdrawal of more than is held is refused unless
/// `allowOverdraw` (legacy imports book it with a warning).
struct Ledger: Sendable {
    enum Kind: String, Sendable, Codable, CaseIterable {
        case buy, sell, dividend, fee, deposit, withdrawal
    }

    struct Entry: Sendable {
        var id: UUID
        var kind: Kind
        /// `YYYY-MM-DD`.
        var date: String
        var symbol: String?
        var quantity: Decimal = 0
        var price: Decimal = 0
        var amount: Decimal = 0
        var currency: String
        var fee: Decimal = 0
        /// Base units per unit of `currency` on `date`.
        var fxRate: Decimal = 1
        var lots: [UUID] = []
    }

    struct Split: Sendable, Equatable {
        var id = UUID()
        var symbol: String
        var date: String
        var ratio: Decimal
        /// The price per new unit paid for the fraction a position is left with, when the
        /// issuer pays cash in lieu; nil keeps fractions.
        var cashInLieu: Decimal? = nil
        /// Base units per unit of the instrument's currency on the split's date (the
        /// rate on or before it); nil when none is stored: the fraction's proceeds are then
        /// turned into the base at its own cost's rate, with no currency effect.
        var cashInLieuFX: Decimal? = nil
    }

    struct ImplicitDeposit: Sendable, Equatable {
        var entry: UUID
        var currency: String
        var amount: Decimal
    }

    enum Refusal: Error, Sendable, Equatable {
        case insufficientQuantity(entry: UUID, symbol: String, held: Decimal, wanted: Decimal)
        case lotClosed(entry: UUID, lot: UUID)
        case insufficientCash(entry: UUID, currency: String, held: Decimal, wanted: Decimal)
        /// A sell of an average-cost portfolio names lots, which it does not keep.
        case lotsNotKept(entry: UUID)
    }

    let local: LotBook
    let base: LotBook
    /// Cash held per currency at the end of the booking.
    let cash: [String: Decimal]
    let implicitDeposits: [ImplicitDeposit]
    /// Withdrawals booked beyond the cash held (only with `allowOverdraw`).
    let overdrawn: [ImplicitDeposit]
    /// In the base, at trade-date FX.
    let dividends: Decimal
    let fees: Decimal
    /// The currency each instrument was traded in (its last trade's).
    let currencies: [String: String]

    /// Books `entries` in ledger order (by date, then as given), with the splits of the
    /// instruments applied at the start of their dates, up to `asOf` (inclusive; nil: all).
    static func book(
        _ entries: [Entry], splits: [Split], method: LotBook.Method, asOf: String? = nil, allowOverdraw: Bool = false
    ) throws(Refusal) -> Ledger {
        var local = LotBook(method: method)
        var base = LotBook(method: method)
        var cash: [String: Decimal] = [:]
        var implicit: [ImplicitDeposit] = []
        var overdrawn: [ImplicitDeposit] = []
        var dividends: Decimal = 0
        var fees: Decimal = 0
        var currencies: [String: String] = [:]

        enum Step { case split(Split), entry(Entry) }
        var steps: [(date: String, rank: Int, step: Step)] = []
        for split in splits where asOf.map({ split.date <= $0 }) ?? true { steps.append((split.date, 0, .split(split))) }
        for entry in entries where asOf.map({ entry.date <= $0 }) ?? true { steps.append((entry.date, 1, .entry(entry))) }
        let ordered = steps.enumerated().sorted { ($0.element.date, $0.element.rank, $0.offset) < ($1.element.date, $1.element.rank, $1.offset) }

        func take(_ amount: Decimal, _ currency: String, for entry: UUID) {
            let held = cash[currency, default: 0]
            if held < amount { implicit.append(ImplicitDeposit(entry: entry, currency: currency, amount: amount - held)) }
            cash[currency] = max(held, amount) - amount
        }

        for (_, item) in ordered {
            switch item.step {
            case .split(let split):
                let event = LotBook.Entry(id: "split", kind: .split(ratio: split.ratio), date: split.date, symbol: split.symbol)
                do {
                    try local.book(event)
                    try base.book(event)
                } catch {
                    // A split moves no quantity between lots, so it refuses nothing.
                }
                // Cash in lieu: the fraction the split leaves is sold at the issuer's price,
                // taken from the lots as a sell would be, into the instrument's currency.
                let held = local.quantity(of: split.symbol)
                guard let price = split.cashInLieu, held > 0, case let fraction = held - held.wholePart, fraction > 0 else { continue }
                let cost = local.cost(of: split.symbol)
                let costRate = cost == 0 ? 1 : base.cost(of: split.symbol) / cost
                let sold = LotBook.Entry(
                    id: split.id.uuidString, kind: .sell, date: split.date, symbol: split.symbol, quantity: fraction, price: price)
                var converted = sold
                converted.price = price * (split.cashInLieuFX ?? costRate)
                do {
                    try local.book(sold)
                    try base.book(converted)
                } catch {
                    // The fraction is less than what is held, so it is never refused.
                }
                cash[currencies[split.symbol] ?? "XXX", default: 0] += fraction * price
            case .entry(let entry):
                switch entry.kind {
                case .buy, .sell:
                    guard let symbol = entry.symbol else { continue }
                    currencies[symbol] = entry.currency
                    if entry.kind == .sell, !entry.lots.isEmpty, method == .average { throw .lotsNotKept(entry: entry.id) }
                    let kind: LotBook.Kind = entry.kind == .buy ? .buy : .sell
                    let lots = entry.lots.map(\.uuidString)
                    let traded = LotBook.Entry(
                        id: entry.id.uuidString, kind: kind, date: entry.date, symbol: symbol, quantity: entry.quantity, price: entry.price,
                        fee: entry.fee, lots: lots)
                    var converted = traded
                    converted.price = entry.price * entry.fxRate
                    converted.fee = entry.fee * entry.fxRate
                    do {
                        try local.book(traded)
                        try base.book(converted)
                    } catch {
                        switch error {
                        case .insufficientQuantity(_, let symbol, let held, let wanted):
                            throw .insufficientQuantity(entry: entry.id, symbol: symbol, held: held, wanted: wanted)
                        case .lotClosed(_, let lot):
                            throw .lotClosed(entry: entry.id, lot: UUID(uuidString: lot) ?? entry.id)
                        }
                    }
                    if entry.kind == .buy {
                        take(entry.quantity * entry.price + entry.fee, entry.currency, for: entry.id)
                    } else {
                        cash[entry.currency, default: 0] += entry.quantity * entry.price - entry.fee
                    }
                case .dividend:
                    cash[entry.currency, default: 0] += entry.amount - entry.fee
                    dividends += (entry.amount - entry.fee) * entry.fxRate
                case .fee:
                    take(entry.amount + entry.fee, entry.currency, for: entry.id)
                    fees += (entry.amount + entry.fee) * entry.fxRate
                case .deposit:
                    cash[entry.currency, default: 0] += entry.amount - entry.fee
                case .withdrawal:
                    let wanted = entry.amount + entry.fee
                    let held = cash[entry.currency, default: 0]
                    if wanted > held {
                        guard allowOverdraw else { throw .insufficientCash(entry: entry.id, currency: entry.currency, held: held, wanted: wanted) }
                        overdrawn.append(ImplicitDeposit(entry: entry.id, currency: entry.currency, amount: wanted - held))
                    }
                    cash[entry.currency] = held - wanted
                }
            }
        }
        return Ledger(
            local: local, base: base, cash: cash, implicitDeposits: implicit, overdrawn: overdrawn, dividends: dividends, fees: fees,
            currencies: currencies)
    }

    /// Open positions: one per instrument, its lots summed.
    struct Position: Sendable, Equatable {
        var symbol: String
        var quantity: Decimal
        var cost: Decimal
        var costBase: Decimal
    }

    var positions: [Position] {
        var bySymbol: [String: Position] = [:]
        for (lot, baseLot) in zip(local.lots, base.lots) {
            var position = bySymbol[lot.symbol] ?? Position(symbol: lot.symbol, quantity: 0, cost: 0, costBase: 0)
            position.quantity += lot.quantity
            position.cost += lot.cost
            position.costBase += baseLot.cost
            bySymbol[lot.symbol] = position
        }
        return bySymbol.values.sorted { $0.symbol < $1.symbol }
    }

    /// Each disposal in both books: as traded, and in the base.
    var disposals: [(local: LotBook.Disposal, base: LotBook.Disposal)] {
        Array(zip(local.disposals, base.disposals))
    }
}
