public import Foundation

/// The portfolio's lot accounting, as a value: a ledger of buys, sells and splits in, the
/// open lots and each sell's disposals out, exact in `Decimal` (never binary floating
/// point). It is the reference the module's SQL booking is held to (the same ledger must
/// give the same lots and realized P&L), and what a test computes by hand.
///
/// - **FIFO** takes a sell from the oldest open lots first.
/// - **Moving average** keeps one pool per instrument: a buy adds its cost, a sell takes
///   `cost × sold ÷ held`, rounded half-even to `costScale` places once per sell.
/// - **Named lots** (`Entry.lots`) take a FIFO book's sell from the lots it names, in
///   that order: a lot that is closed, or lots that together hold too little, refuse the
///   sell. (An average book holds one pool per instrument, `average`, which is the only
///   lot a sell there may name.)
/// - **Splits** multiply the quantity of every open lot of the instrument on their date
///   and keep its cost: entries before the split stay as recorded.
///
/// Entries are booked in date order, and in the order given within a date, so a
/// back-dated entry rebooks everything after it.
public struct LotBook: Sendable {
    public enum Method: String, Sendable, Codable {
        case fifo
        case average
    }

    public enum Kind: Sendable, Equatable {
        case buy
        case sell
        /// `ratio` new units for each old one (2 for a 2-for-1 split, 0.1 for 1-for-10).
        case split(ratio: Decimal)
    }

    public struct Entry: Sendable {
        public var id: String
        public var kind: Kind
        public var date: String
        public var symbol: String
        public var quantity: Decimal
        /// Per unit, in the instrument's currency.
        public var price: Decimal
        public var fee: Decimal
        /// For a sell: the lots (ids of buys) it takes from, in order; empty means the method.
        public var lots: [String]

        public init(id: String, kind: Kind, date: String, symbol: String, quantity: Decimal = 0, price: Decimal = 0, fee: Decimal = 0, lots: [String] = []) {
            (self.id, self.kind, self.date, self.symbol, self.quantity, self.price, self.fee, self.lots) = (id, kind, date, symbol, quantity, price, fee, lots)
        }
    }

    /// Units still held from one buy (under `average`, the instrument's pool, id `average`).
    public struct Lot: Sendable, Equatable {
        public var id: String
        public var symbol: String
        public var openedOn: String
        public var quantity: Decimal
        /// What the units still held cost, fees included.
        public var cost: Decimal
        /// What the lot held and cost when it opened (its quantity in today's units after
        /// splits): a FIFO lot's disposals take cumulative shares of it, so the cost taken
        /// through any point is `share(bought cost, taken, bought)`, one rounding, which a
        /// set-based booking computes for each lot on its own (`ledger_sql`).
        var boughtQuantity: Decimal
        var boughtCost: Decimal

        public init(id: String, symbol: String, openedOn: String, quantity: Decimal, cost: Decimal) {
            (self.id, self.symbol, self.openedOn, self.quantity, self.cost) = (id, symbol, openedOn, quantity, cost)
            (boughtQuantity, boughtCost) = (quantity, cost)
        }

        public static func == (lhs: Lot, rhs: Lot) -> Bool {
            (lhs.id, lhs.symbol, lhs.openedOn, lhs.quantity, lhs.cost) == (rhs.id, rhs.symbol, rhs.openedOn, rhs.quantity, rhs.cost)
        }
    }

    /// Part of a sell, matched to one lot.
    public struct Disposal: Sendable, Equatable {
        public var sell: String
        public var lot: String
        public var symbol: String
        public var date: String
        public var quantity: Decimal
        public var cost: Decimal
        /// The sell's proceeds for these units, its fee shared by quantity.
        public var proceeds: Decimal
        public var gain: Decimal { proceeds - cost }
    }

    public enum Refusal: Error, Sendable, Equatable {
        /// A sell of more than was held on its date.
        case insufficientQuantity(sell: String, symbol: String, held: Decimal, wanted: Decimal)
        /// A sell names a lot that is not open (closed, another instrument's, or unknown).
        case lotClosed(sell: String, lot: String)
    }

    public let method: Method
    /// Places kept in a cost that a division made (average cost, a fee shared by quantity).
    public let costScale: Int
    public private(set) var lots: [Lot] = []
    public private(set) var disposals: [Disposal] = []

    public init(method: Method, costScale: Int = 10) {
        self.method = method
        self.costScale = costScale
    }

