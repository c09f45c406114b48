import ArgumentParser
import AtriumCore
import Foundation
import Logging
import PostgresNIO

/// `atrium portfolio feed simulate`: a deterministic random walk of daily closes for
/// every instrument of a tenant, labelled `simulated`, for demos and load tests.
struct FeedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "feed", abstract: "Prices from outside.", subcommands: [Simulate.self])

    struct Simulate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write simulated daily closes (source 'simulated') for every instrument of a tenant.",
            discussion: """
                Each instrument walks from its last close (100 without one) by up to 2 % a weekday, the same walk for the same \
                --seed. Real closes are never overwritten: a day that has one keeps it.
                """)
        @OptionGroup var global: GlobalOptions
        @Option(help: "The tenant (this machine's database).") var tenant: String
        @Option(help: "Seed of the walk.") var seed: UInt64 = 1
        @Option(help: "Days to write, ending with --through.") var days: Int = 30
        @Option(help: "The last day, YYYY-MM-DD (default: today, UTC).") var through: String?

        func run() async throws {
            guard (1...3660).contains(days) else { throw ValidationFailure("--days must be 1 to 3660") }
            let last = through ?? TradeDate.today(Date())
            guard let end = DayNumber.of(last) else { throw ValidationFailure("--through must be a date written YYYY-MM-DD") }
            let logger = global.logger(defaultLevel: .warning)
            let (slug, seed, days) = (tenant, seed, days)
            let written = try await global.withDatabase(logger: logger) { location in
                try await withPostgresConnection(location.app, logger: logger) { connection in
                    guard let found = try await TenantStore(logger: logger).find(slug: slug, on: connection) else { throw ValidationFailure("no tenant named '\(slug)'") }
                    return try await connection.withTenantTransaction(found.id, logger: logger) { connection in
                        let instruments = try await connection.query(
                            """
                            SELECT i.symbol, (SELECT p.close::text FROM portfolio_prices p WHERE p.symbol = i.symbol AND p.on_date < \(DayNumber.text(end - days + 1))::date
                                              ORDER BY p.on_date DESC LIMIT 1)
                            FROM portfolio_instruments i ORDER BY i.symbol
                            """, logger: logger
                        ).collect().map { try $0.decode((String, String?).self) }
                        var generator = SimulatedWalk(seed: seed)
                        var rows: [(String, String, String)] = []
                        for (symbol, close) in instruments {
                            var price = close.flatMap { DecimalString($0)?.value } ?? 100
                            for day in (end - days + 1)...end where (day + 3) % 7 < 5 {  // 1970-01-01 was a Thursday: skip Saturdays and Sundays
                                price = max(Decimal(1) / 100, DecimalString.rounded(price * generator.step(), scale: 2))
                                rows.append((symbol, DayNumber.text(day), DecimalString(price, scale: 2).text))
                            }
                        }
                        guard !rows.isEmpty else { return Int64(0) }
                        return try await connection.query(
                            """
                            WITH written AS (
                                INSERT INTO portfolio_prices (tenant_id, symbol, on_date, close, source)
                                SELECT \(found.id), s, d::date, c::numeric, 'simulated' FROM unnest(\(rows.map(\.0)), \(rows.map(\.1)), \(rows.map(\.2))) AS t (s, d, c)
                                ON CONFLICT (tenant_id, symbol, on_date) DO UPDATE SET close = excluded.close WHERE portfolio_prices.source = 'simulated'
                                RETURNING 1
                            ), forgotten AS (DELETE FROM portfolio_valuations WHERE as_of >= \(DayNumber.text(end - days + 1))::date)
                            SELECT count(*)::int8 FROM written
                            """, logger: logger
                        ).collect().first?.decode(Int64.self) ?? 0
                    }
                }
            }
            Console.line("wrote \(written) simulated closes for \(slug), \(DayNumber.text(end - days + 1)) to \(last)")
        }
    }
}

/// SplitMix64 steps of at most ±2 %: the same seed, the same walk.
struct SimulatedWalk {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func step() -> Decimal {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        // −200 … +200 basis points.
        return 1 + Decimal(Int(z % 401) - 200) / 10_000
    }
}
