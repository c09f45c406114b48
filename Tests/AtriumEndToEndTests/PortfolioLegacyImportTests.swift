import AtriumCore
import AtriumTesting
import Foundation
import Logging
import PostgresNIO
import Testing

/// `atrium portfolio import-legacy`, run as a built binary on PortfoliAI's stores
/// (`Tests/Fixtures/portfolio-legacy`), traps included: two emails equal but for case, an
/// undated and a negative entry, a currency that is not one, unknown fields, a message of
/// a role the old app should not have stored, and the chats of a user who does not exist.
@Suite("atrium portfolio import-legacy", .serialized)
struct PortfolioLegacyImportTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appending(path: "Fixtures/portfolio-legacy")

    struct Report: Decodable {
        struct Counts: Decodable, Equatable {
            var created, unchanged, updated, rejected: Int
        }
        struct Finding: Decodable {
            var file, pointer, message: String
        }
        struct Password: Decodable {
            var email, treatment: String
        }
        var dryRun: Bool
        var committed: Bool
        var entities: [String: Counts]
        var rejections: [Finding]
        var warnings: [Finding]
        var passwords: [Password]
    }

    func report(_ result: AtriumBinary.Result) throws -> Report {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(Report.self, from: Data(result.stdout.utf8))
    }

    /// Runs `sql` in the tenant's scope, every owner visible, on the embedded database.
    func rows(_ data: URL, _ sql: String) async throws -> [[String?]] {
        let logger = Logger(label: "legacy.test")
        let urls = try EmbeddedPostgres(dataDirectory: data, logger: logger).urls()
        return try await withPostgresConnection(urls.owner, logger: logger) { connection in
            try await connection.query("SELECT set_config('app.scope', 'platform', false)", logger: logger)
            let tenant = try await connection.query("SELECT id FROM tenants WHERE slug = 'fund'", logger: logger).collect().first?.decode(UUID.self)
            try await connection.query(
                "SELECT set_config('app.tenant_id', \(tenant?.uuidString.lowercased() ?? ""), false), set_config('app.owner_scope', 'any', false)", logger: logger)
            var result: [[String?]] = []
            for try await row in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger) {
                result.append(try row.map { try $0.decode(String?.self) })
            }
            return result
        }
    }

    @Test func theStoresImportOnceByPointerKeepingEveryDigit() async throws {
        let scratch = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let data = scratch.appending(path: ".atrium")
        let atrium = AtriumBinary(dataDirectory: data)
        // Kept running, so the test can read what each command left.
        #expect(try await atrium.run("db", "start").status == 0)
        defer { _ = try? atrium.runBlocking("db", "stop") }
        #expect(try await atrium.run("migrate").status == 0)
        #expect(try await atrium.run("tenants", "create", "fund", "--name", "Fund").status == 0)
        let (users, chats) = (Self.fixtures.appending(path: "users_db.json").path(), Self.fixtures.appending(path: "conversations.json").path())

        // All or nothing: rejections, so nothing is written and the exit status says so.
        let strict = try await atrium.run("portfolio", "import-legacy", "--tenant", "fund", "--json", users, chats)
        #expect(strict.status == 1, "\(strict.stderr)")
        #expect(try report(strict).committed == false)
        #expect(try await rows(data, "SELECT count(*)::text FROM users") == [["0"]])
        let dry = try report(try await atrium.run("portfolio", "import-legacy", "--tenant", "fund", "--json", "--dry-run", "--skip-invalid", users, chats))
        #expect(dry.dryRun && !dry.committed)
        #expect(try await rows(data, "SELECT count(*)::text FROM portfolio_transactions") == [["0"]])

        let run = try await atrium.run("portfolio", "import-legacy", "--tenant", "fund", "--json", "--skip-invalid", users, chats)
        #expect(run.status == 0, "\(run.stderr)")
        let first = try report(run)
        #expect(first.committed)
        #expect(first.entities == dry.entities, "the dry run said what the import did")
        typealias Counts = Report.Counts
        #expect(first.entities["users"] == Counts(created: 2, unchanged: 0, updated: 0, rejected: 1))
        #expect(first.entities["profiles"] == Counts(created: 2, unchanged: 0, updated: 0, rejected: 0))
        #expect(first.entities["portfolios"] == Counts(created: 1, unchanged: 0, updated: 0, rejected: 1))
        #expect(first.entities["instruments"] == Counts(created: 2, unchanged: 0, updated: 0, rejected: 0))
        #expect(first.entities["transactions"] == Counts(created: 3, unchanged: 0, updated: 0, rejected: 2))
        #expect(first.entities["withdrawals"] == Counts(created: 1, unchanged: 0, updated: 0, rejected: 0))
        #expect(first.entities["manual_prices"] == Counts(created: 1, unchanged: 0, updated: 0, rejected: 0))
        #expect(first.entities["conversations"] == Counts(created: 1, unchanged: 0, updated: 0, rejected: 1))
        #expect(first.entities["messages"] == Counts(created: 2, unchanged: 0, updated: 0, rejected: 1))
        let rejected = Dictionary(first.rejections.map { ($0.pointer, $0.message) }, uniquingKeysWith: { a, _ in a })
        #expect(rejected["/Asha@Example.com"]?.contains("the same email as /asha@example.com but for case") == true)
        #expect(rejected["/asha@example.com/portfolio/positions/0/entries/2"]?.contains("no date") == true)
        #expect(rejected["/asha@example.com/portfolio/positions/0/entries/3"]?.contains("a negative entry is a sale") == true)
        #expect(rejected["/ravi@example.com/portfolio"]?.contains("RUPEES") == true)
        #expect(rejected["/ghost@example.com"]?.contains("no user has this email") == true)
        #expect(rejected["/asha@example.com/0/messages/2"]?.contains("role must be user or assistant") == true)
        #expect(first.warnings.contains { $0.pointer == "/asha@example.com" && $0.message.contains("theme") })
        #expect(first.warnings.contains { $0.pointer == "/asha@example.com/portfolio/positions/0/entries/1" && $0.message.contains("broker") })
        #expect(first.warnings.contains { $0.message.contains("withdrawal of 2024-02-15 takes 1000 INR more than the ledger's cash") })
        #expect(first.passwords.map(\.treatment.first) == ["k", "d"], "bcrypt kept, an unsalted digest dropped")

        // Every digit as the file wrote it, never through a binary double.
        #expect(try await rows(data, "SELECT symbol, quantity::text, price::text, trade_date::text FROM portfolio_transactions WHERE kind = 'buy' ORDER BY trade_date") == [
            ["RELIANCE", "10", "2456.7", "2024-01-05"], ["TCS", "2", "3890.1", "2024-01-10"], ["RELIANCE", "0.1", "2500.0500000000000001", "2024-02-01"],
        ])
        #expect(try await rows(data, "SELECT score::text, band, horizon, return_min_bp::text, return_max_bp::text FROM portfolio_profiles ORDER BY score") == [
            ["0.20", "conservative", "under_3y", "300", "500"], ["0.62", "moderate", "7_15y", "600", "1050"],
        ])
        #expect(try await rows(data, "SELECT email, (email_verified_at IS NOT NULL)::text, (password_hash IS NOT NULL)::text FROM users ORDER BY email").map { $0.map { $0 ?? "" } } == [
            ["asha@example.com", "true", "true"], ["ravi@example.com", "true", "false"],
        ])

        // A second run creates nothing.
        let second = try report(try await atrium.run("portfolio", "import-legacy", "--tenant", "fund", "--json", "--skip-invalid", users, chats))
        #expect(second.entities.values.allSatisfy { $0.created == 0 && $0.updated == 0 }, "\(second.entities)")
        #expect(second.entities["transactions"]?.unchanged == 3)
        #expect(try await rows(data, "SELECT count(*)::text FROM portfolio_transactions") == [["4"]])

        // Simulated closes for the imported instruments: weekdays only, the same walk for the same seed.
        let simulate = ["portfolio", "feed", "simulate", "--tenant", "fund", "--seed", "7", "--days", "10", "--through", "2024-03-08"]
        let simulated = try await atrium.run(simulate[0], simulate[1], simulate[2], simulate[3], simulate[4], simulate[5], simulate[6], simulate[7], simulate[8], simulate[9], simulate[10])
        #expect(simulated.status == 0, "\(simulated.stderr)")
        #expect(simulated.stdout.contains("wrote 16 simulated closes for fund, 2024-02-28 to 2024-03-08"), "\(simulated.stdout)")
        let walk = try await rows(data, "SELECT symbol, on_date::text, close::text FROM portfolio_prices WHERE source = 'simulated' ORDER BY symbol, on_date")
        #expect(!walk.contains { ["2024-03-02", "2024-03-03"].contains($0[1] ?? "") })
        _ = try await atrium.run(simulate[0], simulate[1], simulate[2], simulate[3], simulate[4], simulate[5], simulate[6], simulate[7], simulate[8], simulate[9], simulate[10])
        #expect(try await rows(data, "SELECT symbol, on_date::text, close::text FROM portfolio_prices WHERE source = 'simulated' ORDER BY symbol, on_date") == walk)

        // A broker's file of entries for a new portfolio of Asha's, its columns mapped:
        // landed once by trade id; a file that would sell more than she holds lands
        // nothing and says why.
        let asha = try #require(try await rows(
            data,
            """
            INSERT INTO portfolio_portfolios (tenant_id, owner_id, name, base_currency)
            SELECT tenant_id, id, 'Broker', 'INR' FROM users WHERE email = 'asha@example.com' RETURNING id::text
            """).first?.first ?? nil)
        let broker = scratch.appending(path: "broker.csv")
        try """
            Trade ID,Trade Date,Action,Ticker,Shares,Price,CCY
            B-1,2024-03-01,BUY,RELIANCE,10,2500,INR
            B-2,2024-03-04,SELL,RELIANCE,5,2600,INR
            B-3,2024-03-04,short,RELIANCE,1,1,INR

            """.write(to: broker, atomically: true, encoding: .utf8)
        let mapping = #"{"external_id":"Trade ID","date":"Trade Date","type":"Action","symbol":"Ticker","quantity":"Shares","currency":"CCY"}"#
        let entries = ["portfolio", "transactions", "import", "--tenant", "fund", "--portfolio", asha, "--owner", "asha@example.com", "--mapping", mapping]
        let landed = try await atrium.run(entries[0], entries[1], entries[2], entries[3], entries[4], entries[5], entries[6], entries[7], entries[8], entries[9], entries[10], broker.path())
        #expect(landed.status == 0, "\(landed.stderr)")
        #expect(landed.stdout.contains("written 2") && landed.stdout.contains("rejected 1"), "\(landed.stdout)")
        #expect(try await rows(data, "SELECT kind, quantity::text FROM portfolio_transactions WHERE external_id = 'B-2'") == [["sell", "5"]])
        let again = try await atrium.run(entries[0], entries[1], entries[2], entries[3], entries[4], entries[5], entries[6], entries[7], entries[8], entries[9], entries[10], broker.path())
        #expect(again.stdout.contains("written 0, unchanged 2"), "\(again.stdout)")
        try "Trade ID,Trade Date,Action,Ticker,Shares,Price,CCY\nB-4,2024-03-05,sell,RELIANCE,100,2600,INR\n".write(to: broker, atomically: true, encoding: .utf8)
        let short = try await atrium.run(entries[0], entries[1], entries[2], entries[3], entries[4], entries[5], entries[6], entries[7], entries[8], entries[9], entries[10], broker.path())
        #expect(short.status != 0)
        #expect(short.stderr.contains("the sells of RELIANCE would take more than was held"), "\(short.stderr)")
        #expect(try await rows(data, "SELECT count(*)::text FROM portfolio_transactions WHERE external_id = 'B-4'") == [["0"]])

        // A broken file is named by line and column, and nothing happens.
        let broken = try await atrium.run("portfolio", "import-legacy", "--tenant", "fund", Self.fixtures.appending(path: "broken_users_db.json").path())
        #expect(broken.status != 0)
        #expect(broken.stderr.contains("broken_users_db.json: line 5, column 1: the file ends where a value should be"), "\(broken.stderr)")
    }

    /// A plan with one seat: the second user is rejected by its pointer, the first and its
    /// records are imported.
    @Test func aSeatLimitRejectsTheUsersItHasNoRoomFor() async throws {
        let scratch = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let data = scratch.appending(path: ".atrium")
        let atrium = AtriumBinary(dataDirectory: data)
        #expect(try await atrium.run("db", "start").status == 0)
        defer { _ = try? atrium.runBlocking("db", "stop") }
        #expect(try await atrium.run("migrate").status == 0)
        #expect(try await atrium.run("tenants", "create", "fund", "--name", "Fund").status == 0)
        _ = try await rows(data, "INSERT INTO plan_quotas (plan, name, value) SELECT plan, 'seats', 1 FROM tenants WHERE slug = 'fund' RETURNING name")
        let run = try await atrium.run(
            "portfolio", "import-legacy", "--tenant", "fund", "--json", "--skip-invalid", Self.fixtures.appending(path: "users_db.json").path())
        #expect(run.status == 0, "\(run.stderr)")
        let result = try report(run)
        #expect(result.entities["users"]?.created == 1)
        #expect(result.rejections.contains { $0.pointer == "/ravi@example.com" && $0.message.contains("seats") }, "\(result.rejections)")
        #expect(try await rows(data, "SELECT count(*)::text FROM users") == [["1"]])
    }
}
