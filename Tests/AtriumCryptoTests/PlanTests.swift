import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Testing

@testable import AtriumCrypto

/// What the plan decides: how many connections a tenant keeps (concurrent creates cannot
/// both take the last one; a downgrade pauses the newest, an upgrade resumes them) and
/// how often each syncs.
@Suite struct CryptoPlanTests {
    static let base = SyncTests.base

    static func key(_ letter: String) -> String { String(repeating: letter, count: 64) }

    func publish(_ db: TestDatabase, _ quotas: [String: Int64]) async throws {
        try await db.withOwner { connection in
            try await connection.query("DELETE FROM plan_quotas WHERE plan = 'free' AND name LIKE 'crypto.%'", logger: TestDatabase.logger)
            for (name, value) in quotas {
                try await connection.query("INSERT INTO plan_quotas (plan, name, value) VALUES ('free', \(name), \(value))", logger: TestDatabase.logger)
            }
        }
    }

    func states(_ db: TestDatabase) async throws -> [String: String] {
        try await db.withOwner { connection in
            try await connection.query(
                "SELECT set_config('app.tenant_id', (SELECT id::text FROM tenants WHERE slug = 'coin'), false), set_config('app.owner_scope', 'any', false)",
                logger: TestDatabase.logger)
            var states: [String: String] = [:]
            for try await (label, state) in try await connection.query("SELECT label, state FROM crypto_connections", logger: TestDatabase.logger)
                .decode((String, String).self) { states[label] = state }
            return states
        }
    }

