import AtriumPortfolio
import Foundation
import Testing

/// Lot accounting computed by hand: FIFO, moving average and named lots over the same
/// ledger, fees, splits either way, back-dated entries and the refusals.
@Suite struct LotBookTests {
    /// Buy 10 at 100 (lot A), buy 10 at 120 (lot B), sell 15 at 130.
    let ledger: [LotBook.Entry] = [
        .init(id: "A", kind: .buy, date: "2024-01-02", symbol: "ACME", quantity: 10, price: 100),
        .init(id: "B", kind: .buy, date: "2024-02-01", symbol: "ACME", quantity: 10, price: 120),
        .init(id: "S", kind: .sell, date: "2024-03-01", symbol: "ACME", quantity: 15, price: 130),
    ]

    @Test func fifoSellsTheOldestLotsFirst() throws {
        let book = try LotBook.booking(ledger, method: .fifo)
        // 10 from A (1,000) and 5 from B (600) for 1,950.
        #expect(book.disposals.map(\.lot) == ["A", "B"])
        #expect(book.disposals.map(\.cost) == [1_000, 600])
        #expect(book.realized == 350)
        #expect(book.lots == [LotBook.Lot(id: "B", symbol: "ACME", openedOn: "2024-02-01", quantity: 5, cost: 600)])
    }

    @Test func movingAverageTakesTheAverageCost() throws {
        let book = try LotBook.booking(ledger, method: .average)
        // 20 units for 2,200: 15 cost 1,650.
        #expect(book.realized == 300)
        #expect(book.lots == [LotBook.Lot(id: "average", symbol: "ACME", openedOn: "2024-01-02", quantity: 5, cost: 550)])
    }

    @Test func namedLotsWinOverTheMethod() throws {
        var entries = ledger
        entries[2].lots = ["B", "A"]
        let book = try LotBook.booking(entries, method: .fifo)
        // 10 from B (1,200), 5 from A (500).
        #expect(book.realized == 250)
        #expect(book.lots.map(\.id) == ["A"])
        #expect(book.lots.first?.cost == 500)
    }

    @Test func feesAddToCostAndComeOffProceedsRoundedHalfEvenOnce() throws {
        let book = try LotBook.booking([
            .init(id: "A", kind: .buy, date: "2024-01-02", symbol: "X", quantity: 3, price: 10, fee: 1),
            .init(id: "S", kind: .sell, date: "2024-01-03", symbol: "X", quantity: 1, price: 20, fee: Decimal(string: "0.5")!),
        ], method: .fifo)
        // One third of 31, to ten places; the sell's whole fee comes off its proceeds.
        #expect(book.disposals.first?.cost == Decimal(string: "10.3333333333")!)
        #expect(book.disposals.first?.proceeds == Decimal(string: "19.5")!)
        #expect(book.realized == Decimal(string: "9.1666666667")!)
        // What is left keeps the rest of the cost: nothing is lost to rounding.
        #expect(book.lots.first?.cost == Decimal(string: "20.6666666667")!)
        // A tie at the eleventh place goes to the even digit: half of 1e-10 is 0, not 1e-10.
        let tie = try LotBook.booking([
            .init(id: "A", kind: .buy, date: "2024-01-02", symbol: "T", quantity: 2, price: Decimal(string: "0.00000000005")!),
            .init(id: "S", kind: .sell, date: "2024-01-03", symbol: "T", quantity: 1, price: 0),
        ], method: .fifo)
        #expect(tie.disposals.first?.cost == 0)
        #expect(tie.lots.first?.cost == Decimal(string: "0.0000000001")!)
    }

    @Test func splitsChangeUnitsNotCostEitherWay() throws {
        let forward = try LotBook.booking([
            .init(id: "A", kind: .buy, date: "2024-01-02", symbol: "X", quantity: 10, price: 100),
            .init(id: "split", kind: .split(ratio: 2), date: "2024-02-01", symbol: "X"),
            .init(id: "S", kind: .sell, date: "2024-03-01", symbol: "X", quantity: 5, price: 60),
        ], method: .fifo)
        #expect(forward.realized == 50)
        #expect(forward.quantity(of: "X") == 15)
        // A reverse split is no gain (Ghostfolio read one as ~200 %).
        let reverse = try LotBook.booking([
            .init(id: "A", kind: .buy, date: "2024-01-02", symbol: "Y", quantity: 100, price: 1),
            .init(id: "split", kind: .split(ratio: Decimal(string: "0.1")!), date: "2024-02-01", symbol: "Y"),
            .init(id: "S", kind: .sell, date: "2024-03-01", symbol: "Y", quantity: 10, price: 10),
        ], method: .average)
        #expect(reverse.realized == 0)
        #expect(reverse.lots.isEmpty)
    }

    @Test func aBackDatedEntryRebooksWhatFollowsIt() throws {
        // The sell was entered first; a buy dated before it arrives later.
        let entries: [LotBook.Entry] = [
            .init(id: "B", kind: .buy, date: "2024-02-01", symbol: "ACME", quantity: 10, price: 120),
            .init(id: "S", kind: .sell, date: "2024-03-01", symbol: "ACME", quantity: 15, price: 130),
            .init(id: "A", kind: .buy, date: "2024-01-02", symbol: "ACME", quantity: 10, price: 100),
        ]
        #expect(try LotBook.booking(entries, method: .fifo).realized == 350)
    }

    @Test func refusals() throws {
        #expect(throws: LotBook.Refusal.insufficientQuantity(sell: "S", symbol: "ACME", held: 10, wanted: 15)) {
            try LotBook.booking(Array(ledger[0...0]) + [ledger[2]], method: .fifo)
        }
        var named = ledger
        named.append(.init(id: "S2", kind: .sell, date: "2024-04-01", symbol: "ACME", quantity: 1, price: 130, lots: ["A"]))
        #expect(throws: LotBook.Refusal.lotClosed(sell: "S2", lot: "A")) { try LotBook.booking(named, method: .fifo) }
        var short = ledger
        short[2].lots = ["A"]
        #expect(throws: LotBook.Refusal.insufficientQuantity(sell: "S", symbol: "ACME", held: 10, wanted: 15)) {
            try LotBook.booking(short, method: .fifo)
        }
    }
}
