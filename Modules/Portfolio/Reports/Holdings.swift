import AtriumCore
import Foundation

/// What a portfolio holds on a date and what it is worth: each position's cost as
/// traded and in the base at trade-date FX, its value at the last price on or before
/// the date and at that date's FX, and the unrealized gain split into the part the price
/// made and the part the currency made. Figures are exact until they are written here,
/// rounded half-even once to their currency's minor unit.
struct Holdings: Codable, Sendable {
    struct Position: Codable, Sendable {
        var symbol: String
        var currency: String
        var quantity: DecimalString
        var cost: DecimalString
        var costBase: DecimalString
        var price: DecimalString?
        var priceDate: String?
        /// `market` or `manual`; nil when no price is known on or before the date.
        var priceSource: String?
        /// True when the price is more than 5 days older than the date.
        var stale: Bool
        var fxRate: DecimalString?
        var value: DecimalString?
        var valueBase: DecimalString?
        var unrealizedBase: DecimalString?
        var priceEffectBase: DecimalString?
        var currencyEffectBase: DecimalString?
    }

    struct Cash: Codable, Sendable {
        var currency: String
        var amount: DecimalString
        var amountBase: DecimalString
    }

    /// The implicit deposits of one currency: how much the ledger's cash fell short of
    /// its buys and fees, in how many entries (a summary: a ledger of trades alone has one
    /// per buy, and listing ten thousand of them made the report a megabyte).
    struct ImplicitDeposits: Codable, Sendable {
        var currency: String
        var amount: DecimalString
        var entries: Int
    }

    var asOf: String
    var baseCurrency: String
    var costMethod: CostMethod
    var positions: [Position]
    var cash: [Cash]
    var costBase: DecimalString
    /// Positions with a price, plus cash; see `missingPrices` for what is left out.
    var valueBase: DecimalString
    var unrealizedBase: DecimalString
    /// Symbols held with no price on or before the date: not in the totals.
    var missingPrices: [String]
    /// Buys (and fees) the ledger's cash could not cover, booked as deposits of the
    /// shortfall, per currency.
    var implicitDeposits: [ImplicitDeposits]
    var dividendsBase: DecimalString
    var feesBase: DecimalString
    /// What the report was made from (`InputsHash`): the same hash, the same report.
    var inputsHash: String
}

enum HoldingsReport {
    static let staleAfterDays = 5

    /// Reads the portfolio's ledger and market data and values it `asOf`. The book comes
    /// from `BookCache` when the ledger has not changed since it was made; otherwise a
    /// FIFO ledger is booked in SQL (`SetBasedBook`), which returns a row per position
    /// however long the ledger, and the rest are read and booked by `Ledger`.
    static func holdings(of portfolioID: UUID, asOf: String, on transaction: TenantTransaction) async throws -> Holdings {
        let portfolio = try await PortfolioStore.table.find(portfolioID, on: transaction)
        let splits = try await TransactionStore.splits(of: portfolio.id, on: transaction)
        let key = BookCache.Key(portfolio: portfolio, asOf: asOf, splits: splits)
        let (cached, version) = try await BookCache.read(key, on: transaction)
        let (book, ledgerDigest): (BookSummary, String)
        if let cached {
            (book, ledgerDigest) = cached
        } else {
            if let booked = try await SetBasedBook.summary(of: portfolio, asOf: asOf, on: transaction) {
                (book, ledgerDigest) = booked
            } else {
                book = try await TransactionStore.booked(portfolio, asOf: asOf, on: transaction).ledger.summary
                ledgerDigest = try await InputsHash.ledgerDigest(of: portfolio.id, asOf: asOf, on: transaction)
            }
            // Kept only if the splits did not change while it was booked (the version
            // cannot have moved backwards; a newer ledger only makes the book miss later).
            if try await TransactionStore.splits(of: portfolio.id, on: transaction) == splits {
                try await BookCache.store(book, ledgerDigest: ledgerDigest, key: key, version: version, on: transaction)
            }
        }
        let quotes = try await MarketReader.quotes(for: book.positions.map(\.symbol), portfolio: portfolio.id, on: asOf, on: transaction)
        let base = portfolio.baseCurrency
        var rates: [String: Decimal] = [base: 1]
        for currency in Set(book.currencies.values).union(book.cash.keys) where rates[currency] == nil {
            guard let rate = try await MarketReader.fxRate(from: currency, to: base, on: asOf, on: transaction) else {
                throw MarketReader.fxMissing(from: currency, to: base, on: asOf, field: "as_of")
            }
            rates[currency] = rate.rate.value
        }
        let hash = InputsHash.of(
            report: "holdings/1", method: portfolio.costMethod, asOf: asOf, ledger: ledgerDigest, splits: splits, quotes: quotes, rates: rates)
        return valued(portfolio: portfolio, book: book, quotes: quotes, rates: rates, asOf: asOf, inputsHash: hash)
    }