    @Test func thePlanCapsConnectionsPausesTheNewestOnDowngradeAndSpacesSyncs() async throws {
        try await ExchangeSimulator.with { exchange in
            for letter in ["A", "B", "C", "D"] { try await exchange.account(key: Self.key(letter), secret: SyncTests.secret) }
            try await SyncTests.withAnn(exchange) { client, db, tenant, token, environment in
                try await publish(db, ["crypto.exchanges": 2, "crypto.sync_interval_seconds": 900])
                // Four creates race for two slots.
                let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                    for letter in ["A", "B", "C", "D"] {
                        group.addTask {
                            try await client.send(
                                .post, Self.base + "/connections", token: token,
                                json: #"{"exchange":"binance","label":"\#(letter)","api_key":"\#(Self.key(letter))","api_secret":"\#(SyncTests.secret)"}"#
                            ).status
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                #expect(statuses.filter { $0 == .created }.count == 2, "\(statuses)")
                #expect(statuses.filter { $0 == .forbidden }.count == 2, "\(statuses)")
                let asked = try await exchange.requests().filter { ($0["path"] as? String) == "/sapi/v1/account/apiRestrictions" }.count
                let full = try await client.send(
                    .post, Self.base + "/connections", token: token,
                    json: #"{"exchange":"binance","label":"E","api_key":"\#(Self.key("A"))","api_secret":"\#(SyncTests.secret)"}"#)
                #expect(json(full)["code"]?.string == "plan_upgrade_required")
                #expect(json(full)["quota"]?.string == "crypto.exchanges")
                #expect(json(full)["limit"]?.int == 2 && json(full)["used"]?.int == 2)
                #expect(try await exchange.requests().filter { ($0["path"] as? String) == "/sapi/v1/account/apiRestrictions" }.count == asked,
                        "a tenant at its count is refused before the exchange is asked")

                let listed = json(try await client.send(.get, Self.base + "/connections", token: token))["data"]?.array ?? []
                let ids = listed.compactMap { $0["id"]?.string.flatMap(UUID.init(uuidString:)) }
                try #require(ids.count == 2)
                let (oldest, newest) = (ids[0], ids[1])

                // A run's next sync is the plan's interval after it started; a manual sync
                // inside it is refused until then.
                try await db.withApp { database in
                    try await runJob(
                        CryptoSync.kind, of: CryptoModule(), tenantID: tenant.id, payload: .init(connection: oldest), database: database,
                        environment: environment, masterKey: db.masterKey)
                }
                let spacing = try await db.withOwner { connection in
                    try await connection.query(
                        "SELECT set_config('app.tenant_id', \(tenant.id.uuidString), false), set_config('app.owner_scope', 'any', false)", logger: TestDatabase.logger)
                    return try await connection.query(
                        """
                        SELECT extract(epoch FROM c.next_sync_at - r.started_at)::int FROM crypto_connections c
                        JOIN crypto_sync_runs r ON r.connection_id = c.id WHERE c.id = \(oldest)
                        """, logger: TestDatabase.logger
                    ).collect().first?.decode(Int.self)
                }
                #expect(spacing == 900)
                let early = try await client.send(.post, Self.base + "/connections/\(oldest)/sync", token: token)
                #expect(early.status == .tooManyRequests && json(early)["code"]?.string == "sync_too_soon")
                #expect(early.headers[.retryAfter].flatMap(Int.init).map { (301...900).contains($0) } == true, "\(early.headers)")

                // Downgrade to one: the tick pauses the newest, keeping its data; it neither
                // syncs nor can be synced.
                try await publish(db, ["crypto.exchanges": 1])
                try await db.withApp { database in
                    try await runJob(CryptoSync.tick, of: CryptoModule(), tenantID: tenant.id, payload: .init(), database: database, environment: environment)
                }
                let labels = try await states(db)
                #expect(labels.values.sorted() == ["active", "paused_plan_limit"], "\(labels)")
                let paused = json(try await client.send(.get, Self.base + "/connections/\(newest)", token: token))
                #expect(paused["state"]?.string == "paused_plan_limit")
                let refused = try await client.send(.post, Self.base + "/connections/\(newest)/sync", token: token)
                #expect(refused.status == .conflict && json(refused)["code"]?.string == "connection_not_syncing")
                let runsBefore = try await exchange.requests().count
                try await db.withApp { database in
                    try await runJob(
                        CryptoSync.kind, of: CryptoModule(), tenantID: tenant.id, payload: .init(connection: newest), database: database,
                        environment: environment, masterKey: db.masterKey)
                }
                #expect(try await exchange.requests().count == runsBefore, "a paused connection is not synced")

                // Upgraded (no cap): resumed and due at once.
                try await publish(db, [:])
                try await db.withApp { database in
                    try await runJob(CryptoSync.tick, of: CryptoModule(), tenantID: tenant.id, payload: .init(), database: database, environment: environment)
                }
                #expect(try await states(db).values.sorted() == ["active", "active"])
                let queued = try await db.withOwner { connection in
                    try await connection.query(
                        "SELECT set_config('app.tenant_id', \(tenant.id.uuidString), false), set_config('app.owner_scope', 'any', false)", logger: TestDatabase.logger)
                    return try await connection.query(
                        "SELECT count(*)::int FROM jobs WHERE kind = 'crypto.sync' AND state = 'pending' AND payload->>'connection' = \(newest.uuidString.lowercased())",
                        logger: TestDatabase.logger
                    ).collect().first?.decode(Int.self)
                }
                #expect(queued == 1, "the resumed connection is due and queued")
            }
        }
    }

    /// With the operator's plan change (not at the next tick): a downgrade pauses the
    /// newest connection, an upgrade resumes it.
    @Test func aPlanChangePausesAndResumesAtOnce() async throws {
        try await ExchangeSimulator.with { exchange in
            for letter in ["A", "B"] { try await exchange.account(key: Self.key(letter), secret: SyncTests.secret) }
            try await SyncTests.withAnn(exchange) { client, db, tenant, token, environment in
                let catalog = try PlanCatalog.parse(
                    """
                    plans:
                      free: { modules: [crypto], quotas: { crypto.exchanges: 2 } }
                      solo: { modules: [crypto], quotas: { crypto.exchanges: 1 } }
                    """, path: "plans.yaml", knownModules: ["crypto"])
                try await db.withOwner { try await catalog.publishQuotas(on: $0, logger: TestDatabase.logger) }
                for letter in ["A", "B"] {
                    let created = try await client.send(
                        .post, Self.base + "/connections", token: token,
                        json: #"{"exchange":"binance","label":"\#(letter)","api_key":"\#(Self.key(letter))","api_secret":"\#(SyncTests.secret)"}"#)
                    #expect(created.status == .created)
                }
                func change(to plan: String) async throws {
                    _ = try await db.withOwner {
                        try await PlanChange(catalog: catalog, modules: [CryptoModule()], logger: TestDatabase.logger)
                            .change(slug: "coin", to: plan, actor: .init(type: .operator), on: $0)
                    }
                }
                try await change(to: "solo")
                #expect(try await states(db) == ["A": "active", "B": "paused_plan_limit"])
                try await change(to: "free")
                #expect(try await states(db) == ["A": "active", "B": "active"])
            }
        }
    }
}
