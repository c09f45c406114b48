import ArgumentParser
import AtriumCore
import Foundation
import HTTPTypes
import Logging
import PostgresNIO

/// Measurements for `make bench`; not part of the operator's toolbox, so hidden from help.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Micro-benchmarks used by make bench.", shouldDisplay: false, subcommands: [PasswordHashing.self, Metering.self, AnalysisMetering.self, Outbound.self])

    struct PasswordHashing: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "password-hashing", abstract: "Argon2id hashes per second with the default parameters, on the hashing pool.")
        @Option(help: "Seconds to measure.") var seconds: Double = 5
        @Option(help: "Hashes in flight at once.") var concurrency: Int = 8

        func run() async throws {
            let hasher = PasswordHasher()
            let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
            let start = ContinuousClock.now
            let count = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<concurrency {
                    group.addTask {
                        var done = 0
                        while ContinuousClock.now < deadline {
                            _ = try await hasher.hash("benchmark-password")
                            done += 1
                        }
                        return done
                    }
                }
                return try await group.reduce(0, +)
            }
            let elapsed = ContinuousClock.now - start
            let perSecond = Double(count) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
            Console.line(String(format: "%.1f", perSecond))
        }
    }

    /// What reusing connections saves an exchange sync: sequential calls to one URL, each
    /// on a new connection and then on kept ones, as `context.http` makes them.
    struct Outbound: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "outbound", abstract: "Sequential outbound calls per second to a URL, with and without connection reuse.")
        @Argument(help: "The URL to call (GET), e.g. a server's /healthz.") var url: String
        @Option(help: "Calls per variant.") var calls: Int = 1000

        func run() async throws {
            guard let target = URL(string: url), target.host() != nil else { throw ValidationFailure("not a URL: \(url)") }
            let logger = Logger(label: "atrium.bench")
            func rate(reusing: Bool) async throws -> Double {
                // The operator names the target, often on loopback: no address policy here.
                let http = OutboundHTTP(logger: logger, policy: .anyAddress, reusesConnections: reusing)
                _ = try await http.send(OutboundRequest(.get, target))
                let start = ContinuousClock.now
                for _ in 0..<calls {
                    let response = try await http.send(OutboundRequest(.get, target))
                    guard response.status < 500 else { throw ValidationFailure("\(url) answered \(response.status)") }
                }
                let elapsed = ContinuousClock.now - start
                return Double(calls) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
            }
            let fresh = try await rate(reusing: false)
            let reused = try await rate(reusing: true)
            Console.line(String(format: "%d sequential calls: %.0f/s on a new connection each, %.0f/s reusing connections (%.2fx)", calls, fresh, reused, reused / fresh))
        }
    }

    /// The cost of metering, in process against the database (`--data-dir` as usual):
    /// a module write with and without usage recorded in its transaction, and batch
    /// ingestion against a plain insert of the same rows (no idempotency, no counters).
    struct Metering: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "metering", abstract: "Metering overhead and batch ingestion rate.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Tenant to write as.") var tenant: String = "acme"
        @Option(help: "Writes per variant.") var writes: Int = 2000
        @Option(help: "Batches of 1,000 events per variant.") var batches: Int = 40

        func run() async throws {
            let logger = global.logger(defaultLevel: .error)
            let (slug, writes, batches) = (tenant, writes, batches)
            let metering = AtriumCore.Metering(registry: try ModulesCommand.registry(), catalog: try PlanCatalog.parse("""
                meters:
                  bench.events: { aggregation: sum, unit: event }
                plans:
                  bench: {}
                """, path: "bench"), logger: logger)
            let lines = try await TenantsCommand.withOwner(global, logger: logger) { connection, _ in
                guard let tenant = try await TenantStore(logger: logger).find(slug: slug, on: connection) else { throw ValidationFailure("no tenant '\(slug)'") }
                try await MeterDeclarations(metering: metering, logger: logger).synchronize(on: connection)
                try await connection.query(
                    "CREATE TABLE IF NOT EXISTS bench_writes (tenant_id uuid NOT NULL, id uuid DEFAULT gen_random_uuid(), body text, quantity int8, key text)",
                    logger: logger)
                let run = UUID().uuidString.prefix(8)
                func timed(_ body: () async throws -> Void) async throws -> Double {
                    let start = ContinuousClock.now
                    try await body()
                    let elapsed = ContinuousClock.now - start
                    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                }
                let plain = try await timed {
                    for index in 0..<writes {
                        try await connection.withTenantTransaction(tenant.id, logger: logger) { connection in
                            try await connection.query("INSERT INTO bench_writes (tenant_id, body) VALUES (\(tenant.id), \("note \(index)"))", logger: logger)
                        }
                    }
                }
                let metered = try await timed {
                    for index in 0..<writes {
                        try await connection.withTenantTransaction(tenant.id, logger: logger) { connection in
                            try await connection.query("INSERT INTO bench_writes (tenant_id, body) VALUES (\(tenant.id), \("note \(index)"))", logger: logger)
                            try await metering.record(
                                "bench.events", quantity: 1, idempotencyKey: "w-\(run)-\(index)", at: Date(), properties: [:], tenantID: tenant.id,
                                on: connection)
                        }
                    }
                }
                // The same comparison on a write shaped like a module's owned row (primary key,
                // owner index, row-level security), not a bare heap insert.
                for statement: PostgresQuery in [
                    "DROP TABLE IF EXISTS bench_records",
                    """
                    CREATE TABLE bench_records (tenant_id uuid NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid(), owner_id uuid NOT NULL,
                        body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (tenant_id, id))
                    """,
                    "CREATE INDEX bench_records_owner ON bench_records (tenant_id, owner_id, created_at)",
                    "ALTER TABLE bench_records ENABLE ROW LEVEL SECURITY",
                    "ALTER TABLE bench_records FORCE ROW LEVEL SECURITY",
                    "CREATE POLICY tenant_isolation ON bench_records USING (tenant_id = atrium_current_tenant()) WITH CHECK (tenant_id = atrium_current_tenant())",
                ] {
                    try await connection.query(statement, logger: logger)
                }
                let owner = UUID()
                let plainRecord = try await timed {
                    for index in 0..<writes {
                        try await connection.withTenantTransaction(tenant.id, logger: logger) { connection in
                            try await connection.query(
                                "INSERT INTO bench_records (tenant_id, owner_id, body) VALUES (\(tenant.id), \(owner), \("note \(index)"))", logger: logger)
                        }
                    }
                }
                let meteredRecord = try await timed {
                    for index in 0..<writes {
                        try await connection.withTenantTransaction(tenant.id, logger: logger) { connection in
                            try await connection.query(
                                "INSERT INTO bench_records (tenant_id, owner_id, body) VALUES (\(tenant.id), \(owner), \("note \(index)"))", logger: logger)
                            try await metering.record(
                                "bench.events", quantity: 1, idempotencyKey: "r-\(run)-\(index)", at: Date(), properties: [:], tenantID: tenant.id,
                                on: connection)
                        }
                    }
                }
                try await connection.query("DROP TABLE bench_records", logger: logger)
                func batch(_ number: Int) -> [AtriumCore.Metering.IncomingEvent] {
                    (0..<1000).map { .init(meter: "bench.events", quantity: Int64($0 % 7), timestamp: nil, idempotencyKey: "b-\(run)-\(number)-\($0)", properties: nil) }
                }
                let ingested = try await timed {
                    for number in 0..<batches {
                        _ = try await connection.withTenantTransaction(tenant.id, logger: logger) { connection in
                            try await metering.recordBatch(batch(number), tenantID: tenant.id, on: connection)
                        }
                    }
                }
                let bare = try await timed {
                    for number in 0..<batches {
                        let events = batch(number)
                        let (quantities, keys) = (events.map { $0.quantity ?? 1 }, events.map(\.idempotencyKey))
                        try await connection.withTenantTransaction(tenant.id, logger: logger) { connection in
                            try await connection.query(
                                "INSERT INTO bench_writes (tenant_id, quantity, key) SELECT \(tenant.id), * FROM unnest(\(quantities)::int8[], \(keys)::text[])",
                                logger: logger)
                        }
                    }
                }
                try await connection.query("DROP TABLE bench_writes", logger: logger)
                let events = Double(batches * 1000)
                return [
                    // `Metering.record`: usage recorded outside a request (an import's rows, the
                    // API-call flush), straight into the events and the month's counter.
                    String(
                        format: "bare heap insert: %.0f/s plain, %.0f/s with usage recorded outside a request (%.2f of plain)", Double(writes) / plain,
                        Double(writes) / metered, plain / metered),
                    String(
                        format: "owned-row write (key, owner index, RLS): %.0f/s plain, %.0f/s with usage recorded outside a request (%.2f of plain; event and counter, a round trip of their own; a request's record: bench/metering.sh)",
                        Double(writes) / plainRecord, Double(writes) / meteredRecord, plainRecord / meteredRecord),
                    String(format: "batch ingestion (in process, idempotent, counters): %.0f events/s; bare insert of the same rows: %.0f rows/s (%.2f of bare)",
                           events / ingested, events / bare, bare / ingested),
                ]
            }
            for line in lines { Console.line(line) }
        }
    }
}