    /// The report from what was read: no database here, so it can run off the event loop.
    static func valued(
        portfolio: Portfolio, book: BookSummary, quotes: [String: MarketReader.Quote], rates: [String: Decimal], asOf: String, inputsHash: String
    ) -> Holdings {
        let base = portfolio.baseCurrency
        let baseScale = CurrencyCodes.minorUnitExponent(of: base) ?? 2
        var totalCost: Decimal = 0
        var totalValue: Decimal = 0
        var totalUnrealized: Decimal = 0
        var missing: [String] = []
        var lines: [Holdings.Position] = []
        for position in book.positions {
            let currency = book.currencies[position.symbol] ?? base
            let scale = CurrencyCodes.minorUnitExponent(of: currency) ?? 2
            let rate = rates[currency] ?? 1
            totalCost += position.costBase
            var line = Holdings.Position(
                symbol: position.symbol, currency: currency, quantity: DecimalString(position.quantity), cost: DecimalString(position.cost, scale: scale),
                costBase: DecimalString(position.costBase, scale: baseScale), stale: false)
            if let quote = quotes[position.symbol] {
                let value = position.quantity * quote.price
                let valueBase = value * rate
                let priceEffect = (value - position.cost) * rate
                line.price = DecimalString(quote.price)
                line.priceDate = quote.date
                line.priceSource = quote.source
                line.stale = TradeDate.days(from: quote.date, to: asOf) > staleAfterDays
                line.fxRate = DecimalString(rate)
                line.value = DecimalString(value, scale: scale)
                line.valueBase = DecimalString(valueBase, scale: baseScale)
                line.unrealizedBase = DecimalString(valueBase - position.costBase, scale: baseScale)
                line.priceEffectBase = DecimalString(priceEffect, scale: baseScale)
                line.currencyEffectBase = DecimalString(valueBase - position.costBase - priceEffect, scale: baseScale)
                totalValue += valueBase
                totalUnrealized += valueBase - position.costBase
            } else {
                missing.append(position.symbol)
            }
            lines.append(line)
        }
        var cash: [Holdings.Cash] = []
        for (currency, amount) in book.cash.sorted(by: { $0.key < $1.key }) where amount != 0 {
            let amountBase = amount * (rates[currency] ?? 1)
            totalValue += amountBase
            cash.append(Holdings.Cash(
                currency: currency, amount: DecimalString(amount, scale: CurrencyCodes.minorUnitExponent(of: currency) ?? 2),
                amountBase: DecimalString(amountBase, scale: baseScale)))
        }
        return Holdings(
            asOf: asOf, baseCurrency: base, costMethod: portfolio.costMethod, positions: lines, cash: cash,
            costBase: DecimalString(totalCost, scale: baseScale), valueBase: DecimalString(totalValue, scale: baseScale),
            unrealizedBase: DecimalString(totalUnrealized, scale: baseScale), missingPrices: missing,
            implicitDeposits: book.implicitDeposits.sorted { $0.key < $1.key }.map { currency, deposits in
                Holdings.ImplicitDeposits(
                    currency: currency, amount: DecimalString(deposits.amount, scale: CurrencyCodes.minorUnitExponent(of: currency) ?? 2),
                    entries: deposits.entries)
            },
            dividendsBase: DecimalString(book.dividends, scale: baseScale), feesBase: DecimalString(book.fees, scale: baseScale), inputsHash: inputsHash)
    }
}
