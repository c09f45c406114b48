import ArgumentParser
import AtriumCore
import Foundation
import PostgresNIO

extension BenchCommand {
    /// What metering adds to a portfolio analysis, in process against the database
    /// (`--data-dir` as usual): the analysis's write (its row and five advice rows, in the
    /// module's tables under row-level security, as the owner) with and without its two
    /// usage records (`portfolio.analysis`, `portfolio.advice`, keyed by the analysis),
    /// in interleaved rounds. The analysis's reads and its advisor run are the same
    /// either way, so the write alone gives the lower bound of the whole analysis's ratio;
    /// `--analysis-ms` (an analysis's p50 over HTTP) turns the difference into that ratio.
    struct AnalysisMetering: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "analysis-metering", abstract: "A portfolio analysis's write with and without its metering.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Tenant to write as.") var tenant: String = "consult"
        @Option(help: "The portfolio the analyses are of.") var portfolio: String
        @Option(help: "Writes per variant and round.") var writes: Int = 200
        @Option(help: "Rounds, each variant in turn.") var rounds: Int = 3
        @Option(help: "An analysis's p50 over HTTP, in milliseconds.") var analysisMs: Double?

        func run() async throws {
            let logger = global.logger(defaultLevel: .error)
            guard let portfolioID = UUID(uuidString: portfolio) else { throw ValidationError("--portfolio must be a portfolio's id") }
            let (slug, writes, rounds) = (tenant, writes, rounds)
            let metering = AtriumCore.Metering(
                registry: try ModulesCommand.registry(), catalog: try PlanCatalog.parse("plans:\n  bench: {}\n", path: "bench"), logger: logger)
            let (plain, metered) = try await TenantsCommand.withOwner(global, logger: logger) { connection, _ in
                guard let tenant = try await TenantStore(logger: logger).find(slug: slug, on: connection) else { throw ValidationFailure("no tenant '\(slug)'") }
                try await MeterDeclarations(metering: metering, logger: logger).synchronize(on: connection)
                let owner = try await connection.withTenantTransaction(tenant.id, logger: logger) { connection in
                    try await connection.scopeToAllOwners(logger: logger)
                    return try await connection.query("SELECT owner_id FROM portfolio_portfolios WHERE id = \(portfolioID)", logger: logger)
                        .collect().first?.decode(UUID.self)
                }
                guard let owner else { throw ValidationFailure("no portfolio \(portfolioID) in '\(slug)'") }
                let codes = ["allocation", "concentration", "risk_drift", "stale_prices", "loss_lots"]
                func write(metered: Bool) async throws -> Duration {
                    let start = ContinuousClock.now
                    for _ in 0..<writes {
                        try await connection.withTenantTransaction(tenant.id, principal: owner, logger: logger) { connection in
                            let id = try await connection.query(
                                """
                                INSERT INTO portfolio_analyses (tenant_id, owner_id, portfolio_id, as_of, advisor, inputs_hash, currency, value, summary)
                                VALUES (\(tenant.id), \(owner), \(portfolioID), DATE '2024-12-31', 'bench/1', repeat('0', 64), 'INR', 1000, '{}')
                                RETURNING id
                                """, logger: logger
                            ).collect().first?.decode(UUID.self)
                            guard let id else { throw ValidationFailure("the analysis was not written") }
                            try await connection.query(
                                """
                                INSERT INTO portfolio_advice (tenant_id, analysis_id, owner_id, position, code, severity, text, figures)
                                SELECT \(tenant.id), \(id), \(owner), a.ord - 1, a.code, 'info', 'bench', '{}' FROM unnest(\(codes)) WITH ORDINALITY AS a (code, ord)
                                """, logger: logger)
                            guard metered else { return }
                            let key = id.uuidString.lowercased()
                            try await metering.record(
                                "portfolio.analysis", quantity: 1, idempotencyKey: "analysis:\(key)", at: Date(), properties: ["user": .string(owner.uuidString)],
                                tenantID: tenant.id, on: connection)
                            try await metering.record(
                                "portfolio.advice", quantity: Int64(codes.count), idempotencyKey: "advice:\(key)", at: Date(),
                                properties: ["user": .string(owner.uuidString)], tenantID: tenant.id, on: connection)
                        }
                    }
                    return ContinuousClock.now - start
                }
                var (plain, metered) = (Duration.zero, Duration.zero)
                for _ in 0..<rounds {
                    plain += try await write(metered: false)
                    metered += try await write(metered: true)
                }
                try await connection.withTenantTransaction(tenant.id, logger: logger) { connection in
                    try await connection.scopeToAllOwners(logger: logger)
                    try await connection.query("DELETE FROM portfolio_analyses WHERE advisor = 'bench/1'", logger: logger)
                }
                return (plain, metered)
            }
            func milliseconds(_ duration: Duration) -> Double {
                (Double(duration.components.seconds) * 1e3 + Double(duration.components.attoseconds) / 1e15) / Double(writes * rounds)
            }
            let (plainMs, meteredMs) = (milliseconds(plain), milliseconds(metered))
            var line = String(
                format: "analysis write %.2f ms, with its metering %.2f ms (%.2f of without)", plainMs, meteredMs, plainMs / meteredMs)
            if let analysisMs {
                line += String(
                    format: "; a whole analysis (p50 %.1f ms over HTTP) with metering: %.3f of without (target >= 0.9)", analysisMs,
                    (analysisMs - (meteredMs - plainMs)) / analysisMs)
            }
            Console.line(line)
        }
    }
}
