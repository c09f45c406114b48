import AtriumCore
import AtriumTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Testing

/// The smallest module on the kernel's owned-record routes: memos a user owns. What Sales
/// gets from `OwnedRecordRoutes`, checked here on its own.
struct MemoModule: AtriumModule {
    var id: String { "memo" }
    var version: String { "1.0.0" }
    var requiredKernelVersion: String { "0.1" }
    var permissions: [PermissionDefinition] {
        [
            .init("memo.records.own", description: "Own memos"), .init("memo.records.any", description: "Every memo"),
            .init("memo.owners.assign", description: "Give memos to others"),
        ]
    }
    var roleGrants: [String: [String]] { ["member": ["memo.records.own"], "admin": ["memo.records.any", "memo.owners.assign"]] }

    func migrations() throws -> [Migration] {
        [Migration(owner: id, version: 1, fileName: "0001_memos.sql", sql: """
            CREATE TABLE memo_memos (
                tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                id uuid NOT NULL DEFAULT gen_random_uuid(),
                owner_id uuid NOT NULL,
                text text NOT NULL,
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (tenant_id, id)
            );
            CALL atrium_owned_table('memo_memos');
            """)]
    }

    struct Memo: Codable, Sendable {
        var id: UUID
        var ownerId: UUID
        var text: String
        var updatedAt: Date
    }

    struct MemoFields: RecordFields {
        var text: Patch<String>
        var ownerId: Patch<UUID>

        func validated(creating: Bool) throws -> MemoFields {
            var checks = FieldChecks()
            checks.fail("text", "is required", when: creating && text.value == nil)
            checks.fail("text", "must not be empty", when: text.value?.isEmpty == true)
            try checks.finish()
            return self
        }
    }

    enum MemoStore: OwnedRecordStore {
        static let table = RecordTable<Memo>(
            "memo_memos", columns: "id, owner_id, text, updated_at", noun: "memo",
            order: .descending("updated_at", time: \.updatedAt, id: \.id)
        ) { row in
            var columns = RowReader(row)
            return Memo(id: try columns.next(), ownerId: try columns.next(), text: try columns.next(), updatedAt: try columns.next())
        }

        static func insert(_ fields: MemoFields, owner: UUID, on transaction: TenantTransaction) async throws -> Memo {
            // A plan may cap how many memos a tenant keeps (`memo.memos`).
            try await transaction.requireCountSlot("memo.memos", counting: "memo_memos")
            // The count test's racers hold the window between count and insert open, so
            // that without the slot's lock they would all count the same rows.
            if fields.text.value == "race" { _ = try await transaction.query("SELECT pg_sleep(0.3)") }
            return try await table.one(
                "INSERT INTO memo_memos (tenant_id, owner_id, text) VALUES (\(transaction.tenantID), \(owner), \(fields.text.value ?? "")) RETURNING id, owner_id, text, updated_at",
                on: transaction)
        }

        static func update(_ id: UUID, _ fields: MemoFields, owner: UUID?, on transaction: TenantTransaction) async throws -> Memo {
            try await table.one(
                """
                UPDATE memo_memos SET text = CASE WHEN \(fields.text.isSet) THEN \(fields.text.value) ELSE text END,
                    owner_id = coalesce(\(owner), owner_id), updated_at = now()
                WHERE id = \(id) RETURNING id, owner_id, text, updated_at
                """, on: transaction)
        }
    }

    static let records = OwnedRecordRoutes(access: .owned("memo.records"), assignPermission: "memo.owners.assign")

    func routes(_ routes: ModuleRoutes) {
        Self.records.list(routes, "memos", summary: "Memos you may see", search: "text") { request, page, filter in
            try await request.transaction { transaction in
                try await MemoStore.table.page(page, where: filter.conditions(searching: ["text"]), on: transaction)
            }
        }
        Self.records.register(routes, "memos", store: MemoStore.self, summaries: .init(
            create: "Write a memo", get: "One memo", change: "Change a memo", delete: "Delete a memo"))
    }
}

@Suite struct OwnedRecordRoutesTests {
    static let memos = "/v1/tenants/acme/memo/memos"

