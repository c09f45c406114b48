@testable import AtriumPortfolio
import Foundation
import Testing

/// Random ledgers, the same identities every time: nothing booked is lost or made up.
@Suite struct LedgerPropertyTests {
    /// SplitMix64: the same seed, the same ledgers, so a failure can be replayed.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// A decimal with up to `places` places below `limit`.
    static func decimal(_ generator: inout Generator, below limit: Int, places: Int) -> Decimal {
        let scale = Int(pow(10, Double(places)))
        return Decimal(Int.random(in: 1..<(limit * scale), using: &generator)) / Decimal(scale)
    }

    @Test(arguments: [LotBook.Method.fifo, .average])
    func costIsConservedAndEveryUnitSoldIsMatched(method: LotBook.Method) throws {
        var generator = Generator(state: 2026)
        for _ in 0..<200 {
            var entries: [Ledger.Entry] = []
            var held: [String: Decimal] = [:]
            var bought: Decimal = 0
            var sold: [UUID: (quantity: Decimal, proceeds: Decimal)] = [:]
            var day = 0
            for _ in 0..<Int.random(in: 5..<60, using: &generator) {
                day += Int.random(in: 0..<4, using: &generator)
                let date = DayNumber.text(19_723 + day)
                let symbol = ["A", "B", "C"][Int.random(in: 0..<3, using: &generator)]
                let price = Self.decimal(&generator, below: 500, places: 4)
                let fee = Self.decimal(&generator, below: 5, places: 2)
                let id = UUID()
                if held[symbol, default: 0] > 0, Bool.random(using: &generator) {
                    let quantity = min(held[symbol, default: 0], Self.decimal(&generator, below: 40, places: 3))
                    entries.append(Ledger.Entry(id: id, kind: .sell, date: date, symbol: symbol, quantity: quantity, price: price, currency: "USD", fee: fee))
                    held[symbol, default: 0] -= quantity
                    sold[id] = (quantity, quantity * price - fee)
                } else {
                    let quantity = Self.decimal(&generator, below: 50, places: 3)
                    entries.append(Ledger.Entry(id: id, kind: .buy, date: date, symbol: symbol, quantity: quantity, price: price, currency: "USD", fee: fee))
                    held[symbol, default: 0] += quantity
                    bought += quantity * price + fee
                }
            }
            let ledger = try Ledger.book(entries, splits: [], method: method)
            let disposed = ledger.local.disposals.reduce(Decimal(0)) { $0 + $1.cost }
            let open = ledger.local.lots.reduce(Decimal(0)) { $0 + $1.cost }
            #expect(disposed + open == bought, "cost booked = cost of what was sold + cost of what is held, exactly")
            for (sell, expected) in sold {
                let parts = ledger.local.disposals.filter { $0.sell == sell.uuidString }
                #expect(parts.reduce(Decimal(0)) { $0 + $1.quantity } == expected.quantity)
                let proceeds = parts.reduce(Decimal(0)) { $0 + $1.proceeds }
                let gap = proceeds > expected.proceeds ? proceeds - expected.proceeds : expected.proceeds - proceeds
                #expect(gap <= Decimal(parts.count) / Decimal(sign: .plus, exponent: 10, significand: 1), "a fee shared by parts rounds once per part")
            }
            for (symbol, quantity) in held {
                #expect(ledger.local.quantity(of: symbol) == quantity)
            }
        }
    }
}
