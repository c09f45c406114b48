import Foundation

/// What a holdings report needs of a booked ledger, whoever booked it: the Swift `Ledger`
/// (every method, named lots) or `SetBasedBook` (a FIFO ledger, in SQL). The two agree to
/// the last digit on the ledgers both can book (`SetBasedBookTests`).
struct BookSummary: Sendable, Equatable {
    struct Deposits: Sendable, Equatable {
        var amount: Decimal
        var entries: Int
    }

    /// Open positions, by symbol.
    var positions: [Ledger.Position]
    /// The currency each instrument was last traded in.
    var currencies: [String: String]
    /// Cash per currency that had any flow (zero included).
    var cash: [String: Decimal]
    /// The implicit deposits per currency: their total and how many entries booked one.
    var implicitDeposits: [String: Deposits]
    /// In the base, at trade-date FX.
    var dividends: Decimal
    var fees: Decimal
}

extension Ledger {
    var summary: BookSummary {
        var deposits: [String: BookSummary.Deposits] = [:]
        for deposit in implicitDeposits {
            deposits[deposit.currency, default: .init(amount: 0, entries: 0)].amount += deposit.amount
            deposits[deposit.currency]?.entries += 1
        }
        return BookSummary(
            positions: positions, currencies: currencies, cash: cash, implicitDeposits: deposits, dividends: dividends, fees: fees)
    }
}
