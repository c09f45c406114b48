import ArgumentParser
import AtriumCore
import Foundation

/// `atrium portfolio …`: the module's operator commands, mounted by `atrium` from the
/// module's `commands`.
struct PortfolioCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "portfolio", abstract: "The portfolio module's operator commands.", subcommands: [Market.self, FeedCommand.self, ImportLegacyCommand.self])

    struct Market: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The tenant's market data.", subcommands: [Import.self])

        struct Import: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Import a CSV or NDJSON file of instruments, prices, fx, splits or stocks (--entity) into a tenant.",
                discussion: """
                    Columns: instruments (symbol, name, sector, asset_type, currency, market_cap); prices (symbol, date, close); \
                    fx (base, quote, date, rate: one base is worth rate quote); splits (symbol, effective_date, ratio: new units per \
                    old); stocks, the stock consultant's stocks.csv (symbol, name, sector, price, market_cap_cr, [currency: INR], \
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
