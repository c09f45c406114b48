import ArgumentParser
import AtriumCore
import Foundation

/// `atrium portfolio …`: the module's operator commands, mounted by `atrium` from the
/// module's `commands`.
struct PortfolioCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "portfolio", abstract: "The portfolio module's operator commands.", subcommands: [Market.self, Transactions.self, FeedCommand.self, ImportLegacyCommand.self])

    struct Transactions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A portfolio's ledger entries.", subcommands: [Import.self])

        struct Import: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Import a broker's CSV or NDJSON file of ledger entries into one portfolio (--portfolio).",
                discussion: """
                    Fields: external_id (the broker's trade id: a re-import matches on it), date, type (buy, sell, dividend, fee, \
                    deposit, withdrawal), symbol, quantity, price, amount, currency, fee, fx_rate, notes; --mapping names the \
                    broker's own columns, e.g. {"external_id":"Trade ID","type":"Action"}. Rows are checked as the API checks an \
                    entry and refused by line; the whole ledger is then checked, and a file that would sell more than was held or \
                    take more cash than there was lands nothing.
                    """)
            @Option(help: "The portfolio's id.") var portfolio: String
            @OptionGroup var options: ImportCommandOptions

            func run() async throws {
                guard let id = UUID(uuidString: portfolio) else { throw ValidationError("--portfolio must be a portfolio's id") }
                try await options.run(TransactionImports.imports, module: PortfolioModule(), parent: id)
            }
        }
    }

    struct Market: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The tenant's market data.", subcommands: [Import.self])

        struct Import: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Import a CSV or NDJSON file of instruments, prices, fx, splits or stocks (--entity) into a tenant.",
                discussion: """
                    Columns: instruments (symbol, name, sector, asset_type, currency, market_cap); prices (symbol, date, close); \
                    fx (base, quote, date, rate: one base is worth rate quote); splits (symbol, effective_date, ratio: new units per \
                    old, [cash_in_lieu_price: paid per new unit for fractions]); stocks, the stock consultant's stocks.csv (symbol, name, sector, price, market_cap_cr, [currency: INR], \
                    [date: today]). Rows land with one set-based upsert by their natural key; re-importing a file changes nothing; \
                    a row naming an unknown instrument is rejected by its line. --mapping renames columns.
                    """)
            @OptionGroup var options: ImportCommandOptions

            func run() async throws {
                try await options.run(PortfolioModule.marketImports, module: PortfolioModule())
            }
        }
    }
}