    @Test func ownersReachTheirOwnAndAssigningTakesThePermission() async throws {
        let db = try await TestDatabase.create(modules: [MemoModule()])
        let tenant = try await db.createTenant("acme", modules: ["memo"])
        let ann = try await db.createUser("ann@acme.test", password: "correct horse battery", roles: ["member"], in: tenant)
        let bob = try await db.createUser("bob@acme.test", password: "correct horse battery", roles: ["member"], in: tenant)
        _ = try await db.createUser("boss@acme.test", password: "correct horse battery", roles: ["admin"], in: tenant)
        try await withTestApplication(db, modules: [MemoModule()]) { client, _ in
            let annToken = try await client.login("acme", "ann@acme.test", "correct horse battery").access
            let bobToken = try await client.login("acme", "bob@acme.test", "correct horse battery").access
            let bossToken = try await client.login("acme", "boss@acme.test", "correct horse battery").access

            let made = try await client.send(.post, Self.memos, token: annToken, json: #"{"text":"call the bank"}"#)
            #expect(made.status == .created)
            #expect(json(made)["owner_id"]?.string?.lowercased() == ann.id.uuidString.lowercased())
            let id = try #require(json(made)["id"]?.string)
            let refused = try await client.send(.post, Self.memos, token: annToken, json: #"{"text":""}"#)
            #expect(refused.status == .unprocessableContent)

            // Another owner's memo is answered like a missing one, for every verb.
            #expect(try await client.send(.get, "\(Self.memos)/\(id)", token: bobToken).status == .notFound)
            #expect(try await client.send(.patch, "\(Self.memos)/\(id)", token: bobToken, json: #"{"text":"mine now"}"#).status == .notFound)
            #expect(try await client.send(.delete, "\(Self.memos)/\(id)", token: bobToken).status == .notFound)
            #expect(json(try await client.send(.get, Self.memos, token: bobToken))["data"]?.array?.count == 0)

            // The owner changes it; giving it away takes the assign permission.
            let changed = try await client.send(.patch, "\(Self.memos)/\(id)", token: annToken, json: #"{"text":"call the bank at 9"}"#)
            #expect(json(changed)["text"]?.string == "call the bank at 9")
            let giveAway = #"{"owner_id":"\#(bob.id.uuidString)"}"#
            let notHers = try await client.send(.patch, "\(Self.memos)/\(id)", token: annToken, json: giveAway)
            #expect(notHers.status == .forbidden)
            #expect(json(notHers)["detail"]?.string?.contains("memo.owners.assign") == true, "refused by the route, not only by row-level security")
            let given = try await client.send(.patch, "\(Self.memos)/\(id)", token: bossToken, json: giveAway)
            #expect(given.status == .ok)
            #expect(try await client.send(.get, "\(Self.memos)/\(id)", token: bobToken).status == .ok)
            #expect(try await client.send(.get, "\(Self.memos)/\(id)", token: annToken).status == .notFound)

            // The list's common filters: q searches, owner narrows.
            _ = try await client.send(.post, Self.memos, token: bossToken, json: #"{"text":"water the plants"}"#)
            let found = try await client.send(.get, "\(Self.memos)?q=BANK", token: bossToken)
            #expect(json(found)["data"]?.array?.compactMap { $0["id"]?.string } == [id])
            let bobs = try await client.send(.get, "\(Self.memos)?owner=\(bob.id.uuidString)", token: bossToken)
            #expect(json(bobs)["data"]?.array?.count == 1)

            #expect(try await client.send(.delete, "\(Self.memos)/\(id)", token: bobToken).status == .noContent)
            #expect(try await client.send(.get, "\(Self.memos)/\(id)", token: bossToken).status == .notFound)
        }
    }
}

/// A plan's cap on how many rows a tenant keeps (`requireCountSlot`).
@Suite struct CountLimitTests {
    @Test func concurrentCreatesNeverTakeMoreThanThePlansSlots() async throws {
        let db = try await TestDatabase.create(modules: [MemoModule()])
        let tenant = try await db.createTenant("acme", modules: ["memo"])
        let users = ["ann", "bob", "cy", "di"]
        for user in users { _ = try await db.createUser("\(user)@acme.test", password: "correct horse battery", roles: ["member"], in: tenant) }
        // The catalog's quotas as `atrium serve` publishes them: the free plan keeps 3 memos.
        try await db.withOwner { connection in
            try await connection.query("INSERT INTO plan_quotas (plan, name, value) VALUES ('free', 'memo.memos', 3)", logger: TestDatabase.logger)
        }
        try await withTestApplication(db, modules: [MemoModule()]) { client, _ in
            var tokens: [String] = []
            for user in users { tokens.append(try await client.login("acme", "\(user)@acme.test", "correct horse battery").access) }
            let memos = OwnedRecordRoutesTests.memos
            #expect(try await client.send(.post, memos, token: tokens[0], json: #"{"text":"first"}"#).status == .created)
            // Four users race for the two slots left: every owner's memos count.
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for token in tokens {
                    group.addTask { try await client.send(.post, memos, token: token, json: #"{"text":"race"}"#).status }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == .created }.count == 2, "\(statuses)")
            #expect(statuses.filter { $0 == .forbidden }.count == 2, "\(statuses)")
            let full = try await client.send(.post, memos, token: tokens[1], json: #"{"text":"one more"}"#)
            #expect(full.status == .forbidden)
            #expect(json(full)["code"]?.string == "plan_upgrade_required")
            #expect(json(full)["quota"]?.string == "memo.memos")
            #expect(json(full)["limit"] == .number(3))
            #expect(json(full)["used"] == .number(3))
        }
    }
}

/// A tool's own connection scoped for its whole session (`scopeSession`): statements in
/// autocommit see the tenant's rows, every owner's when asked, and no other tenant's.
@Suite struct SessionScopeTests {
    @Test func aSessionScopeHoldsAcrossStatementsAndKeepsToItsTenant() async throws {
        let db = try await TestDatabase.create(modules: [MemoModule()])
        let acme = try await db.createTenant("acme", modules: ["memo"])
        let globex = try await db.createTenant("globex", modules: ["memo"])
        try await withPostgresConnection(db.superuser, logger: TestDatabase.logger) { connection in
            for (tenant, owner) in [(acme.id, UUID()), (acme.id, UUID()), (globex.id, UUID())] {
                try await connection.query(
                    "INSERT INTO memo_memos (tenant_id, owner_id, text) VALUES (\(tenant), \(owner), 'x')", logger: TestDatabase.logger)
            }
        }
        func count(_ connection: PostgresConnection) async throws -> Int {
            try await connection.query("SELECT count(*)::int FROM memo_memos", logger: TestDatabase.logger).first().decode(Int.self)
        }
        try await withPostgresConnection(db.app, logger: TestDatabase.logger) { connection in
            try await connection.scopeSession(toTenant: acme.id, seesAllOwners: true, logger: TestDatabase.logger)
            #expect(try await count(connection) == 2)
            #expect(try await count(connection) == 2, "the scope outlives the statement that made it")
            try await connection.scopeSession(toTenant: acme.id, logger: TestDatabase.logger)
            #expect(try await count(connection) == 0, "without every owner's reach, and no principal, no owned row")
        }
    }
}