    /// Books `entries` (sorted by date, stable within a date) into a new book.
    public static func booking(_ entries: [Entry], method: Method, costScale: Int = 10) throws(Refusal) -> LotBook {
        var book = LotBook(method: method, costScale: costScale)
        let ordered = entries.enumerated().sorted { ($0.element.date, $0.offset) < ($1.element.date, $1.offset) }.map(\.element)
        for entry in ordered { try book.book(entry) }
        return book
    }

    /// Realized gain of every disposal, exact.
    public var realized: Decimal { disposals.reduce(0) { $0 + $1.gain } }

    /// Units held of `symbol`.
    public func quantity(of symbol: String) -> Decimal {
        lots.filter { $0.symbol == symbol }.reduce(0) { $0 + $1.quantity }
    }

    /// Cost of the units held of `symbol`.
    public func cost(of symbol: String) -> Decimal {
        lots.filter { $0.symbol == symbol }.reduce(0) { $0 + $1.cost }
    }

    mutating func book(_ entry: Entry) throws(Refusal) {
        switch entry.kind {
        case .buy:
            let cost = entry.quantity * entry.price + entry.fee
            if method == .average, let index = lots.firstIndex(where: { $0.symbol == entry.symbol }) {
                lots[index].quantity += entry.quantity
                lots[index].cost += cost
            } else {
                lots.append(Lot(id: method == .average ? "average" : entry.id, symbol: entry.symbol, openedOn: entry.date, quantity: entry.quantity, cost: cost))
            }
        case .split(let ratio):
            for index in lots.indices where lots[index].symbol == entry.symbol {
                lots[index].quantity *= ratio
                lots[index].boughtQuantity *= ratio
            }
        case .sell:
            let held = quantity(of: entry.symbol)
            guard entry.quantity <= held else {
                throw .insufficientQuantity(sell: entry.id, symbol: entry.symbol, held: held, wanted: entry.quantity)
            }
            let order: [Int]
            if entry.lots.isEmpty {
                order = lots.indices.filter { lots[$0].symbol == entry.symbol }
            } else {
                var named: [Int] = []
                for lot in entry.lots {
                    guard let index = lots.firstIndex(where: { $0.id == lot && $0.symbol == entry.symbol && $0.quantity > 0 }), !named.contains(index) else {
                        throw .lotClosed(sell: entry.id, lot: lot)
                    }
                    named.append(index)
                }
                let available = named.reduce(Decimal(0)) { $0 + lots[$1].quantity }
                guard entry.quantity <= available else {
                    throw .insufficientQuantity(sell: entry.id, symbol: entry.symbol, held: available, wanted: entry.quantity)
                }
                order = named
            }
            var remaining = entry.quantity
            for index in order where remaining > 0 {
                let lot = lots[index]
                let taken = min(remaining, lot.quantity)
                let cost: Decimal
                if taken == lot.quantity {
                    cost = lot.cost
                } else if method == .average {
                    cost = rounded(lot.cost * taken / lot.quantity)
                } else {
                    // The cumulative share through this disposal, less what earlier ones took.
                    let takenBefore = lot.boughtQuantity - lot.quantity
                    cost = share(lot.boughtCost, takenBefore + taken, of: lot.boughtQuantity) - (lot.boughtCost - lot.cost)
                }
                // The sell's fee by cumulative share too, so its disposals' proceeds add up to
                // quantity × price − fee exactly.
                let soldBefore = entry.quantity - remaining
                let fee = share(entry.fee, soldBefore + taken, of: entry.quantity) - share(entry.fee, soldBefore, of: entry.quantity)
                let proceeds = taken * entry.price - fee
                disposals.append(Disposal(
                    sell: entry.id, lot: lots[index].id, symbol: entry.symbol, date: entry.date, quantity: taken, cost: cost, proceeds: proceeds))
                lots[index].quantity -= taken
                lots[index].cost -= cost
                remaining -= taken
            }
            lots.removeAll { $0.quantity == 0 }
        }
    }

    /// `amount × part ÷ whole` rounded half-even to `costScale` places; `amount` itself
    /// when the part is the whole.
    func share(_ amount: Decimal, _ part: Decimal, of whole: Decimal) -> Decimal {
        part == whole ? amount : part == 0 ? 0 : rounded(amount * part / whole)
    }

    func rounded(_ value: Decimal) -> Decimal {
        var value = value
        var result = Decimal()
        NSDecimalRound(&result, &value, costScale, .bankers)
        return result
    }
}

extension Decimal {
    /// The whole units of a quantity (toward zero): what a split paying cash in lieu leaves.
    var wholePart: Decimal {
        var value = self
        var result = Decimal()
        NSDecimalRound(&result, &value, 0, self < 0 ? .up : .down)
        return result
    }
}
